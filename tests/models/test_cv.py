from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimeclass.models import TimeOrderedSplit, check_folds, make_cv


def test_validation_rows_are_always_later_than_training_rows(xy):
    X, _ = xy
    shuffled = X.sample(frac=1, random_state=0).reset_index(drop=True)
    folds = list(TimeOrderedSplit(n_splits=3).split(shuffled))
    assert len(folds) == 3
    sizes = []
    for train, val in folds:
        assert shuffled["date"].iloc[train].max() < shuffled["date"].iloc[val].min()
        sizes.append(len(val))
    assert max(sizes) - min(sizes) < 0.05 * len(X)
    # expanding window: each fold trains on more
    assert len(folds[0][0]) < len(folds[1][0]) < len(folds[2][0])


def test_a_cut_never_separates_rows_with_the_same_timestamp():
    dates = pd.to_datetime(["2016-01-01"] * 3 + ["2016-01-02"] * 3 + ["2016-01-03"] * 2)
    X = pd.DataFrame({"date": dates})
    for train, val in TimeOrderedSplit(n_splits=2).split(X):
        assert not set(X["date"].iloc[train]) & set(X["date"].iloc[val])


@pytest.mark.parametrize("X, n_splits, match", [
    pytest.param(pd.DataFrame({"date": pd.to_datetime(["2016-01-01"] * 5)}), 2,
                 "cannot be cut", id="one-timestamp"),
    pytest.param(pd.DataFrame({"date": pd.date_range("2016-01-01", periods=2)}), 3,
                 "cannot be cut", id="too-few-rows"),
    pytest.param(pd.DataFrame({"x": [1, 2, 3]}), 2, "need a DataFrame with a 'date'",
                 id="no-date"),
    pytest.param(pd.DataFrame({"date": pd.date_range("2016-01-01", periods=9)}), 1,
                 "at least 2", id="one-fold"),
])
def test_impossible_folds_raise_clear_errors(X, n_splits, match):
    with pytest.raises(ValueError, match=match):
        list(TimeOrderedSplit(n_splits=n_splits).split(X))


def test_check_folds_refuses_a_validation_period_with_one_class():
    y = np.array([0, 1, 0, 1, 0, 0, 0, 0])
    splits = [(np.arange(4), np.arange(4, 8))]
    with pytest.raises(ValueError, match="validation rows hold one class only"):
        check_folds(splits, y, min_rows=1)
    with pytest.raises(ValueError, match="4 training rows; at least 20"):
        check_folds(splits, np.array([0, 1] * 4))


def test_make_cv_names():
    assert isinstance(make_cv("time", 4), TimeOrderedSplit)
    assert make_cv("stratified", 4, 1).get_n_splits() == 4
    with pytest.raises(ValueError, match="unknown cross-validation 'random'"):
        make_cv("random")  # type: ignore[arg-type]
