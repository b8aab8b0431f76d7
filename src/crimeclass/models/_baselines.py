"""Honest baselines: what a model must beat to be worth its cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from crimeclass.models._errors import ModelOptionError, TrainingDataError
from crimeclass.models._target import BinaryPredictMixin, binary_target

__all__ = ["GroupRateClassifier"]


class GroupRateClassifier(BinaryPredictMixin, ClassifierMixin, BaseEstimator):
    """Predict each group's rate of the positive class in the training data.

    With ``column="location_description"`` this is the per-location baseline:
    the probability that an incident is an index offense is the share of index
    offenses among the training incidents at the same kind of place. Rates are
    shrunk towards the overall rate by ``smoothing`` pseudo-rows, so a kind of
    place seen twice does not get a rate of 0 or 1; a kind never seen in
    training (and a missing one, if none was missing in training) gets the
    overall rate.

    Parameters
    ----------
    column : str or int, default=0
        The grouping column: a name (DataFrame) or a position (array).
    smoothing : float, default=10.0
        Pseudo-rows at the overall rate added to every group.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    prior_ : float
        Overall rate of ``classes_[1]`` in training.
    rates_ : dict
        Smoothed rate of ``classes_[1]`` per group.
    missing_rate_ : float
        Smoothed rate of the rows whose group is missing (the overall rate if
        none was missing in training).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"place": ["STORE", "STORE", "STREET", "STREET"]})
    >>> clf = GroupRateClassifier(column="place", smoothing=0).fit(X, [1, 1, 0, 1])
    >>> clf.predict_proba(pd.DataFrame({"place": ["STORE", "PARK"]}))[:, 1]
    array([1.  , 0.75])
    """

    def __init__(self, column: str | int = 0, smoothing: float = 10.0) -> None:
        self.column = column
        self.smoothing = smoothing

    def _groups(self, X: Any, *, reset: bool) -> pd.Series:
        if hasattr(X, "columns"):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if isinstance(self.column, str):
                if self.column not in X.columns:
                    raise TrainingDataError(f"column {self.column!r} is not in X")
                col = X[self.column]
            else:
                col = X.iloc[:, self.column]
            return pd.Series(np.asarray(col, dtype=object))
        X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        if not isinstance(self.column, int | np.integer):
            raise TrainingDataError(f"column {self.column!r} is a name, but X has no column "
                                    "names")
        return pd.Series(np.asarray(X)[:, self.column], dtype=object)

    def fit(self, X: Any, y: Any) -> GroupRateClassifier:
        if self.smoothing < 0:
            raise ModelOptionError(f"smoothing must be >= 0, got {self.smoothing}",
                                   option="smoothing", value=self.smoothing)
        groups = self._groups(X, reset=True)
        self.classes_, pos = binary_target(y)
        if len(pos) != len(groups):
            raise TrainingDataError(f"X has {len(groups)} rows but y has {len(pos)}")
        self.prior_ = float(pos.mean())
        missing = groups.isna().to_numpy()
        stats = pd.DataFrame({"g": groups[~missing], "p": pos[~missing]}).groupby("g")["p"].agg(
            ["sum", "count"])
        rates = (stats["sum"] + self.smoothing * self.prior_) / (stats["count"] + self.smoothing)
        self.rates_ = {k: float(v) for k, v in rates.items()}
        k, n = pos[missing].sum(), missing.sum()
        self.missing_rate_ = float((k + self.smoothing * self.prior_) / (n + self.smoothing)) \
            if n else self.prior_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        groups = self._groups(X, reset=False)
        p = groups.map(self.rates_).astype(float)
        p = p.where(groups.notna(), self.missing_rate_).fillna(self.prior_).to_numpy()
        return np.column_stack([1 - p, p])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags
