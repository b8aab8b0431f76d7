"""Recency weights: what they are, where they go, and that a weighted model is saved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from crimeclass.models import (
    ModelOptionError,
    RecencyPipeline,
    TrainConfig,
    TrainingDataError,
    load_model,
    make_model,
    recency_weights,
    save_model,
)

FAST = {"model__n_estimators": 30}


def test_the_latest_row_weighs_one_and_a_half_life_earlier_one_half():
    dates = pd.to_datetime(["2015-01-01 00:00", "2016-01-01 12:00", "2017-01-01 00:00",
                            "2016-01-02 00:00"])
    w = recency_weights(dates, 366)
    np.testing.assert_allclose(w, 0.5 ** (np.array([731, 365.5, 0, 365]) / 366))
    assert w.argmax() == 2


def test_bad_half_life_and_missing_dates_are_refused():
    with pytest.raises(ModelOptionError, match="half-life") as err:
        recency_weights(pd.to_datetime(["2016-01-01"]), 0)
    assert err.value.option == "--half-life"
    with pytest.raises(TrainingDataError, match="no date"):
        recency_weights(pd.Series([pd.Timestamp("2016-01-01"), pd.NaT]), 365)
    with pytest.raises(ModelOptionError, match="--half-life|half_life"):
        TrainConfig(half_life_days=-1)


def test_weighted_pipeline_is_the_plain_one_given_the_weights(features, xy, holdout_xy):
    """The weights reach the last step, counted from the latest row of the rows fitted:
    a fit on the earlier half counts from that half's own latest incident."""
    X, y = xy
    half = slice(0, len(y) // 2)
    weighted = make_model("xgb", features, n_jobs=1, half_life_days=200).set_params(**FAST)
    plain = make_model("xgb", features, n_jobs=1).set_params(**FAST)
    assert isinstance(weighted, RecencyPipeline) and type(plain) is Pipeline
    weighted.fit(X.iloc[half], y[half])
    plain.fit(X.iloc[half], y[half],
              model__sample_weight=recency_weights(X["date"].iloc[half], 200))
    Xh = holdout_xy[0]
    np.testing.assert_array_equal(weighted.predict_proba(Xh), plain.predict_proba(Xh))
    unweighted = clone(plain).fit(X.iloc[half], y[half])
    assert not np.allclose(weighted.predict_proba(Xh), unweighted.predict_proba(Xh))


def test_only_the_measured_families_and_a_stacks_bases_are_weighted(features):
    for name in ("xgb", "lgbm"):
        assert make_model(name, features, half_life_days=365).half_life_days == 365
    for name in ("lr", "rf", "svm", "majority", "location_rate"):
        assert type(make_model(name, features, half_life_days=365)) is Pipeline
    stack = make_model("stack", features, half_life_days=365)
    bases = dict(stack.named_steps["model"].bases)
    assert type(bases["lr"]) is Pipeline
    assert bases["xgb"].half_life_days == bases["lgbm"].half_life_days == 365
    from crimeclass.models._registry import XGB_LARGE  # the stack's XGBoost: many rows' shape

    assert {k: v for k, v in bases["xgb"].get_params().items() if k in XGB_LARGE} == XGB_LARGE


def test_a_weighted_model_is_saved_and_loaded(features, xy, holdout_xy, tmp_path):
    model = make_model("lgbm", features, n_jobs=1, half_life_days=365).set_params(
        **FAST).fit(*xy)
    save_model(model, tmp_path / "m", saved_as="lightgbm-txt")
    loaded, _ = load_model(tmp_path / "m")
    assert isinstance(loaded, RecencyPipeline) and loaded.half_life_days == 365
    Xh = holdout_xy[0]
    np.testing.assert_array_equal(model.predict_proba(Xh), loaded.predict_proba(Xh))


@pytest.mark.parametrize("name", ["xgb", "lgbm"])
def test_weights_of_one_change_nothing(name, features, xy, holdout_xy):
    X, y = xy
    a = make_model(name, features, n_jobs=1).set_params(**FAST).fit(X, y)
    b = make_model(name, features, n_jobs=1).set_params(**FAST).fit(
        X, y, model__sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(a.predict_proba(holdout_xy[0]), b.predict_proba(holdout_xy[0]),
                               rtol=0, atol=1e-6)


def test_half_life_of_a_pipeline_and_of_a_stack(features):
    from crimeclass.models._recency import half_life_of

    assert half_life_of(make_model("xgb", features, half_life_days=200)) == 200
    assert half_life_of(make_model("stack", features, half_life_days=200)) == 200
    assert half_life_of(make_model("lr", features, half_life_days=200)) is None
    assert half_life_of(make_model("stack", features)) is None


def test_a_run_records_and_says_which_models_it_weighted(sample_store, tmp_path):
    from crimeclass.models import train
    from tests.models.conftest import SPEC

    config = TrainConfig(models=("xgb",), trials=1, folds=2, since="2014-01-01",
                         until="2017-01-01", search_sample=None, final_sample=None,
                         features=SPEC, n_jobs=1, half_life_days=180)
    result = train(sample_store, config, runs_dir=tmp_path)
    entries = {m["name"]: m for m in result.metrics["models"]}
    assert entries["xgb"]["half_life_days"] == 180
    assert entries["majority"]["half_life_days"] is None  # baselines count every row alike
    comparison = (result.run_dir / "comparison.md").read_text()
    assert "Recency weights (a training row 180 days older than the latest weighs half as " \
           "much): xgb." in comparison
