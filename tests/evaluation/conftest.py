"""A small training run on the bundled sample, shared by the evaluation tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crimeclass.evaluation import EvaluateConfig
from crimeclass.features import FeatureSpec, HistoryWindow
from crimeclass.models import TrainConfig, train

SPEC = FeatureSpec(history=(HistoryWindow("beat", 28), HistoryWindow("block_location", 365)))

#: lr, a forest and XGBoost (the two tree families get SHAP values) and the baselines.
TRAIN = TrainConfig(models=("lr", "rf", "xgb"), trials=1, folds=2, since="2014-01-01",
                    until="2017-01-01", search_sample=None, features=SPEC, n_jobs=1)

#: An evaluation small enough for tests.
FAST = EvaluateConfig(n_boot=50, slice_boot=20, explain_rows=400, importance_repeats=1,
                      shap_rows=200, forest_shap_rows=30, drift_rows=3000)


@pytest.fixture(scope="session")
def small_run(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder (do not change it: copy it with ``run_copy``)."""
    runs = tmp_path_factory.mktemp("runs")
    # the run records its store by the path given; the evaluation finds it there
    return train(sample_store, TRAIN, runs_dir=runs).run_dir


@pytest.fixture
def run_copy(small_run: Path, tmp_path: Path) -> Path:
    """A private copy of the small run, to change."""
    dst = tmp_path / "runs" / small_run.name
    shutil.copytree(small_run, dst)
    return dst
