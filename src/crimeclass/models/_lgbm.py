"""LightGBM with the places as native categories and early stopping on the latest rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from crimeclass.models._errors import ModelOptionError
from crimeclass.models._target import BinaryPredictMixin, binary_target, check_weight, fit_rows

__all__ = ["EarlyStoppingLGBMClassifier", "import_lightgbm"]


def import_lightgbm() -> Any:
    """Import LightGBM, or say which extra installs it."""
    try:
        import lightgbm
    except ImportError as e:  # pragma: no cover - the test environment has it
        raise ModelOptionError("the 'lgbm' model needs LightGBM: pip install "
                               "'crimeclass[lgbm]'", option="--models", value="lgbm") from e
    return lightgbm


class EarlyStoppingLGBMClassifier(BinaryPredictMixin, ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (``lightgbm``) that read categories natively and stop early.

    ``fit`` holds out the *last* ``validation_fraction`` of the rows it is
    given (the latest ones: crimeclass passes rows in time order, so these are
    the last months of the training years) and stops adding trees when the log
    loss on them has not improved for ``early_stopping_rounds`` rounds; the
    model keeps the trees up to the best round. Nothing outside the training
    data is used.

    The columns listed in ``categorical_features`` hold integer codes (the
    ``embedding`` preprocessor's: rare, unseen and missing categories are -1,
    which LightGBM reads as missing); LightGBM splits on sets of them instead
    of on an order or a target encoding.

    Parameters
    ----------
    categorical_features : sequence of int, default=()
        Indices of the columns holding category codes.
    n_estimators : int, default=2000
        Most trees to grow.
    learning_rate, num_leaves, max_depth, min_child_samples, subsample,
    colsample_bytree, reg_lambda, reg_alpha, min_split_gain, cat_smooth,
    cat_l2, max_cat_threshold, max_bin :
        As in :class:`lightgbm.LGBMClassifier` (``subsample`` is used every
        round when below 1).
    validation_fraction : float, default=0.1
        Share of the (last) rows held out for early stopping; 0 grows all trees.
    early_stopping_rounds : int, default=50
    n_jobs : int, optional
    random_state : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    booster_ : lightgbm.Booster
        The trees (saved by crimeclass in LightGBM's text model format).
    best_iteration_ : int
        Number of trees kept.
    n_features_in_ : int
    """

    def __init__(self, categorical_features: Sequence[int] = (), n_estimators: int = 2000,
                 learning_rate: float = 0.05, num_leaves: int = 63, max_depth: int = -1,
                 min_child_samples: int = 20, subsample: float = 1.0,
                 colsample_bytree: float = 1.0, reg_lambda: float = 0.0,
                 reg_alpha: float = 0.0, min_split_gain: float = 0.0, cat_smooth: float = 10.0,
                 cat_l2: float = 10.0, max_cat_threshold: int = 32, max_bin: int = 255,
                 validation_fraction: float = 0.1, early_stopping_rounds: int = 50,
                 n_jobs: int | None = None, random_state: int = 0) -> None:
        self.categorical_features = categorical_features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.min_split_gain = min_split_gain
        self.cat_smooth = cat_smooth
        self.cat_l2 = cat_l2
        self.max_cat_threshold = max_cat_threshold
        self.max_bin = max_bin
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _train_params(self) -> dict[str, Any]:
        """The parameters of ``lightgbm.train`` (the scikit-learn names mapped to the core's)."""
        return {
            "objective": "binary", "metric": "binary_logloss", "verbosity": -1,
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "max_depth": self.max_depth, "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample, "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree, "lambda_l2": self.reg_lambda,
            "lambda_l1": self.reg_alpha, "min_gain_to_split": self.min_split_gain,
            "cat_smooth": self.cat_smooth, "cat_l2": self.cat_l2,
            "max_cat_threshold": self.max_cat_threshold, "max_bin": self.max_bin,
            "seed": self.random_state, "deterministic": True, "force_row_wise": True,
            "num_threads": self.n_jobs if self.n_jobs is not None and self.n_jobs > 0 else 0,
        }

    def _categories(self) -> list[int]:
        cats = [int(c) for c in self.categorical_features]
        bad = [c for c in cats if not 0 <= c < self.n_features_in_]
        if bad:
            raise ModelOptionError(f"categorical_features {bad} are not columns of X "
                                   f"({self.n_features_in_} columns)",
                                   option="categorical_features", value=bad)
        return cats

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EarlyStoppingLGBMClassifier:
        """Fit on the rows in the order given; the latest ones validate early stopping.

        ``sample_weight`` weighs the rows the trees are fitted on (the held-out rows of
        early stopping count alike)."""
        lgb = import_lightgbm()
        if not 0 <= self.validation_fraction < 1:
            raise ModelOptionError("validation_fraction must be in [0, 1), got "
                                   f"{self.validation_fraction}", option="validation_fraction",
                                   value=self.validation_fraction)
        X, y = validate_data(self, X, y, reset=True, dtype=np.float32,
                             ensure_all_finite="allow-nan")
        self.classes_, y01 = binary_target(y)
        weight = check_weight(sample_weight, len(y01))
        cats = self._categories()
        X = self._missing(X)
        params = self._train_params()
        # too few rows (or one class) to hold any out: every tree, every row
        n_fit = fit_rows(y01, self.validation_fraction, self.early_stopping_rounds)
        stop = n_fit < len(y01)
        train = lgb.Dataset(X[:n_fit], label=y01[:n_fit], categorical_feature=cats,
                            weight=None if weight is None else weight[:n_fit],
                            params={"max_bin": self.max_bin, "verbosity": -1})
        if stop:
            val = lgb.Dataset(X[n_fit:], label=y01[n_fit:], reference=train,
                              categorical_feature=cats)
            booster = lgb.train(params, train, num_boost_round=self.n_estimators,
                                valid_sets=[val], valid_names=["validation"],
                                callbacks=[lgb.early_stopping(self.early_stopping_rounds,
                                                              verbose=False)])
            self.best_iteration_ = int(booster.best_iteration) or self.n_estimators
        else:
            booster = lgb.train(params, train, num_boost_round=self.n_estimators)
            self.best_iteration_ = self.n_estimators
        self.booster_ = booster
        return self

    def _missing(self, X: np.ndarray) -> np.ndarray:
        """Codes below 0 (rare, unseen, missing) as NaN: what LightGBM reads them as anyway,
        said here so that it does not warn on every call."""
        cats = self._categories()
        if cats:
            block = X[:, cats]
            if (block < 0).any():
                X = X.copy()
                X[:, cats] = np.where(block < 0, np.nan, block)
        return X

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = self._missing(validate_data(self, X, reset=False, dtype=np.float32,
                                        ensure_all_finite="allow-nan"))
        p = np.asarray(self.booster_.predict(X, num_iteration=self.best_iteration_),
                       dtype=np.float64)
        return np.column_stack([1 - p, p])

    def predict_contributions(self, X: Any) -> np.ndarray:
        """SHAP values (LightGBM's tree contributions), one column per input; no bias column."""
        check_is_fitted(self)
        X = self._missing(validate_data(self, X, reset=False, dtype=np.float32,
                                        ensure_all_finite="allow-nan"))
        contrib = self.booster_.predict(X, num_iteration=self.best_iteration_, pred_contrib=True)
        return np.asarray(contrib[:, :-1], dtype=float)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags
