"""Bad option values and awkward paths end in one clear line, never in a traceback.

Every case runs a command in-process and checks: the exit status (2 for a usage
error, 1 for the rest), exactly one ``error:`` line on stderr, the words the user
needs (the option's name as typed, e.g. ``--n-boot``), and no traceback nor
"unexpected" (what the command line says of an exception it did not foresee).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app

from .conftest import train_small_run

runner = CliRunner()


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory, sample_store: Path,
          sample: list[Path]) -> dict[str, str]:
    """A folder named o'brien with a copy of the sample store and a small training run in it."""
    folder = tmp_path_factory.mktemp("paths") / "o'brien"
    folder.mkdir()
    store = folder / "store.duckdb"
    shutil.copy(sample_store, store)
    run = train_small_run(store, folder / "runs")
    return {"dir": str(folder), "store": str(store), "run": str(run), "sample": str(sample[-1])}


def _run(args: list[str], place: dict[str, str]) -> object:
    return runner.invoke(app, [a.format(**place) for a in args])


def assert_one_clear_error(result: object, code: int, words: str) -> None:
    __tracebackhide__ = True
    out = result.output  # type: ignore[attr-defined]
    assert result.exit_code == code, out  # type: ignore[attr-defined]
    assert isinstance(result.exception, SystemExit), result.exception  # type: ignore[attr-defined]
    errors = [line for line in result.stderr.splitlines()  # type: ignore[attr-defined]
              if line.startswith("error:")]
    assert len(errors) == 1, out
    assert words in " ".join(result.stderr.split()), out  # type: ignore[attr-defined]
    assert "Traceback" not in out and "unexpected" not in out, out


USAGE = [  # bad values that the options refuse themselves: exit status 2
    pytest.param(["quarantine", "--store", "{store}", "--limit", "-1"], "'--limit'",
                 id="quarantine-limit"),
    pytest.param(["evaluate", "{run}", "--n-boot", "0"], "'--n-boot'", id="n-boot"),
    pytest.param(["evaluate", "{run}", "--n-boot", "5"], "'--n-boot'", id="n-boot-5"),
    pytest.param(["evaluate", "{run}", "--explain-rows", "-1"], "'--explain-rows'",
                 id="explain-rows"),
    pytest.param(["evaluate", "{run}", "--target-precision", "1.5"], "'--target-precision'",
                 id="target-precision"),
    pytest.param(["evaluate", "{run}", "--seed", "-3"], "'--seed'", id="evaluate-seed"),
    pytest.param(["evaluate", "{run}", "--threshold-rule", "best"], "'--threshold-rule'",
                 id="threshold-rule"),
    pytest.param(["evaluate", "{run}", "--threshold-rule", "precision"],
                 "'--target-precision': a value is needed with --threshold-rule precision",
                 id="precision-without-target"),
    pytest.param(["train", "--store", "{store}", "--folds", "1"], "'--folds'", id="folds"),
    pytest.param(["train", "--store", "{store}", "--trials", "0"], "'--trials'", id="trials"),
    pytest.param(["train", "--store", "{store}", "--sample", "0"], "'--sample'",
                 id="train-sample"),
    pytest.param(["train", "--store", "{store}", "--search-sample", "-5"], "'--search-sample'",
                 id="search-sample"),
    pytest.param(["train", "--store", "{store}", "--timeout", "-1"], "'--timeout'",
                 id="timeout"),
    pytest.param(["train", "--store", "{store}", "--seed", "-1"], "'--seed'", id="train-seed"),
    pytest.param(["train", "--store", "{store}", "--target", "burglary"], "'--target'",
                 id="target"),
    pytest.param(["scaleset", "0", "{dir}/s.csv"],
                 "'n': Input should be greater than or equal to 1", id="scaleset-n"),
    pytest.param(["scaleset", "10", "{dir}/s.csv", "--seed", "-1"], "'--seed'",
                 id="scaleset-seed"),
    pytest.param(["predict", "--run", "{run}", "--out", "{dir}/p.csv", "--chunk-rows", "0"],
                 "'--chunk-rows'", id="chunk-rows"),
    pytest.param(["predict", "--out", "{dir}/p.csv"], "Missing option '--run'", id="no-run"),
    pytest.param(["ingest", "portal", "--page-rows", "0"], "'--page-rows'", id="page-rows"),
    pytest.param(["ingest", "bigquery", "--streams", "0"], "'--streams'", id="streams"),
    pytest.param(["explore", "--store", "{store}", "--district", "north"], "'--district'",
                 id="district-not-a-number"),
    pytest.param(["ingest", "{sample}", "--store", "{dir}/m.duckdb", "--memory-limit", "lots"],
                 "'--memory-limit': 'lots' is not a memory size", id="ingest-memory"),
    pytest.param(["sync", "--store", "{store}", "--memory-limit", "0GB"],
                 "'--memory-limit': '0GB' is not a memory size", id="sync-memory"),
    pytest.param(["train", "--store", "{store}", "--memory-limit", "3"],
                 "'--memory-limit': '3' is not a memory size", id="train-memory"),
    pytest.param(["predict", "--run", "{run}", "--out", "{dir}/p.csv", "{sample}",
                  "--memory-limit", "1XB"], "'--memory-limit': '1XB'", id="predict-memory"),
    pytest.param(["ingset", "{sample}"], "No such command 'ingset'. Did you mean 'ingest'?",
                 id="unknown-command"),
]

