"""Every command given a ``--store`` that is a data file, not a store: one clear error.

DuckDB opens a CSV, Parquet or JSON path as a throwaway in-memory database with
views over the file (duckdb/duckdb#17415). ``ingest`` used to report the rows it
"inserted" there, exit 0, and store nothing.

``evaluate`` takes no ``--store`` (it reads the store its run names, or ``--data``),
so it is not in this list.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.features import FeatureSpec
from crimeclass.models import TrainConfig, train

runner = CliRunner()

#: The smallest run predict can load: one model, one trial, no history features.
TINY = TrainConfig(models=("lr",), trials=1, folds=2, since="2014-01-01", until="2017-01-01",
                   search_sample=None, features=FeatureSpec(history=()), n_jobs=1,
                   baselines=False)


@pytest.fixture(scope="module")
def incidents_csv(tmp_path_factory: pytest.TempPathFactory, main_sample: Path) -> Path:
    """Fifty incidents of the sample as a plain CSV export."""
    path = tmp_path_factory.mktemp("input") / "incidents.csv"
    with gzip.open(main_sample, "rt") as f:
        path.write_text("".join(line for line, _ in zip(f, range(51), strict=False)))
    return path


@pytest.fixture(scope="module")
def tiny_run(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(sample_store, TINY, runs_dir=tmp_path_factory.mktemp("runs")).run_dir


@pytest.fixture(params=["csv", "parquet", "json"])
def not_a_store(request: pytest.FixtureRequest, incidents_csv: Path, tmp_path: Path) -> Path:
    """The incidents as a CSV, Parquet or JSON file, given as ``--store``."""
    path = tmp_path / f"incidents.{request.param}"
    if request.param == "csv":
        path.write_bytes(incidents_csv.read_bytes())
    else:
        with duckdb.connect() as con:
            con.execute(f"COPY (FROM read_csv('{incidents_csv}')) TO '{path}' "
                        f"(FORMAT {request.param})")
    return path


def _args(command: str, store: Path, tmp_path: Path, sample: list[Path], run: Path | None,
          incidents: Path) -> list[str]:
    out = tmp_path / "out"
    return {
        "ingest": ["ingest", str(sample[-1])],
        "info": ["info"],
        "quarantine": ["quarantine"],
        "export": ["export", "--out", str(out)],
        "explore": ["explore", "--out", str(out), "--no-plots"],
        "train": ["train", "--models", "lr", "--trials", "1", "--runs-dir", str(out)],
        "predict": ["predict", "--run", str(run), "--out", str(tmp_path / "scores.csv"),
                    str(incidents)],
        "evaluate": ["evaluate", str(run), "--out", str(out), "--n-boot", "20",
                     "--explain-rows", "0"],
    }[command] + ["--store", str(store)]


COMMANDS = ["ingest", "info", "quarantine", "export", "explore", "train", "predict",
            "evaluate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_data_file_as_store_is_one_clear_error(command, not_a_store, tmp_path, sample,
                                                 incidents_csv, request):
    run = request.getfixturevalue("tiny_run") if command in ("predict", "evaluate") else None
    before = not_a_store.read_bytes()
    result = runner.invoke(app, _args(command, not_a_store, tmp_path, sample, run,
                                      incidents_csv))
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert str(not_a_store) in errors[0] and "not a crimeclass store" in errors[0]
    assert "inserted" not in result.output
    assert not_a_store.read_bytes() == before
    assert not (tmp_path / "out").exists() and not (tmp_path / "scores.csv").exists()
