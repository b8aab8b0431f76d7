"""XGBoost with early stopping on a validation split carved from the training data."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from crimeclass.models._errors import ModelOptionError, TrainingDataError
from crimeclass.models._target import BinaryPredictMixin, binary_target, check_weight, fit_rows
from crimeclass.models._treeshap import TreeShap

__all__ = ["EarlyStoppingXGBClassifier"]


class EarlyStoppingXGBClassifier(BinaryPredictMixin, ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (``xgboost``, ``tree_method="hist"``) that stop early.

    ``fit`` holds out the *last* ``validation_fraction`` of the rows it is
    given, at most ``max_validation_rows`` (the latest ones, when the rows are
    in time order, as crimeclass passes them) and stops adding trees when
    ``eval_metric`` on them has not improved for ``early_stopping_rounds``
    rounds; the model keeps the trees up to the best round. Nothing outside the
    training data is used.

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
    max_validation_rows : int or None, default=20000
        Most rows held out. A share of millions of rows is more than early
        stopping needs, and it would be the latest year or more of incidents,
        the rows nearest the scored period, which the model would then never
        learn from (bench/xgb_default.py; docs/benchmarks.md). None: no cap.
    early_stopping_rounds : int, default=30
    eval_metric : str, default="logloss"
        XGBoost's metric on the held-out rows that early stopping follows.
    fill_missing : float, optional
        Value given to missing numbers before XGBoost sees them; None keeps
        them missing (XGBoost learns a default direction for them). XGBoost
        stores a matrix with missing entries sparsely, at about five times
        the memory of a dense one (measured: 720 MB against 141 MB for
        900,000 rows of crimeclass's 68 features), so crimeclass passes -1,
        below every value of the features that can be missing (counts,
        shares, hours, coordinates): a split can still set it apart.
    batch_rows : int, default=262144
        XGBoost's quantized matrix is built from batches of this many rows
        (``xgboost.DataIter``), so that only one batch is ever copied (filled,
        converted) at a time; prediction goes batch by batch too.
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
                 max_validation_rows: int | None = 20_000, early_stopping_rounds: int = 30,
                 eval_metric: str = "logloss", fill_missing: float | None = None,
                 batch_rows: int = 262_144, n_jobs: int | None = None,
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
        self.max_validation_rows = max_validation_rows
        self.early_stopping_rounds = early_stopping_rounds
        self.eval_metric = eval_metric
        self.fill_missing = fill_missing
        self.batch_rows = batch_rows
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _train_params(self) -> dict[str, Any]:
        """The parameters of ``xgboost.train`` (XGBClassifier's names mapped to the core's)."""
        params: dict[str, Any] = {
            "objective": "binary:logistic", "eval_metric": self.eval_metric, "tree_method": "hist",
            "eta": self.learning_rate, "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight, "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree, "lambda": self.reg_lambda,
            "alpha": self.reg_alpha, "gamma": self.gamma, "max_bin": self.max_bin,
            "seed": self.random_state}
        if self.n_jobs is not None and self.n_jobs > 0:
            params["nthread"] = self.n_jobs
        return params

    def _check_X(self, X: Any, y: Any = None, *, reset: bool) -> tuple[Any, Any]:
        """Numbers as they are: a DataFrame of numeric columns is kept (no dense copy), any
        other input becomes a float32 array."""
        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            bad = [str(c) for c, t in X.dtypes.items() if t.kind not in "fiub"]
            if bad:
                raise TrainingDataError(f"EarlyStoppingXGBClassifier needs numeric columns; "
                                        f"{bad[:5]} are not")
            validate_data(self, X, reset=reset, skip_check_array=True)
            if y is not None:
                y = column_or_1d(y, warn=True)
                check_consistent_length(X, y)
            return X, y
        if y is None:
            return validate_data(self, X, reset=reset, dtype=np.float32,
                                 ensure_all_finite="allow-nan"), None
        return validate_data(self, X, y, reset=reset, dtype=np.float32,
                             ensure_all_finite="allow-nan")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EarlyStoppingXGBClassifier:
        """Fit on the rows in the order given; the latest ones validate early stopping.

        ``sample_weight`` weighs the rows the trees are fitted on (the held-out rows of
        early stopping count alike)."""
        import xgboost

        if not 0 <= self.validation_fraction < 1:
            raise ModelOptionError("validation_fraction must be in [0, 1), got "
                                   f"{self.validation_fraction}", option="validation_fraction",
                                   value=self.validation_fraction)
        if self.max_validation_rows is not None and self.max_validation_rows < 1:
            raise ModelOptionError("max_validation_rows must be at least 1 or None, got "
                                   f"{self.max_validation_rows}", option="max_validation_rows",
                                   value=self.max_validation_rows)
        X, y = self._check_X(X, y, reset=True)
        self.classes_, y01 = binary_target(y)
        weight = check_weight(sample_weight, len(y01))
        params = self._train_params()
        nthread = params.get("nthread")  # set by _train_params when n_jobs is given
        n_fit = fit_rows(y01, self.validation_fraction, self.early_stopping_rounds,
                         self.max_validation_rows)
        # XGBoost's own quantized matrix, built batch by batch from views of the rows (no
        # copy of X); the validation rows' matrix shares the training matrix's bins (ref)
        if n_fit < len(y01):
            train = xgboost.QuantileDMatrix(self._batches(X, y01, 0, n_fit, weight),
                                            max_bin=self.max_bin, nthread=nthread)
            val = xgboost.QuantileDMatrix(self._batches(X, y01, n_fit, len(y01)), ref=train,
                                          max_bin=self.max_bin, nthread=nthread)
            booster = xgboost.train(params, train, num_boost_round=self.n_estimators,
                                    evals=[(val, "validation")],
                                    early_stopping_rounds=self.early_stopping_rounds,
                                    verbose_eval=False)
            self.best_iteration_ = int(booster.best_iteration)
            del val
        else:  # too few rows (or one class) to hold any out: grow every tree
            train = xgboost.QuantileDMatrix(self._batches(X, y01, 0, len(y01), weight),
                                            max_bin=self.max_bin, nthread=nthread)
            booster = xgboost.train(params, train, num_boost_round=self.n_estimators,
                                    verbose_eval=False)
            self.best_iteration_ = self.n_estimators - 1
        del train
        self.booster_ = booster
        return self

    def _batches(self, X: Any, y: np.ndarray | None, start: int, stop: int,
                 weight: np.ndarray | None = None) -> Any:
        return _row_batches(X, y, start, stop, max(1, int(self.batch_rows)), self.fill_missing,
                            weight)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        step = max(1, int(self.batch_rows))
        p = np.empty(len(X), dtype=np.float64)
        for a in range(0, len(X), step):
            batch = _filled(_rows(X, slice(a, a + step)), self.fill_missing)
            p[a:a + step] = self.booster_.inplace_predict(
                batch, iteration_range=(0, self.best_iteration_ + 1))
        return np.column_stack([1 - p, p])

    def tree_shap(self) -> TreeShap | None:
        """The model's trees with each leaf's contributions tabled, for
        :meth:`predict_contributions` of many calls (None where they would not fit)."""
        check_is_fitted(self)
        return TreeShap.from_booster(self.booster_, self.best_iteration_ + 1)

    def predict_contributions(self, X: Any, tables: TreeShap | None = None,
                              threads: int = 1) -> np.ndarray:
        """SHAP values (XGBoost's exact tree contributions), one column per input.

        The rows go through the same checks and filling of missing numbers as
        :meth:`predict_proba`; the bias column XGBoost appends is left out. With the
        model's ``tables`` (:meth:`tree_shap`), the same values (within float32
        rounding) from a table lookup per leaf instead of XGBoost's walk of every path,
        on up to ``threads`` threads.
        """
        import xgboost

        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        if tables is not None:
            return tables.contributions(_filled(X, self.fill_missing), threads)
        contrib = self.booster_.predict(
            xgboost.DMatrix(_filled(X, self.fill_missing), feature_names=_names(X)),
            pred_contribs=True, iteration_range=(0, self.best_iteration_ + 1))
        return np.asarray(contrib[:, :-1], dtype=float)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


def _rows(X: Any, rows: slice) -> Any:
    """A view of a slice of rows (DataFrame or array)."""
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _filled(X: Any, value: float | None) -> np.ndarray:
    """``X`` as one float32 array, missing numbers set to ``value`` (None: kept NaN).

    A DataFrame (a batch of rows) is copied into one array and filled in place:
    pandas' ``fillna`` over the frame's blocks cost 3 s per 2 million rows, the
    copy and fill a tenth of that, and XGBoost takes a dense array at least as
    fast as the frame's columns.
    """
    data = (X.to_numpy(dtype=np.float32, copy=True) if hasattr(X, "to_numpy")
            else np.array(X, dtype=np.float32))
    if value is not None:
        data[np.isnan(data)] = value
    return data


def _names(X: Any) -> list[str] | None:
    """The column names of a DataFrame (XGBoost keeps them with the trees), or None."""
    return [str(c) for c in X.columns] if hasattr(X, "columns") else None


def _row_batches(X: Any, y: np.ndarray | None, start: int, stop: int, step: int,
                 fill: float | None, weight: np.ndarray | None = None) -> Any:
    """An ``xgboost.DataIter`` over the rows ``[start, stop)`` of ``X`` in batches."""
    import xgboost

    names = _names(X)

    class Batches(xgboost.DataIter):
        def __init__(self) -> None:
            self._at = start
            super().__init__(release_data=True)

        def next(self, input_data: Any) -> bool:
            if self._at >= stop:
                return False
            end = min(self._at + step, stop)
            input_data(data=_filled(_rows(X, slice(self._at, end)), fill),
                       label=None if y is None else y[self._at:end], feature_names=names,
                       weight=None if weight is None else weight[self._at:end])
            self._at = end
            return True

        def reset(self) -> None:
            self._at = start

    return Batches()
