"""``crimeclass evaluate`` flags a model whose ROC AUC falls more than 0.02 below its
validation figure (it does not hold on later data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.evaluation import EvaluateConfig, evaluate_run
from crimeclass.evaluation._holds import DROP_MARGIN, validation_drop

from .conftest import FAST

NO_EXPLAIN = EvaluateConfig(**{**FAST.__dict__, "explain_rows": 0})


def _edit_cv(run, name, **changes):
    path = run / "metrics.json"
    doc = json.loads(path.read_text())
    entry = next(m for m in doc["models"] if m["name"] == name)
    entry["cv"].update(changes)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("validation, later, flagged", [
    pytest.param(0.760, 0.739, True, id="more-than-0.02-below"),
    pytest.param(0.760, 0.745, False, id="0.015-below"),
    pytest.param(0.740, 0.760, False, id="better-later"),
    pytest.param(None, 0.700, False, id="no-validation-figure"),
])
def test_a_drop_beyond_the_margin_is_flagged(validation, later, flagged):
    d = validation_drop(validation, later)
    assert d["flagged"] is flagged and d["margin"] == DROP_MARGIN == 0.02
    assert d["drop"] == (None if validation is None else validation - later)


def test_every_model_states_its_drop_from_validation(small_run):
    doc = evaluate_run(small_run, config=NO_EXPLAIN)
    metrics = json.loads((small_run / "metrics.json").read_text())
    for r in doc["models"]:
        d = r["validation_drop"]
        cv = next(m for m in metrics["models"] if m["name"] == r["name"])["cv"]
        assert d["validation_roc_auc"] == cv["mean"]
        assert d["roc_auc"] == r["metrics"]["roc_auc"]["value"]
        assert d["flagged"] == (d["validation_roc_auc"] - d["roc_auc"] > 0.02)
    assert doc["validation_drops"] == [r["name"] for r in doc["models"]
                                       if r["validation_drop"]["flagged"]]


def test_a_model_that_does_not_hold_is_flagged_by_the_cli(run_copy):
    held = evaluate_run(run_copy, config=NO_EXPLAIN)
    lr = next(r for r in held["models"] if r["name"] == "lr")["metrics"]["roc_auc"]["value"]
    _edit_cv(run_copy, "lr", mean=lr + 0.05)
    _edit_cv(run_copy, "xgb", mean=lr - 0.2)  # far better later than on validation: fine
    result = CliRunner().invoke(app, ["evaluate", str(run_copy), "--n-boot", "20",
                                      "--explain-rows", "0", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    flagged = [n for n in out["notes"] if "below its validation figure" in n]
    assert len(flagged) == 1 and flagged[0].startswith("lr: ROC AUC")
    doc = json.loads((run_copy / "evaluation" / "evaluation.json").read_text())
    assert "lr" in doc["validation_drops"] and "xgb" not in doc["validation_drops"]
    d = next(r for r in doc["models"] if r["name"] == "lr")["validation_drop"]
    assert d["flagged"] and d["drop"] == pytest.approx(0.05)


def test_without_a_roc_auc_search_the_out_of_fold_probabilities_give_the_figure(run_copy):
    _edit_cv(run_copy, "lr", scoring="average_precision", mean=0.3)
    doc = evaluate_run(run_copy, config=NO_EXPLAIN)
    d = next(r for r in doc["models"] if r["name"] == "lr")["validation_drop"]
    val = pd.read_parquet(run_copy / "validation.parquet")
    val = val[val["model"] == "lr"]
    expected = roc_auc_score(val["is_index"].to_numpy().astype(int), val["p"].to_numpy())
    assert np.isclose(d["validation_roc_auc"], expected)
    assert "out-of-fold" in d["validation_source"]
