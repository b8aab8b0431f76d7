"""The same seed gives the same numbers: train twice on the sample, evaluate both."""

from __future__ import annotations

import pytest

from crimeclass.evaluation import evaluate_run
from crimeclass.models import TrainConfig, train

from .conftest import FAST, SPEC


@pytest.mark.slow
def test_the_same_seed_reproduces_the_evaluation(sample_store, tmp_path):
    cfg = TrainConfig(models=("lr", "xgb"), trials=2, folds=2, since="2014-01-01",
                      until="2017-01-01", search_sample=None, features=SPEC, n_jobs=1, seed=3)
    docs = []
    for k in range(2):
        run = train(sample_store, cfg, runs_dir=tmp_path / f"r{k}").run_dir
        docs.append(evaluate_run(run, config=FAST))
    a, b = docs
    assert [r["name"] for r in a["models"]] == [r["name"] for r in b["models"]]
    for ra, rb in zip(a["models"], b["models"], strict=True):
        assert ra["metrics"] == rb["metrics"]  # values and intervals, exactly
        assert ra["threshold"] == rb["threshold"]
        assert ra["calibration"]["brier_after"] == rb["calibration"]["brier_after"]
        assert ra.get("importance") == rb.get("importance")
    assert a["paired"] == b["paired"]
