"""The tabled tree SHAP gives XGBoost's own contributions (``pred_contribs``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost

from crimeclass.models import EarlyStoppingXGBClassifier, TreeShap, make_model

#: XGBoost sums its contributions in float32: a value near 1 is exact to about 1e-7, and
#: a row's sums over a few hundred leaves to about 1e-6.
ATOL = 1e-5


def _reference(booster: xgboost.Booster, X: np.ndarray, trees: int) -> np.ndarray:
    with xgboost.config_context(nthread=1):
        out = booster.predict(xgboost.DMatrix(X), pred_contribs=True,
                              iteration_range=(0, trees))
    return out[:, :-1]


def test_the_tables_of_the_pipeline_give_xgboosts_contributions(xy, holdout_xy, features):
    X, y = xy
    pipe = make_model("xgb", features, n_jobs=1)
    pipe.set_params(model__n_estimators=40)
    pipe.fit(X, y)
    est = pipe[-1]
    encoded = pipe[:-1].transform(holdout_xy[0])
    tables = est.tree_shap()
    assert tables is not None and tables.nbytes > 0
    ours = est.predict_contributions(encoded, tables)
    theirs = est.predict_contributions(encoded)
    assert ours.shape == theirs.shape == (len(encoded), len(encoded.columns))
    np.testing.assert_allclose(ours, theirs, atol=ATOL, rtol=0)
    assert np.abs(theirs).max() > 0.1  # not a comparison of zeros
    assert len(encoded) > 3 * 256  # blocks of rows on three threads: the same values
    np.testing.assert_array_equal(est.predict_contributions(encoded, tables, threads=3), ours)
    # each row's contributions and the bias add up to its log-odds, as XGBoost's do
    first = xgboost.DMatrix(encoded.to_numpy(np.float32)[:1],
                            feature_names=[str(c) for c in encoded.columns])
    bias = est.booster_.predict(first, pred_contribs=True,
                                iteration_range=(0, est.best_iteration_ + 1))[0, -1]
    p = est.predict_proba(encoded)[:, 1]
    np.testing.assert_allclose(ours.sum(axis=1) + bias, np.log(p / (1 - p)), atol=1e-4)


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_repeated_splits_and_missing_values_follow_the_path_as_xgboost_does(depth):
    rng = np.random.default_rng(depth)
    X = rng.normal(size=(3000, 3)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan  # missing values, sent left or right per split
    y = ((np.nan_to_num(X[:, 0]) > 0.3) ^ (np.nan_to_num(X[:, 1], nan=1) < 0)).astype(int)
    booster = xgboost.train({"max_depth": depth, "eta": 0.3, "nthread": 1,
                             "objective": "binary:logistic"}, xgboost.DMatrix(X, y), 25)
    # three features and depth 6: most paths split on a feature more than once
    tables = TreeShap.from_booster(booster)
    assert tables is not None
    assert tables.leaf_depth.max() <= 3  # at depth 6, paths of 6 splits merged to 3 features
    rows = np.vstack([X[:500], np.full((1, 3), np.nan, np.float32),
                      np.array([[0.3, 0.0, -1e30]], np.float32)])  # on the thresholds too
    np.testing.assert_allclose(tables.contributions(rows), _reference(booster, rows, 25),
                               atol=ATOL, rtol=0)


def test_the_first_trees_only_and_a_wrong_width_is_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 3] > 0).astype(int)
    booster = xgboost.train({"max_depth": 4, "nthread": 1, "objective": "binary:logistic"},
                            xgboost.DMatrix(X, y), 30)
    tables = TreeShap.from_booster(booster, 12)
    assert tables is not None
    np.testing.assert_allclose(tables.contributions(X), _reference(booster, X, 12),
                               atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="expected 4 columns"):
        tables.contributions(X[:, :3])
    assert tables.contributions(X[:0]).shape == (0, 4)


def test_categorical_splits_and_tables_too_large_are_left_to_xgboost():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"place": pd.Categorical(rng.choice(list("abcdef"), 1000)),
                          "hour": rng.integers(0, 24, 1000).astype(float)})
    y = (frame["place"].isin(["a", "c"]) ^ (frame["hour"] > 12)).to_numpy().astype(int)
    cat = xgboost.train({"max_depth": 3, "nthread": 1, "objective": "binary:logistic"},
                        xgboost.DMatrix(frame, y, enable_categorical=True), 5)
    assert TreeShap.from_booster(cat) is None
    numeric = xgboost.train({"max_depth": 3, "nthread": 1, "objective": "binary:logistic"},
                            xgboost.DMatrix(frame[["hour"]], y), 5)
    assert TreeShap.from_booster(numeric) is not None
    assert TreeShap.from_booster(numeric, max_bytes=8) is None


def test_without_tables_the_estimator_asks_xgboost(xy, features):
    X, y = xy
    est = EarlyStoppingXGBClassifier(n_estimators=5, n_jobs=1, fill_missing=-1.0)
    frame = X[[f.name for f in features if f.name in ("hour", "latitude", "longitude")]]
    est.fit(frame.astype("float32"), y)
    ours = est.predict_contributions(frame, est.tree_shap())
    np.testing.assert_allclose(ours, est.predict_contributions(frame), atol=ATOL, rtol=0)
