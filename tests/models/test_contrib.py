"""A score's reasons: each model's log-odds split into one term per feature, exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimeclass.models import make_model, model_explainer
from crimeclass.models._contrib import _feature_positions


def _fit(name: str, features: list, xy: tuple[pd.DataFrame, np.ndarray]):
    pipe = make_model(name, features, n_jobs=1)
    est = pipe[-1]
    for model in ([b[-1] for _, b in est.bases] if name == "stack" else [est]):
        if "n_estimators" in model.get_params():
            model.set_params(n_estimators=30)
    if name == "stack":
        est.set_params(n_splits=2)
    return pipe.fit(*xy)


@pytest.fixture(scope="module", params=["lr", "xgb", "lgbm", "stack"])
def fitted(request, xy, features):
    return request.param, _fit(request.param, features, xy)


def _log_odds(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_the_terms_add_up_to_the_log_odds_and_the_probabilities_are_the_pipeline_s(
        fitted, holdout_xy, features):
    name, pipe = fitted
    names = [f.name for f in features]
    X = holdout_xy[0]
    explain = model_explainer(pipe, names)
    assert explain is not None
    p, terms = explain.score(X)
    np.testing.assert_array_equal(p, pipe.predict_proba(X)[:, 1])
    assert terms.shape == (len(X), len(names))
    # what the terms leave out of each row's log-odds is one constant (bias, intercept)
    rest = _log_odds(p) - terms.sum(axis=1)
    assert np.ptp(rest) < 1e-4, name
    assert np.abs(terms).max() > 0.05  # not a comparison of zeros
    # each row's terms differ: they are the row's own
    assert len({tuple(np.round(t, 6)) for t in terms[:50]}) > 40


def test_the_tabled_terms_are_xgboost_s_own(fitted, holdout_xy, features):
    name, pipe = fitted
    names = [f.name for f in features]
    X = holdout_xy[0][:300]
    tabled = model_explainer(pipe, names).score(X)[1]
    plain = model_explainer(pipe, names, tabled=False).score(X)[1]
    np.testing.assert_allclose(tabled, plain, atol=1e-5, rtol=0)


def test_a_one_hot_feature_s_term_is_its_category_s_coefficient(xy, holdout_xy, features):
    pipe = _fit("lr", features, xy)
    names = [f.name for f in features]
    X = holdout_xy[0][:200]
    terms = model_explainer(pipe, names).score(X)[1]
    prep, lr = pipe.steps[-2][1], pipe[-1]
    columns = [str(c) for c in prep.get_feature_names_out()]
    encoded = pipe[:-1].transform(X)
    encoded = np.asarray(encoded.toarray() if hasattr(encoded, "toarray") else encoded)
    on_hot = [j for j, c in enumerate(columns) if c.startswith("onehot__district_")]
    assert on_hot
    want = (encoded[:, on_hot] * lr.coef_[0][on_hot]).sum(axis=1)
    np.testing.assert_allclose(terms[:, names.index("district")], want, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # few rows
@pytest.mark.parametrize("name", ["rf", "svm", "majority"])
def test_models_without_known_terms_are_not_explained(name, xy, features):
    pipe = make_model(name, features, n_jobs=1)
    if "n_estimators" in pipe[-1].get_params():
        pipe.set_params(model__n_estimators=5)
    pipe.fit(xy[0][:3000], xy[1][:3000])
    assert model_explainer(pipe, [f.name for f in features]) is None


def test_every_encoded_input_finds_its_feature():
    names = ["district", "index_share_location_28d", "index_share_location_28d_night", "hour"]
    columns = ["onehot__district_4.0", "numbers__index_share_location_28d",
               "missing__missingindicator_index_share_location_28d_night", "codes__hour",
               "onehot__district_infrequent_sklearn"]
    assert _feature_positions(columns, names).tolist() == [0, 1, 2, 3, 0]
    assert _feature_positions(["numbers__weekday"], names) is None