FAILS = [  # values the library refuses: exit status 1
    pytest.param(["info", "--store", "{dir}/none.duckdb"], "crimeclass ingest", id="no-store"),
    pytest.param(["ingest", "{dir}/missing.csv", "--store", "{dir}/s.duckdb"],
                 "o'brien/missing.csv", id="missing-file"),
    pytest.param(["quarantine", "--store", "{store}", "--reason", "nope"], "unknown reason",
                 id="reason"),
    pytest.param(["quarantine", "--store", "{store}", "--out", "{dir}/q.txt"],
                 "use a .csv or .parquet file name", id="quarantine-out"),
    pytest.param(["export", "--store", "{store}", "--format", "xlsx"], "unknown format",
                 id="format"),
    pytest.param(["explore", "--store", "{store}", "--out", "{dir}/r", "--engine", "polars"],
                 "engines are: duckdb, spark", id="engine"),
    pytest.param(["explore", "--store", "{store}", "--out", "{dir}/r", "--since", "soon"],
                 "soon", id="explore-since"),
    pytest.param(["train", "--store", "{store}", "--models", "gbm"], "unknown model 'gbm'",
                 id="models"),
    pytest.param(["train", "--store", "{store}", "--holdout", "someday"], "someday",
                 id="holdout"),
    pytest.param(["evaluate", "{dir}/runs/none"], "o'brien/runs/none", id="no-run-folder"),
    pytest.param(["evaluate", "{run}", "--since", "2030-01-01"], "no held-out rows",
                 id="evaluate-window"),
    pytest.param(["evaluate", "{run}", "--since", "soon"], "soon", id="evaluate-since"),
    pytest.param(["train", "--store", "{store}", "--since", "soon"], "'soon' is not a date",
                 id="train-since"),
    pytest.param(["predict", "--run", "{dir}/runs/none", "--out", "{dir}/p.csv", "{sample}"],
                 "o'brien/runs/none", id="predict-no-run"),
    pytest.param(["ingest", "portal", "--updated-since", "yesterday", "--store", "{store}"],
                 "yesterday", id="updated-since"),
    pytest.param(["scaleset", "10", "{dir}/s.csv", "--data-dir", "{dir}/nothing"],
                 "o'brien/nothing", id="scaleset-data-dir"),
]


@pytest.mark.parametrize("args,words", USAGE)
def test_a_bad_option_value_is_a_usage_error_in_the_users_words(args, words, place):
    assert_one_clear_error(_run(args, place), 2, words)


@pytest.mark.parametrize("args,words", FAILS)
def test_a_failure_is_one_clear_line(args, words, place):
    assert_one_clear_error(_run(args, place), 1, words)


def test_a_usage_error_with_json_is_json(place):
    result = _run(["quarantine", "--store", "{store}", "--limit", "-1", "--json"], place)
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["type"] == "BadParameter" and "'--limit'" in error["error"]


def test_a_failure_with_json_carries_the_errors_attributes(place):
    result = _run(["ingest", "{dir}/missing.csv", "--store", "{store}", "--json"], place)
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["type"] == "SourceError" and error["source"].endswith("o'brien/missing.csv")
    assert {"error", "line", "field", "message"} <= error.keys()


def test_rich_markup_in_a_message_is_printed_as_typed(place):
    result = _run(["quarantine", "--store", "{store}", "--reason", "[bold]x[/]"], place)
    assert result.exit_code == 1 and "unknown reason '[bold]x[/]'" in result.stderr


# ----------------------------------------------------------- paths with a quote


@pytest.mark.parametrize("args", [
    pytest.param(["ingest", "{sample}", "--store", "{dir}/new.duckdb"], id="ingest"),
    pytest.param(["info", "--store", "{store}"], id="info"),
    pytest.param(["quarantine", "--store", "{store}", "--out", "{dir}/q.parquet"],
                 id="quarantine"),
    pytest.param(["export", "--store", "{store}", "--out", "{dir}/pq"], id="export"),
    pytest.param(["explore", "--store", "{store}", "--out", "{dir}/rep", "--no-plots",
                  "--since", "2016"], id="explore"),
    pytest.param(["evaluate", "{run}", "--n-boot", "20", "--explain-rows", "0", "--out",
                  "{dir}/ev"], id="evaluate"),
    pytest.param(["predict", "--run", "{run}", "--out", "{dir}/p.parquet", "{sample}"],
                 id="predict"),
])
def test_paths_with_an_apostrophe_work(args, place):
    result = _run(args, place)
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------- in a real shell


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_python_m_crimeclass_ends_a_usage_error_in_one_line():
    done = _python("-m", "crimeclass", "quarantine", "--limit", "-1")
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.startswith("error: Invalid value for '--limit': Input should be greater "
                                  "than or equal to 0 (see 'crimeclass quarantine --help')")
    assert len(done.stderr.splitlines()) == 1


def test_python_m_crimeclass_ends_a_failure_in_one_line(tmp_path):
    folder = tmp_path / "o'brien"
    folder.mkdir()
    done = _python("-m", "crimeclass", "info", "--store", "o'brien/none.duckdb", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: the store o'brien/none.duckdb holds no incidents")


def test_evaluate_takes_store_like_every_command(place):
    moved = Path(place["dir"]) / "moved.duckdb"
    shutil.copy(place["store"], moved)
    result = _run(["evaluate", "{run}", "--store", str(moved), "--n-boot", "20",
                   "--explain-rows", "0", "--out", "{dir}/ev-moved", "--json"], place)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"]["store"] == str(moved)


@pytest.mark.parametrize("value", ["1GB", "512MB", "2GiB", "1.5 gb", "80%", "1 gigabyte"])
def test_memory_limits_that_duckdb_reads_pass(value):
    import duckdb

    from crimeclass.cli._common import check_memory_limit

    assert check_memory_limit(value) == value
    duckdb.connect().execute(f"SET memory_limit = '{value}'")  # and DuckDB takes them
