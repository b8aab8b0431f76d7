"""``crimeclass train --models lgbm,stack`` picks the new families by name, and
``predict`` and ``evaluate`` load them like every other model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app


@pytest.fixture(scope="module")
def lgbm_stack_run(sample_store, tmp_path_factory) -> Path:
    result = CliRunner().invoke(app, [
        "train", "--store", str(sample_store), "--models", "lgbm,stack", "--trials", "1",
        "--folds", "2", "--since", "2015-01-01", "--sample", "4000", "--search-sample", "2000",
        "--no-baselines", "--runs-dir", str(tmp_path_factory.mktemp("runs")), "--n-jobs", "1",
        "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [m["name"] for m in out["models"]] == ["lgbm", "stack"]
    return Path(out["run_dir"])


@pytest.mark.parametrize("name", ["lgbm", "stack"])
def test_predict_scores_the_held_out_year_as_the_run_did(lgbm_stack_run, sample_store,
                                                         tmp_path, name):
    out = tmp_path / "p.parquet"
    r = CliRunner().invoke(app, ["predict", "--run", str(lgbm_stack_run), str(sample_store),
                                 "--out", str(out), "--since", "2017-01-01",
                                 "--until", "2018-01-01", "--model", name, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model_id"].endswith(f"/{name}")
    got = pd.read_parquet(out)
    want = pd.read_parquet(lgbm_stack_run / "predictions.parquet")
    m = want.merge(got, on="key", validate="one_to_one")
    assert len(m) == len(want)
    np.testing.assert_allclose(m["probability"], m[f"p_{name}"], rtol=1e-6)


def test_evaluate_loads_and_checks_them(lgbm_stack_run):
    r = CliRunner().invoke(app, ["evaluate", str(lgbm_stack_run), "--n-boot", "20",
                                 "--explain-rows", "0", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {m["name"] for m in out["models"]} == {"lgbm", "stack"}
    doc = json.loads((lgbm_stack_run / "evaluation" / "evaluation.json").read_text())
    for m in doc["models"]:
        assert m["validation_drop"]["validation_roc_auc"] is not None


def test_the_stack_is_refused_for_the_arrest_target(sample_store, tmp_path):
    r = CliRunner().invoke(app, ["train", "--store", str(sample_store), "--models", "stack",
                                 "--target", "arrest", "--runs-dir", str(tmp_path)])
    assert r.exit_code != 0
    assert "cannot be trained for the 'arrest' target" in r.output
