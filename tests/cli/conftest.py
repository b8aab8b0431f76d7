"""Fixtures of the command line's tests."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crimeclass.cli import app


def train_small_run(store: Path, runs_dir: Path) -> Path:
    """``crimeclass train`` of one quick logistic regression on ``store``; the run folder."""
    result = CliRunner().invoke(app, [
        "train", "--store", str(store), "--models", "lr", "--trials", "1", "--folds", "2",
        "--since", "2015-01-01", "--runs-dir", str(runs_dir), "--n-jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])
