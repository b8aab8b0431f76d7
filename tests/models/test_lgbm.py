"""The LightGBM family: scikit-learn's common checks, native categories, early stopping,
and a run of ``train()`` that saves it in LightGBM's text format and loads it back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from crimeclass.features import embedding_columns
from crimeclass.models import (
    EarlyStoppingLGBMClassifier,
    ModelOptionError,
    TrainConfig,
    load_model,
    make_model,
    train,
)

from .conftest import SPEC


@parametrize_with_checks([
    EarlyStoppingLGBMClassifier(n_estimators=20, n_jobs=1),
    EarlyStoppingLGBMClassifier(n_estimators=20, n_jobs=1, categorical_features=[0]),
])
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def test_lightgbm_reads_the_places_as_native_categories(xy, features):
    X, y = xy
    pipe = make_model("lgbm", features, n_jobs=1).set_params(model__n_estimators=40).fit(X, y)
    model = pipe[-1]
    cats = embedding_columns(features)
    assert cats and model.categorical_features == cats
    # LightGBM splits the place columns on sets of codes ("=="), never on an order
    kinds: dict[str, set[int]] = {"==": set(), "<=": set()}
    nodes = [t["tree_structure"] for t in model.booster_.dump_model()["tree_info"]]
    while nodes:
        node = nodes.pop()
        if "split_feature" in node:
            kinds[node["decision_type"]].add(node["split_feature"])
            nodes += [node["left_child"], node["right_child"]]
    assert kinds["=="] and kinds["=="] <= set(cats)
    assert not kinds["<="] & set(cats)


def test_lightgbm_stops_early_on_the_last_rows(xy, features):
    X, y = xy
    pipe = make_model("lgbm", features, n_jobs=1)
    pipe.set_params(model__n_estimators=600, model__learning_rate=0.3)
    pipe.fit(X, y)
    assert pipe[-1].best_iteration_ < 600  # stopped before the last tree
    # without a validation share every tree is grown
    pipe.set_params(model__n_estimators=15, model__validation_fraction=0).fit(X, y)
    assert pipe[-1].best_iteration_ == 15 == pipe[-1].booster_.num_trees()


def test_the_held_out_rows_are_the_last_ones():
    """The rows held out for early stopping are the latest: their labels change where the
    fit stops, never the trees grown; the first rows' labels change the trees."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = (X[:, 0] + rng.normal(size=2000) > 0).astype(int)
    a = EarlyStoppingLGBMClassifier(n_estimators=300, n_jobs=1, validation_fraction=0.25,
                                    early_stopping_rounds=20).fit(X, y)
    # the last quarter's rows never grow a tree: swapping their labels leaves the trees alone
    y2 = y.copy()
    y2[1500:] = rng.permutation(y2[1500:])
    b = EarlyStoppingLGBMClassifier(n_estimators=300, n_jobs=1, validation_fraction=0.25,
                                    early_stopping_rounds=20).fit(X, y2)
    n = min(a.best_iteration_, b.best_iteration_)
    assert n >= 1
    np.testing.assert_allclose(a.booster_.predict(X, num_iteration=n),
                               b.booster_.predict(X, num_iteration=n))
    # but the first rows' labels do
    y3 = y.copy()
    y3[:500] = 1 - y3[:500]
    c = EarlyStoppingLGBMClassifier(n_estimators=300, n_jobs=1, validation_fraction=0.25,
                                    early_stopping_rounds=20).fit(X, y3)
    assert not np.allclose(a.booster_.predict(X, num_iteration=1),
                           c.booster_.predict(X, num_iteration=1))


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)",
                 id="validation-fraction"),
    pytest.param({"categorical_features": [5]}, r"categorical_features \[5\] are not columns",
                 id="categorical-out-of-range"),
])
def test_bad_options_are_refused_clearly(kwargs, match):
    with pytest.raises(ModelOptionError, match=match):
        EarlyStoppingLGBMClassifier(n_estimators=5, **kwargs).fit(np.zeros((20, 2)),
                                                                  np.arange(20) % 2)


def test_one_class_is_refused_clearly():
    with pytest.raises(ValueError, match="one class only"):
        EarlyStoppingLGBMClassifier(n_estimators=5).fit(np.zeros((10, 2)), np.ones(10))


def test_contributions_add_up_to_the_log_odds():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    y = (X[:, 1] > 0).astype(int)
    clf = EarlyStoppingLGBMClassifier(n_estimators=20, n_jobs=1).fit(X, y)
    contrib = clf.predict_contributions(X[:10])
    assert contrib.shape == (10, 3)
    raw = clf.booster_.predict(X[:10], num_iteration=clf.best_iteration_, raw_score=True)
    bias = raw - contrib.sum(axis=1)
    np.testing.assert_allclose(bias, bias[0])  # one bias for every row


def test_train_runs_lgbm_saves_its_text_model_and_predicts_what_was_reported(
        sample_store, sample_frame, tmp_path):
    config = TrainConfig(models=("lgbm",), trials=2, folds=2, since="2014-01-01",
                         until="2017-01-01", search_sample=None, features=SPEC, n_jobs=1,
                         baselines=False)
    result = train(sample_store, config, runs_dir=tmp_path)
    entry = result.metrics["models"][0]
    assert entry["name"] == "lgbm" and result.best_model == "lgbm"
    assert 0.5 < entry["metrics"]["roc_auc"] < 1
    assert {"num_leaves", "learning_rate", "cat_smooth"} <= set(entry["params"])
    folder = result.run_dir / "models" / "lgbm"
    model, manifest = load_model(folder)
    assert manifest["saved_as"] == "lightgbm-txt"
    assert set(manifest["files"]) == {"pipeline.skops", "booster.txt"}
    assert (folder / "booster.txt").read_text().startswith("tree\n")
    preds = pd.read_parquet(result.run_dir / "predictions.parquet")
    hold = sample_frame[(sample_frame["date"] >= "2016-01-01")
                        & (sample_frame["date"] < "2017-01-01")]
    assert list(hold["key"]) == list(preds["key"])
    p = model.predict_proba(hold[["date", *manifest["features"]]])[:, 1]
    np.testing.assert_allclose(p, preds["p_lgbm"], rtol=1e-6)


def test_negative_codes_are_read_as_missing():
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 5, 600).astype(float)  # -1: rare, unseen or missing
    X = np.column_stack([codes, rng.normal(size=600)])
    y = ((codes == 2) | (X[:, 1] > 0.5)).astype(int)
    as_nan = X.copy()
    as_nan[as_nan[:, 0] < 0, 0] = np.nan
    kw = {"n_estimators": 30, "n_jobs": 1, "categorical_features": [0]}
    a = EarlyStoppingLGBMClassifier(**kw).fit(X, y)
    b = EarlyStoppingLGBMClassifier(**kw).fit(as_nan, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(as_nan))
    np.testing.assert_array_equal(a.predict_contributions(X), b.predict_contributions(as_nan))
    assert np.isnan(a._missing(X.astype(np.float32))[codes < 0, 0]).all()
