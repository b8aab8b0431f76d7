"""Stages import only from stages before them, and heavy stacks only inside functions.

data <- engines <- {explore, features} <- models <- {evaluation, serve} <- cli.
Siblings (explore and features; evaluation and serve) never import each other.
The command line is ``cli.py`` or a package ``cli/``: both are checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import crimeclass

PACKAGE = Path(crimeclass.__file__).parent

#: What each stage may import (itself included).
ALLOWED = {
    "data": {"data"},
    "engines": {"data", "engines"},
    "explore": {"data", "engines", "explore"},
    "features": {"data", "engines", "features"},
    "models": {"data", "engines", "explore", "features", "models"},
    "evaluation": {"data", "engines", "explore", "features", "models", "evaluation"},
    "serve": {"data", "engines", "explore", "features", "models", "serve"},
    "cli": {"data", "engines", "explore", "features", "models", "evaluation", "serve", "cli",
            "_api"},
    # the Python API for notebooks: the same layer as the command line, whose tables it shows
    "_api": {"data", "engines", "explore", "features", "models", "evaluation", "serve", "cli",
             "_api"},
    "__main__": {"cli"},
}
#: Optional or slow stacks: imported inside functions (or for type checking) only.
HEAVY = ("pyspark", "tensorflow", "keras", "xgboost", "optuna", "google.cloud", "grpc",
         "fastapi", "uvicorn", "matplotlib", "shap")
#: The stages that may import PySpark at all (engines: the Spark engine; models: families
#: trained on Spark).
SPARK_STAGES = {"engines", "models"}


def _files(stage: str) -> list[Path]:
    folder, module = PACKAGE / stage, PACKAGE / f"{stage}.py"
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [module] * module.exists()


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(module, whether it runs on import: outside functions and type-checking blocks)."""
    def visit(node: ast.AST, eager: bool) -> Iterator[tuple[str, bool]]:
        if isinstance(node, ast.Import):
            yield from ((a.name, eager) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, eager
        lazy = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, eager and not lazy and not _is_type_checking(node))

    yield from visit(ast.parse(path.read_text()), True)


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "crimeclass" and len(parts) > 1 else None


def test_every_stage_is_known():
    found = {p.stem for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists())
             or (p.suffix == ".py" and p.name != "__init__.py")}
    assert found <= set(ALLOWED), sorted(found - set(ALLOWED))
    assert {"data", "engines", "explore", "features", "models", "cli"} <= found


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_a_stage_imports_only_the_stages_before_it(stage):
    bad = [f"{path.relative_to(PACKAGE)} imports {module}"
           for path in _files(stage) for module, _ in _imports(path)
           if _stage(module) in ALLOWED and _stage(module) not in ALLOWED[stage]]
    assert not bad


@pytest.mark.parametrize("pair", [("explore", "features"), ("evaluation", "serve")],
                         ids=lambda p: " and ".join(p))
def test_siblings_never_import_each_other(pair):
    a, b = pair
    assert b not in ALLOWED[a] and a not in ALLOWED[b]


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_heavy_stacks_are_imported_inside_functions(stage):
    bad = [f"{path.relative_to(PACKAGE)} imports {module} on import"
           for path in _files(stage) for module, eager in _imports(path)
           if eager and any(module == h or module.startswith(h + ".") for h in HEAVY)]
    assert not bad


@pytest.mark.parametrize("stage", sorted(set(ALLOWED) - SPARK_STAGES))
def test_only_engines_and_models_import_pyspark(stage):
    bad = [f"{path.relative_to(PACKAGE)} imports {module}"
           for path in _files(stage) for module, _ in _imports(path)
           if module.split(".")[0] == "pyspark"]
    assert not bad


def test_the_cli_imports_stages_lazily():
    """`crimeclass --help` must not import the stages: no module of cli/ does on import."""
    files = _files("cli")
    assert files, "no cli.py nor cli/ package"
    bad = [f"{path.relative_to(PACKAGE)} imports {module} on import"
           for path in files for module, eager in _imports(path)
           if eager and _stage(module) not in (None, "cli")]
    assert not bad


def test_the_checks_see_a_forbidden_import(tmp_path):
    """The AST walk finds eager, lazy and type-checking imports for what they are."""
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nimport pyspark\n"
                    "from crimeclass.models import train\n"
                    "if TYPE_CHECKING:\n    from xgboost import Booster\n"
                    "def f():\n    import matplotlib\n")
    assert dict(_imports(path)) == {"typing": True, "pyspark": True,
                                    "crimeclass.models": True, "xgboost": False,
                                    "matplotlib": False}
