"""XGBoost with early stopping on a validation split carved from the training data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from crimeclass.models._target import BinaryPredictMixin, binary_target

__all__ = ["EarlyStoppingXGBClassifier"]


class EarlyStoppingXGBClassifier(BinaryPredictMixin, ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (``xgboost``, ``tree_method="hist"``) that stop early.

    ``fit`` holds out the *last* ``validation_fraction`` of the rows it is
    given (the latest ones, when the rows are in time order, as crimeclass
    passes them) and stops adding trees when the log loss on them has not
    improved for ``early_stopping_rounds`` rounds; the model keeps the trees up
    to the best round. Nothing outside the training data is used.

    Parameters
    ----------
    n_estimators : int, default=1000
        Most trees to grow.
    learning_rate, max_depth, min_child_weight, subsample, colsample_bytree,
    reg_lambda, reg_alpha, gamma, max_bin :
        As in :class:`xgboost.XGBClassifier`; ``reg_lambda`` (L2),
        ``reg_alpha`` (L1), ``gamma``, ``min_child_weight`` and ``max_depth``
        regularize.
    validation_fraction : float, default=0.1
        Share of the (last) rows held out for early stopping; 0 grows all trees.
    early_stopping_rounds : int, default=30
    n_jobs : int, optional
    random_state : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    booster_ : xgboost.Booster
        The trees (saved by crimeclass in XGBoost's UBJ format).
    best_iteration_ : int
        Index of the last tree kept.
    n_features_in_ : int
    """

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.1,
                 max_depth: int = 6, min_child_weight: float = 1.0, subsample: float = 1.0,
                 colsample_bytree: float = 1.0, reg_lambda: float = 1.0, reg_alpha: float = 0.0,
                 gamma: float = 0.0, max_bin: int = 256, validation_fraction: float = 0.1,
                 early_stopping_rounds: int = 30, n_jobs: int | None = None,
                 random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _xgb_params(self) -> dict[str, Any]:
        names = ("n_estimators", "learning_rate", "max_depth", "min_child_weight", "subsample",
                 "colsample_bytree", "reg_lambda", "reg_alpha", "gamma", "max_bin", "n_jobs",
                 "random_state")
        return {**{k: getattr(self, k) for k in names}, "tree_method": "hist",
                "objective": "binary:logistic", "eval_metric": "logloss"}

    def fit(self, X: Any, y: Any) -> EarlyStoppingXGBClassifier:
        import xgboost

        if not 0 <= self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in [0, 1), got "
                             f"{self.validation_fraction}")
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_all_finite="allow-nan")
        self.classes_, y01 = binary_target(y)
        n_val = math.ceil(self.validation_fraction * len(y01))
        params = self._xgb_params()
        if n_val and self.early_stopping_rounds and len(y01) - n_val > 0 \
                and len(np.unique(y01[-n_val:])) == 2 and len(np.unique(y01[:-n_val])) == 2:
            model = xgboost.XGBClassifier(**params,
                                          early_stopping_rounds=self.early_stopping_rounds)
            model.fit(X[:-n_val], y01[:-n_val], eval_set=[(X[-n_val:], y01[-n_val:])],
                      verbose=False)
            self.best_iteration_ = int(model.best_iteration)
        else:  # too few rows (or one class) to hold any out: grow every tree
            model = xgboost.XGBClassifier(**params)
            model.fit(X, y01, verbose=False)
            self.best_iteration_ = self.n_estimators - 1
        self.booster_ = model.get_booster()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, ensure_all_finite="allow-nan")
        p = self.booster_.inplace_predict(
            X, iteration_range=(0, self.best_iteration_ + 1))
        p = np.asarray(p, dtype=np.float64)
        return np.column_stack([1 - p, p])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags
