"""The final round: the search's best against the family's defaults on more rows."""

from __future__ import annotations

import numpy as np
import pytest

from crimeclass.models import FinalRound, OptunaSearchCV, TimeOrderedSplit, final_round, make_model
from crimeclass.models._final_round import sample_index
from crimeclass.models._search import SCORERS

#: Two shapes of XGBoost: its defaults, and one tree of depth 1 (far weaker).
SHAPES = {"defaults": {}, "stump": {"model__n_estimators": 1, "model__max_depth": 1}}


SHUFFLE_SEED = 0  # labels shuffled so that the search's chance pick is the stump


def _shape(trial):
    return SHAPES[trial.suggest_categorical("shape", list(SHAPES))]


def _search(features, start: str) -> OptunaSearchCV:
    return OptunaSearchCV(make_model("xgb", features, n_jobs=1), _shape, n_trials=6,
                          cv=TimeOrderedSplit(2), random_state=0, pruning=False,
                          start={"shape": start})


def _shuffled(y: np.ndarray, seed: int = SHUFFLE_SEED) -> np.ndarray:
    return np.random.default_rng(seed).permutation(y)


def test_the_defaults_are_kept_when_the_search_chose_worse(xy, features):
    X, y = xy
    # on shuffled labels the search's choice is chance: with this seed, the stump
    search = _search(features, start="defaults").fit(X, _shuffled(y))
    assert search.best_trial_params_ == {"shape": "stump"}
    start_oof = search.start_["oof_p"]
    result = final_round(search, X, y, rows=len(y), seed=0)
    assert isinstance(result, FinalRound)
    assert result.kept == "defaults" and result.defaults > result.choice
    assert result.rows == len(y) and result.fit_rows + result.scored_rows == len(y)
    assert search.best_trial_params_ == {"shape": "defaults"}
    assert search.best_params_ == {}
    np.testing.assert_array_equal(search.oof_proba_, start_oof)


def test_the_choice_is_kept_when_it_scores_better(xy, features):
    X, y = xy
    search = _search(features, start="stump").fit(X, y)
    assert search.best_trial_params_ == {"shape": "defaults"}
    result = final_round(search, X, y, rows=len(y), seed=0)
    assert result is not None and result.kept == "choice"
    assert result.choice > result.defaults
    assert search.best_trial_params_ == {"shape": "defaults"}
    # the scores are the search's scoring of the later rows, fitted on the earlier
    fit, scored = np.arange(result.fit_rows), np.arange(result.fit_rows, len(y))
    model = make_model("xgb", features, n_jobs=1).fit(X.iloc[fit], y[fit])
    expected = SCORERS["roc_auc"](y[scored], model.predict_proba(X.iloc[scored])[:, 1])
    assert result.choice == pytest.approx(expected)


def test_nothing_to_compare(xy, features):
    X, y = xy
    search = _search(features, start="defaults").fit(X, y)
    assert search.best_trial_params_ == {"shape": "defaults"}  # the start is the best
    assert final_round(search, X, y, rows=len(y), seed=0) is None
    flipped = _search(features, start="defaults").fit(X, _shuffled(y))
    assert final_round(flipped, X, y, rows=None, seed=0) is None  # no final round asked
    assert flipped.best_trial_params_ == {"shape": "stump"}  # and nothing changed


def test_the_rows_are_a_seeded_sample_in_time_order():
    idx = sample_index(1000, 100, seed=3)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, sample_index(1000, 100, seed=3))
    np.testing.assert_array_equal(sample_index(10, 100, seed=3), np.arange(10))


def test_a_candidate_that_scores_best_is_kept_with_its_own_validation(xy, features):
    """A candidate for many rows beats the start and the search's best on the final
    round's rows: it is kept, cross-validated on the search's rows like a trial, so that
    its out-of-fold predictions choose the threshold."""
    X, y = xy
    search = _search(features, start="stump").fit(X, y)
    assert search.best_trial_params_ == {"shape": "defaults"}
    deeper = {"model__n_estimators": 60, "model__max_depth": 4, "model__learning_rate": 0.1}
    worse = {"model__n_estimators": 2, "model__max_depth": 1}
    result = final_round(search, X, y, rows=len(y), seed=0,
                         candidates={"deeper": deeper, "worse": worse}, search_rows=(X, y))
    assert result is not None and set(result.candidates) == {"deeper", "worse"}
    assert result.kept == "deeper"  # on the sample, seeded: 0.660 against 0.650 and 0.592
    assert result.candidates["deeper"] > max(result.choice, result.defaults,
                                             result.candidates["worse"])
    assert search.best_params_ == {**SHAPES["stump"], **deeper}
    assert search.best_trial_params_ == {"final_round": "deeper"}
    again = search.cross_validate(search.best_params_, X, y)
    np.testing.assert_array_equal(search.oof_proba_, again["oof_p"])
    assert search.best_score_ == again["value"]


def test_candidates_are_tried_when_the_start_is_the_best(xy, features):
    X, y = xy
    search = _search(features, start="defaults").fit(X, y)
    assert search.best_trial_params_ == {"shape": "defaults"}
    result = final_round(search, X, y, rows=len(y), seed=0,
                         candidates={"stump": SHAPES["stump"]}, search_rows=(X, y))
    assert result is not None and result.choice == result.defaults
    assert result.kept == "defaults" and result.candidates["stump"] < result.defaults
