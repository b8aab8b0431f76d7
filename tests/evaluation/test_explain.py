"""Permutation importance and SHAP values, checked on models with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from crimeclass.evaluation import permutation_importance, tree_shap
from crimeclass.models import EarlyStoppingLGBMClassifier, EarlyStoppingXGBClassifier


def _data(n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"date": pd.date_range("2017-01-01", periods=n, freq="h"),
                      "signal": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (X["signal"] + 0.5 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return X, y


def _pipe(est: object) -> Pipeline:
    drop_date = FunctionTransformer(lambda X: X[["signal", "noise"]].to_numpy(np.float32),
                                    feature_names_out=lambda t, names: np.array(
                                        ["signal", "noise"]))
    return Pipeline([("guard", "passthrough"), ("prep", drop_date), ("model", est)])


def test_a_feature_the_model_ignores_costs_nothing():
    X, y = _data()
    model = _pipe(LogisticRegression()).fit(X, y)
    model.steps[-1][1].coef_[0, 1] = 0.0  # the model now ignores "noise" entirely
    imp = {r["feature"]: r for r in permutation_importance(model, X, y, ["signal", "noise"],
                                                           n_repeats=3, random_state=1)}
    assert imp["noise"]["importance"] == 0.0 and imp["noise"]["std"] == 0.0
    assert imp["signal"]["importance"] > 0.3
    again = permutation_importance(model, X, y, ["signal", "noise"], n_repeats=3,
                                   random_state=1)
    assert again[0] == imp["signal"]  # seeded


@pytest.mark.parametrize("make", [
    lambda: EarlyStoppingXGBClassifier(n_estimators=50, max_depth=3, n_jobs=1),
    lambda: EarlyStoppingLGBMClassifier(n_estimators=50, num_leaves=7, n_jobs=1),
], ids=["xgb", "lgbm"])
def test_boosted_trees_shap_values_add_up_to_the_margin(make):
    X, y = _data()
    model = _pipe(make()).fit(X, y)
    values, inputs = tree_shap(model, X.iloc[:300])
    assert values.shape == (300, 2) and list(inputs.columns) == ["signal", "noise"]
    p = model.predict_proba(X.iloc[:300])[:, 1]
    margin = np.log(p / (1 - p))
    bias = margin - values.sum(axis=1)
    assert np.allclose(bias, bias[0], atol=1e-4)  # the same expected value for every row
    assert np.abs(values[:, 0]).mean() > 5 * np.abs(values[:, 1]).mean()


def test_forest_shap_values_add_up_to_the_probability():
    X, y = _data(600)
    model = _pipe(RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
                  ).fit(X, y)
    values, _ = tree_shap(model, X.iloc[:50])
    p = model.predict_proba(X.iloc[:50])[:, 1]
    base = p - values.sum(axis=1)
    assert np.allclose(base, base[0], atol=1e-6)


def test_other_models_have_no_tree_shap():
    X, y = _data(300)
    assert tree_shap(_pipe(LogisticRegression()).fit(X, y), X.iloc[:10]) is None
