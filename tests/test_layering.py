"""Stages import only from stages before them (data -> explore -> features -> models -> ...)."""

from __future__ import annotations

import ast
from pathlib import Path

import crimeclass

ORDER = ["data", "explore", "features", "models", "evaluation", "serve", "spark"]
PACKAGE = Path(crimeclass.__file__).parent


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m.split(".")[1] for m in out if m.startswith("crimeclass.") and m.count(".") >= 1}


def test_stages_import_only_earlier_stages():
    bad = []
    for stage in ORDER:
        folder = PACKAGE / stage
        if not folder.is_dir():
            continue
        allowed = set(ORDER[: ORDER.index(stage) + 1])
        for py in folder.rglob("*.py"):
            for used in _imports(py) - allowed:
                if used in ORDER:
                    bad.append(f"{py.relative_to(PACKAGE)} imports crimeclass.{used}")
    assert not bad, bad


def test_the_cli_imports_stages_lazily():
    """`crimeclass --help` must not import the stages: no module of cli/ does at module level."""
    for py in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(py.read_text())
        top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in top if m.startswith("crimeclass.") and m.split(".")[1] in ORDER}, py
