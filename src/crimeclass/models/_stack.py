"""A stacked ensemble over out-of-fold predictions taken in time order.

Each base model's out-of-fold prediction for a period comes from a clone fitted
on the *earlier* periods only (:class:`~crimeclass.models.TimeOrderedSplit`),
so the meta-learner learns how to weigh the bases from predictions made the
way they will be made later: on a period none of them has seen. The first
period has no earlier one and so no out-of-fold prediction; the meta-learner
(a logistic regression on the bases' log-odds) is fitted on the others. Then
every base is refitted on all the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils import get_tags
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from crimeclass.models._cv import TimeOrderedSplit
from crimeclass.models._errors import ModelOptionError, TrainingDataError
from crimeclass.models._target import BinaryPredictMixin, binary_target

__all__ = ["TimeStackClassifier"]

_EPS = 1e-6


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class TimeStackClassifier(BinaryPredictMixin, ClassifierMixin, BaseEstimator):
    """Base models combined by a logistic regression on time-ordered out-of-fold predictions.

    Parameters
    ----------
    bases : list of (str, estimator)
        The base models (crimeclass passes whole pipelines, each with its own
        leakage guard and encoders), each a binary classifier with ``predict_proba``.
    n_splits : int, default=3
        Time-ordered folds: the rows are cut into ``n_splits + 1`` periods and
        fold ``i`` fits on periods ``0 .. i`` and predicts period ``i + 1``.
    time_column : str or None, default="date"
        The column of ``X`` holding each row's time; None: the rows' order is
        their time (for arrays).
    C : float, default=1.0
        Inverse L2 strength of the meta-learner.
    random_state : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    estimators_ : list of (str, estimator)
        The bases refitted on all the rows.
    meta_ : LogisticRegression
        Fitted on the bases' out-of-fold log-odds.
    folds_ : list of dict
        Per fold, its rows and times: ``train_rows``, ``predicted_rows``,
        ``train_last``, ``predicted_first``, ``predicted_last`` (a fold whose
        training periods hold one class predicts nothing and is left out).
    oof_fold_ : ndarray of shape (n_rows,)
        The fold whose clones predicted each row; -1 for the first period.
    oof_proba_ : ndarray of shape (n_rows, n_bases)
        The out-of-fold probabilities (float32; NaN in the first period).
    n_features_in_ : int
    """

    def __init__(self, bases: Sequence[tuple[str, Any]], n_splits: int = 3,
                 time_column: str | None = "date", C: float = 1.0,
                 random_state: int = 0) -> None:
        self.bases = bases
        self.n_splits = n_splits
        self.time_column = time_column
        self.C = C
        self.random_state = random_state

    def _times(self, X: Any) -> pd.DataFrame:
        """A frame of the rows' times, as :class:`TimeOrderedSplit` reads them."""
        if self.time_column is None:
            return pd.DataFrame({"date": pd.to_datetime(np.arange(len(X)), unit="D")})
        if not hasattr(X, "columns") or self.time_column not in X.columns:
            raise TrainingDataError(f"the stacked ensemble needs a DataFrame with a "
                                    f"{self.time_column!r} column (its folds are in time "
                                    "order)")
        return pd.DataFrame({"date": X[self.time_column].to_numpy()})

    def _check_X(self, X: Any, y: Any = None, *, reset: bool) -> tuple[Any, Any]:
        """A DataFrame is kept as it is (the bases read its columns); an array is checked."""
        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if y is not None:
                y = column_or_1d(y, warn=True)
                check_consistent_length(X, y)
            return X, y
        finite = "allow-nan" if self.__sklearn_tags__().input_tags.allow_nan else True
        if y is None:
            return validate_data(self, X, reset=reset, ensure_all_finite=finite), None
        return validate_data(self, X, y, reset=reset, ensure_all_finite=finite)

    def fit(self, X: Any, y: Any) -> TimeStackClassifier:
        if not self.bases:
            raise ModelOptionError("the stacked ensemble needs at least one base model",
                                   option="bases", value=self.bases)
        X, y = self._check_X(X, y, reset=True)
        self.classes_, y01 = binary_target(y)
        times = self._times(X)
        oof = np.full((len(y01), len(self.bases)), np.nan, dtype=np.float32)
        self.oof_fold_ = np.full(len(y01), -1, dtype=np.int8)
        self.folds_: list[dict[str, Any]] = []
        for train, predicted in TimeOrderedSplit(self.n_splits).split(times):
            if len(np.unique(y01[train])) < 2:  # nothing to learn from: no prediction
                continue
            for j, (_, base) in enumerate(self.bases):
                fitted = clone(base).fit(_take(X, train), y01[train])
                oof[predicted, j] = fitted.predict_proba(_take(X, predicted))[:, 1]
            self.oof_fold_[predicted] = len(self.folds_)
            t = times["date"]
            self.folds_.append({"train_rows": len(train), "predicted_rows": len(predicted),
                                "train_last": str(t.iloc[train].max()),
                                "predicted_first": str(t.iloc[predicted].min()),
                                "predicted_last": str(t.iloc[predicted].max())})
        seen = ~np.isnan(oof[:, 0])
        if len(np.unique(y01[seen])) < 2:
            raise TrainingDataError("the out-of-fold predictions of the stacked ensemble "
                                    "cover one class only (each fold's training periods "
                                    "need both classes); use fewer folds or more rows",
                                    rows=int(seen.sum()))
        self.oof_proba_ = oof
        self.meta_ = LogisticRegression(C=self.C, random_state=self.random_state).fit(
            _log_odds(oof[seen].astype(np.float64)), y01[seen])
        self.estimators_ = [(name, clone(base).fit(X, y01)) for name, base in self.bases]
        return self

    def _base_proba(self, X: Any) -> np.ndarray:
        return np.column_stack([est.predict_proba(X)[:, 1] for _, est in self.estimators_])

    def combine(self, base_proba: np.ndarray) -> np.ndarray:
        """P(positive class) from the bases' probabilities (a column per base, in the
        order of ``estimators_``): the meta-learner on their log-odds."""
        check_is_fitted(self)
        return self.meta_.predict_proba(_log_odds(base_proba))[:, 1]

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        p = self.combine(self._base_proba(X))
        return np.column_stack([1 - p, p])

    @property
    def weights_(self) -> dict[str, float]:
        """The meta-learner's weight of each base's log-odds."""
        check_is_fitted(self)
        return {name: float(w) for (name, _), w in zip(self.estimators_, self.meta_.coef_[0],
                                                       strict=True)}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = all(get_tags(base).input_tags.allow_nan
                                        for _, base in self.bases)
        return tags
