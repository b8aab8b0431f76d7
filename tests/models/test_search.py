from __future__ import annotations

import numpy as np
import pytest

from crimeclass.models import MODELS, OptunaSearchCV, TimeOrderedSplit, make_model


def _search(features, name="lr", **kwargs):
    kw = {"n_trials": 4, "cv": TimeOrderedSplit(2), "random_state": 0}
    kw.update(kwargs)
    return OptunaSearchCV(make_model(name, features, n_jobs=1), MODELS[name].space, **kw)


def test_the_same_seed_gives_the_same_search(xy, features):
    X, y = xy
    a = _search(features).fit(X, y)
    b = _search(features).fit(X, y)
    assert a.cv_results_["trial_params"] == b.cv_results_["trial_params"]
    assert a.cv_results_["fold_scores"] == b.cv_results_["fold_scores"]
    np.testing.assert_array_equal(a.predict_proba(X.iloc[:50]), b.predict_proba(X.iloc[:50]))
    c = _search(features, random_state=1).fit(X, y)
    assert c.cv_results_["trial_params"] != a.cv_results_["trial_params"]


def test_search_exposes_the_study_and_the_best_trial(xy, features):
    X, y = xy
    seen = []
    s = _search(features, on_trial=lambda *a: seen.append(a)).fit(X, y)
    assert len(s.study_.trials) == 4
    assert s.best_score_ == pytest.approx(s.study_.best_value)
    assert s.best_trial_params_ == s.study_.best_params
    assert {"model__C", "model__l1_ratio", "model__solver"} <= set(s.best_params_)
    assert len(s.best_fold_scores_) == 2
    assert len(s.oof_y_) == len(s.oof_proba_) < len(y)  # validation rows only
    assert [d for d, *_ in seen] == [1, 2, 3, 4]
    assert s.best_estimator_.predict(X.iloc[:3]).shape == (3,)


def test_regularization_is_searched(xy, features):
    X, y = xy
    s = _search(features, n_trials=6, pruning=False).fit(X, y)
    penalties = {p["penalty"] for p in s.cv_results_["trial_params"]}
    assert len(penalties) >= 2
    assert len({p["C"] for p in s.cv_results_["trial_params"]}) == 6


def test_the_first_trial_is_the_familys_defaults(xy, features):
    X, y = xy
    start = MODELS["xgb"].start
    s = _search(features, name="xgb", n_trials=2, start=start).fit(X, y)
    assert s.cv_results_["trial_params"][0] == start
    assert s.cv_results_["trial_params"][1] != start  # then the sampler's own draws
    defaults = make_model("xgb", features).named_steps["model"].get_params()
    assert all(defaults[k] == v for k, v in start.items())  # the defaults, exactly


def test_xgboosts_learning_rate_is_the_familys_not_searched(xy, features):
    X, y = xy
    s = _search(features, name="xgb", n_trials=3).fit(X, y)
    assert not any("learning_rate" in p for p in s.cv_results_["trial_params"])
    family = make_model("xgb", features).named_steps["model"]
    assert s.best_estimator_.named_steps["model"].learning_rate == family.learning_rate


def test_bad_trials_are_pruned_after_the_first_fold(xy, features):
    X, y = xy
    s = _search(features, name="xgb", n_trials=12, cv=TimeOrderedSplit(3)).fit(X, y)
    states = s.cv_results_["state"]
    assert "pruned" in states
    pruned = [f for f, st in zip(s.cv_results_["fold_scores"], states, strict=True)
              if st == "pruned"]
    assert all(len(f) < 3 for f in pruned)


def test_a_baseline_gets_one_trial_and_its_cv_scores(xy, features):
    X, y = xy
    s = OptunaSearchCV(make_model("location_rate", features), None, n_trials=20,
                       cv=TimeOrderedSplit(3)).fit(X, y)
    assert len(s.study_.trials) == 1
    assert s.best_params_ == {}
    assert 0.55 < s.best_score_ < 0.75


def test_fit_warnings_are_recorded_not_raised(xy, features):
    X, y = xy
    pipe = make_model("lr", features).set_params(model__max_iter=2)
    s = OptunaSearchCV(pipe, None, cv=TimeOrderedSplit(2)).fit(X, y)
    assert any("ConvergenceWarning" in w for w in s.best_warnings_)


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"scoring": "accuracy"}, "unknown scoring 'accuracy'", id="scoring"),
    pytest.param({"n_trials": 0}, "n_trials must be at least 1", id="trials"),
])
def test_bad_search_settings_raise(xy, features, kwargs, match):
    X, y = xy
    with pytest.raises(ValueError, match=match):
        _search(features, **kwargs).fit(X, y)


def test_one_class_is_refused_before_searching(xy, features):
    X, y = xy
    with pytest.raises(ValueError, match="hold 1 class"):
        _search(features).fit(X, np.ones_like(y))
