"""How crimeclass starts: python -m, --help without the heavy libraries, lazy verbs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import crimeclass

HEAVY = ("duckdb", "numpy", "pandas", "pyarrow")

HELP = """
import sys
from crimeclass.cli import app
try:
    app({args!r}, prog_name="crimeclass")
except SystemExit as e:
    assert e.code == 0, e.code
print(sorted(m for m in {heavy!r} if m in sys.modules))
"""


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["ingest", "--help"], ["ingest", "portal", "--help"],
                                  ["train", "--help"], ["evaluate", "--help"], ["--version"]],
                         ids=lambda a: " ".join(a))
def test_help_imports_none_of_the_heavy_libraries(args):
    done = _python("-c", HELP.format(args=args, heavy=HEAVY))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_import_crimeclass_is_light():
    done = _python("-c", f"import sys, crimeclass; crimeclass.__version__; "
                         f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("module", ["crimeclass", "crimeclass.cli"])
def test_python_m_runs_the_last_command_too(module):
    done = _python("-m", module, "evaluate", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: crimeclass evaluate [OPTIONS] {RUN}" in " ".join(done.stdout.split())


def test_the_verbs_are_imported_on_first_use():
    from crimeclass import _api
    from crimeclass.data import Store

    assert crimeclass.Store is Store
    for verb in ("ingest", "info", "train", "evaluate", "predict"):
        assert getattr(crimeclass, verb) is getattr(_api, verb)
    assert {"Store", "ingest", "info", "explore", "train", "evaluate", "predict"} <= set(
        dir(crimeclass))
    with pytest.raises(AttributeError, match="has no attribute 'fit'"):
        crimeclass.fit  # noqa: B018


EXPLORE = """
import crimeclass
{first}
import crimeclass.explore as stage
from crimeclass.explore import CATALOG
assert crimeclass.explore is stage and stage.CATALOG is CATALOG
try:
    crimeclass.explore("none.duckdb", "out", engine="polars")
except ValueError as e:
    print(e)
"""


@pytest.mark.parametrize("first", ["", "crimeclass.explore", "import crimeclass.explore"],
                         ids=["import", "verb-first", "stage-first"])
def test_explore_is_the_stage_and_the_verb(first):
    done = _python("-c", EXPLORE.format(first=first))
    assert done.returncode == 0, done.stderr
    assert "unknown engine 'polars'; engines are: duckdb, spark" in done.stdout
