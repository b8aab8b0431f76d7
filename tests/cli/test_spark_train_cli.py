"""`crimeclass train --engine spark`: its options and errors (the run itself:
tests/models/test_spark_train.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args, code, words", [
    (["--engine", "spark"], 2, "'--input'"),
    (["--engine", "spark", "--input", "x", "--store", "s.duckdb"], 2, "'--store'"),
    (["--input", "incidents/"], 2, "'--input'"),
    (["--engine", "spark", "--input", "x", "--models", "lgbm"], 1, "not yet lgbm"),
], ids=["no-input", "store", "input-on-duckdb", "model-not-on-spark"])
def test_options_of_the_other_engine_are_refused_by_name(tmp_path, args, code, words):
    result = runner.invoke(app, ["train", "--runs-dir", str(tmp_path), *args])
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in " ".join(result.stderr.split()), result.output
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # no run folder, not even a hidden one
