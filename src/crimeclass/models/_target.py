"""The target of a binary classifier, checked the way scikit-learn's checks expect."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import assert_all_finite, column_or_1d

from crimeclass.models._errors import TrainingDataError

__all__ = ["BinaryPredictMixin", "binary_target", "check_weight", "fit_rows"]


def binary_target(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``classes_`` and the 0/1 target of ``y``; a clear ValueError unless it has two classes.

    >>> binary_target(["no", "yes", "no"])
    (array(['no', 'yes'], dtype='<U3'), array([0, 1, 0]))
    """
    if y is None:
        raise TrainingDataError("this classifier requires y to be passed, but the target y is "
                                "None")
    y = column_or_1d(y, warn=True)
    if y.dtype.kind == "f":
        assert_all_finite(y, input_name="y")
    y_type = type_of_target(y, input_name="y", raise_unknown=True)
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise TrainingDataError(f"y holds one class only ({classes[0]!r}); a classifier needs "
                                "two classes", rows=len(y))
    if y_type != "binary":
        raise TrainingDataError("Only binary classification is supported. The type of the "
                                f"target is {y_type}.", rows=len(y))
    return classes, (y == classes[1]).astype(int)


def fit_rows(y01: np.ndarray, validation_fraction: float, early_stopping_rounds: int,
             max_validation_rows: int | None = None) -> int:
    """How many leading rows a model that stops early fits on; the rest validate it.

    The last ``validation_fraction`` of the rows, at most ``max_validation_rows`` of them,
    validate. All rows fit when there is nothing to stop on: no rounds, no validation rows,
    or one class on either side of the cut.

    >>> fit_rows(np.array([0, 1, 0, 1, 0, 1, 0, 1, 1, 0]), 0.2, 30)
    8
    >>> fit_rows(np.array([0, 1, 0, 1, 0, 1, 0, 1, 1, 0]), 0.5, 30, max_validation_rows=2)
    8
    >>> fit_rows(np.array([0, 1, 0, 1, 1, 1]), 0.2, 30)
    6
    """
    n_val = math.ceil(validation_fraction * len(y01))
    if max_validation_rows is not None:
        n_val = min(n_val, max_validation_rows)
    n_fit = len(y01) - n_val
    if n_val and early_stopping_rounds and n_fit > 0 \
            and len(np.unique(y01[n_fit:])) == 2 and len(np.unique(y01[:n_fit])) == 2:
        return n_fit
    return len(y01)


def check_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as a float array of ``n`` finite, non-negative numbers (or None)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if len(w) != n or not np.isfinite(w).all() or (w < 0).any():
        raise TrainingDataError(f"sample_weight must hold {n} finite, non-negative numbers "
                                f"(got {len(w)})", rows=n)
    if n and not w.any():
        raise TrainingDataError("sample_weight must hold at least one weight above zero: "
                                "with every weight zero there is nothing to fit", rows=n)
    return w


class BinaryPredictMixin:
    """``predict`` of a binary classifier from its ``predict_proba``: class 1 from 0.5 on.

    The decision threshold a run chooses on validation data is applied by the caller; this
    is scikit-learn's default rule, for the estimator API.
    """

    classes_: np.ndarray
    predict_proba: Callable[[Any], np.ndarray]

    def predict(self, X: Any) -> np.ndarray:
        p = self.predict_proba(X)[:, 1]
        return np.where(p >= 0.5, self.classes_[1], self.classes_[0])
