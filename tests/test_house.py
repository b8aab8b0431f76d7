"""The house's size rules and its one error family, checked over the whole package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import crimeclass
from crimeclass.data import CrimeclassError

PACKAGE = Path(crimeclass.__file__).parent
MAX_BODY, MAX_MODULE = 80, 500


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, its signature and docstring aside."""
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        body = body[1:]
    if not body:
        return 0
    return (node.end_lineno or body[-1].lineno) - body[0].lineno + 1


def long_functions(root: Path, limit: int = MAX_BODY) -> list[str]:
    """``path:line name (n lines)`` of every function whose body runs over ``limit``."""
    out = []
    for py in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _body_lines(node)
                if n > limit:
                    out.append(f"{py.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_body_runs_over_80_lines():
    assert long_functions(PACKAGE) == []


def test_no_module_runs_over_500_lines():
    big = [f"{p.relative_to(PACKAGE)} ({n} lines)" for p in sorted(PACKAGE.rglob("*.py"))
           if (n := len(p.read_text().splitlines())) > MAX_MODULE]
    assert big == []


def test_the_length_check_sees_a_long_body(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (tmp_path / "m.py").write_text(f'def f():\n    """Doc."""\n{body}\n\n\ndef g():\n    pass\n')
    assert long_functions(tmp_path) == ["m.py:1 f (81 lines)"]


@pytest.mark.parametrize("module,name", [
    ("crimeclass.data", "StoreError"), ("crimeclass.data", "SourceError"),
    ("crimeclass.engines", "EngineError"), ("crimeclass.explore", "ExploreError"),
    ("crimeclass.features", "FeaturesError"), ("crimeclass.models", "ModelsError"),
    ("crimeclass.evaluation", "EvaluationError"), ("crimeclass.serve", "ServeError"),
])
def test_each_stage_has_an_error_under_crimeclass_error(module, name):
    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, CrimeclassError)
    assert callable(getattr(error, "attrs", None))


def test_the_architecture_picture_draws_the_imports_the_layering_allows(tmp_path):
    """scripts/architecture.py reads the imports from the code; each one it draws points back."""
    import runpy

    from tests.test_layering import ALLOWED

    script = runpy.run_path(str(PACKAGE.parents[1] / "scripts" / "architecture.py"))
    graph = script["draw"](tmp_path / "architecture.png")
    assert (tmp_path / "architecture.png").stat().st_size > 10_000
    assert graph["models"] >= {"data", "features"} and graph["cli"]
    assert all(used <= ALLOWED[stage] for stage, used in graph.items())
