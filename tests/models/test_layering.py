"""Imports point back only: features/ uses data/; models/ uses data/ and features/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "crimeclass"
ALLOWED = {"features": {"data", "features"}, "models": {"data", "features", "models"}}
HEAVY = ("xgboost", "keras", "tensorflow", "optuna", "matplotlib", "pyspark")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import of a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, id(node) in top))
    return out


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_a_stage_imports_only_the_stages_before_it(stage):
    for path in (SRC / stage).glob("*.py"):
        for module, _ in _imports(path):
            if module.startswith("crimeclass."):
                assert module.split(".")[1] in ALLOWED[stage], f"{path.name} imports {module}"


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_heavy_stacks_are_imported_inside_functions(stage):
    for path in (SRC / stage).glob("*.py"):
        for module, top_level in _imports(path):
            if module.split(".")[0] in HEAVY:
                assert not top_level, f"{path.name} imports {module} at module level"
