"""Hyperparameter search with Optuna: seeded TPE, folds as pruning steps.

Each trial draws parameters from the family's search space, fits one clone of
the pipeline per fold and reports the running mean of the fold scores after
each fold; Optuna's ``MedianPruner`` stops a trial whose running mean is below
the median of earlier trials at the same fold, so bad settings cost one fold,
not all. With a fixed ``random_state`` the sampler, the folds and the models
are seeded and the search gives the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted

from crimeclass.models._cv import check_folds
from crimeclass.models._errors import ModelOptionError, ModelsError, TrainingDataError
from crimeclass.models._target import BinaryPredictMixin

__all__ = ["SCORERS", "OptunaSearchCV", "Scoring"]

Scoring = Literal["roc_auc", "average_precision", "neg_log_loss"]

#: Scores computed from predicted probabilities; higher is better.
SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": lambda y, p: float(roc_auc_score(y, p)),
    "average_precision": lambda y, p: float(average_precision_score(y, p)),
    "neg_log_loss": lambda y, p: -float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15),
                                                 labels=[0, 1])),
}


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the caller reports progress instead."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _recorded(into: list[str]) -> Iterator[None]:
    """Record the warnings of a fit (convergence, ...) instead of raising or printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in into:
            into.append(text)


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


class OptunaSearchCV(BinaryPredictMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Search an estimator's parameters with Optuna and cross-validation.

    Parameters
    ----------
    estimator : estimator
        A binary classifier (usually a Pipeline) with ``predict_proba``.
    param_space : callable or None
        ``param_space(trial)`` -> dict of ``estimator.set_params`` arguments.
        None: no search, one trial with the estimator as it is (its CV scores
        are still measured).
    n_trials : int, default=20
    cv : int or splitter, default=3
        Folds; crimeclass passes :class:`~crimeclass.models.TimeOrderedSplit`.
    scoring : {"roc_auc", "average_precision", "neg_log_loss"}, default="roc_auc"
    timeout : float, optional
        Stop starting new trials after this many seconds.
    pruning : bool, default=True
        Prune trials with Optuna's MedianPruner (5 start-up trials).
    refit : bool, default=True
        Refit the best parameters on all of ``X``.
    random_state : int, default=0
        Seeds the TPE sampler.
    on_trial : callable, optional
        Called after every trial as ``on_trial(done, n_trials, state, value)``.
    start : dict, optional
        Values for ``param_space``'s draws (``{"max_depth": 8, ...}``) tried first: the
        estimator's own defaults, so that the search's best is never below them on
        its folds.

    Attributes
    ----------
    study_ : optuna.Study
    best_params_ : dict
        The ``set_params`` arguments of the best trial.
    best_trial_params_ : dict
        The values Optuna drew for it (``penalty``, ``C``, ...).
    best_score_ : float
        Its mean score over the folds.
    best_fold_scores_ : list of float
    best_estimator_ : estimator
        Refitted on all of ``X`` (if ``refit``).
    oof_y_, oof_proba_ : ndarray
        Validation labels and predicted probabilities of the best trial, all
        folds together (for choosing a decision threshold on validation data).
    cv_results_ : dict of lists
        Per trial: number, state, value, fold scores, params, seconds and the
        warnings its fits raised (recorded, not raised: a convergence warning
        is part of the result).
    start_ : dict or None
        The first trial (``start``'s) when it completed: ``params``,
        ``trial_params``, ``value``, ``scores``, ``warnings``, ``oof_y``, ``oof_p``,
        as the best trial's attributes above; None without ``start``.
    best_warnings_, refit_warnings_ : list of str
        Warnings of the best trial's fits and of the refit.
    classes_ : ndarray
    refit_time_ : float
    """

    def __init__(self, estimator: Any, param_space: Callable[[Any], dict[str, Any]] | None, *,
                 n_trials: int = 20, cv: Any = 3, scoring: Scoring = "roc_auc",
                 timeout: float | None = None, pruning: bool = True, refit: bool = True,
                 random_state: int = 0,
                 on_trial: Callable[[int, int, str, float | None], None] | None = None,
                 start: dict[str, Any] | None = None) -> None:
        self.estimator = estimator
        self.param_space = param_space
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.timeout = timeout
        self.pruning = pruning
        self.refit = refit
        self.random_state = random_state
        self.on_trial = on_trial
        self.start = start

    def _folds(self, X: Any, y: Any) -> tuple[np.ndarray, list[Any]]:
        """Check the parameters and the target; the 0/1 target and the checked folds."""
        if self.scoring not in SCORERS:
            raise ModelOptionError(f"unknown scoring {self.scoring!r}; use one of "
                                   f"{list(SCORERS)}", option="scoring", value=self.scoring)
        if self.n_trials < 1:
            raise ModelOptionError(f"n_trials must be at least 1, got {self.n_trials}",
                                   option="--trials", value=self.n_trials)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise TrainingDataError(f"the training rows hold {len(self.classes_)} class(es); "
                                    "a classifier needs both (index and not index)",
                                    period="training", rows=len(y))
        y01 = (y == self.classes_[1]).astype(int)
        cv = check_cv(self.cv, y01, classifier=True)
        splits = list(cv.split(X, y01))
        times = X["date"].to_numpy() if hasattr(X, "columns") and "date" in X.columns else None
        check_folds(splits, y01, times)
        return y01, splits

    def _optimize(self, objective: Callable[[Any], float], after: Callable[[Any, Any], None],
                  n_trials: int) -> Any:
        """Run the Optuna study (TPE, seeded; median pruning if asked)."""
        import optuna

        pruner = (optuna.pruners.MedianPruner(n_startup_trials=5) if self.pruning
                  else optuna.pruners.NopPruner())
        with _quiet_optuna(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                direction="maximize", pruner=pruner,
                sampler=optuna.samplers.TPESampler(seed=self.random_state,
                                                   n_startup_trials=min(10, n_trials)))
            if self.start and self.param_space is not None:
                study.enqueue_trial(dict(self.start))
            study.optimize(objective, n_trials=n_trials, timeout=self.timeout,
                           callbacks=[after])
        return study

    def fit(self, X: Any, y: Any) -> OptunaSearchCV:
        import optuna

        y01, splits = self._folds(X, y)
        n_trials = self.n_trials if self.param_space is not None else 1
        best: dict[str, Any] = {"value": -np.inf}
        first: dict[str, Any] = {}
        results: dict[str, list[Any]] = {k: [] for k in (
            "number", "state", "value", "fold_scores", "params", "trial_params", "seconds",
            "warnings")}

        def objective(trial: Any) -> float:
            t0 = time.perf_counter()
            params = self.param_space(trial) if self.param_space is not None else {}
            scores: list[float] = []
            caught: list[str] = []

            def report(step: int) -> None:
                trial.report(float(np.mean(scores)), step)
                if self.pruning and step < len(splits) - 1 and trial.should_prune():
                    raise optuna.TrialPruned()

            try:
                result = self._run_folds(params, X, y01, splits, scores, caught, report)
            finally:
                results["number"].append(trial.number)
                results["fold_scores"].append(scores)
                results["params"].append({k: _plain(v) for k, v in params.items()})
                results["trial_params"].append(dict(trial.params))
                results["seconds"].append(time.perf_counter() - t0)
                results["warnings"].append(caught)
            value = result["value"]
            result["trial_params"] = dict(trial.params)
            if trial.number == 0 and self.start and self.param_space is not None:
                first.update(result)
            if value > best["value"]:
                best.update(result)
            return value

        def after(study: Any, trial: Any) -> None:
            results["state"].append(trial.state.name.lower())
            results["value"].append(trial.value)
            if self.on_trial is not None:
                self.on_trial(len(study.trials), n_trials, trial.state.name.lower(),
                              trial.value)

        study = self._optimize(objective, after, n_trials)
        if "params" not in best:
            raise ModelsError("no trial of the search completed (a --timeout shorter than "
                              "one trial?)")
        self.study_ = study
        self.cv_results_ = results
        self.best_params_ = best["params"]
        self.best_trial_params_ = best["trial_params"]
        self.best_score_ = best["value"]
        self.best_fold_scores_ = best["scores"]
        self.oof_y_, self.oof_proba_ = best["oof_y"], best["oof_p"]
        self.best_warnings_ = best["warnings"]
        self.start_ = first or None
        self.refit_warnings_: list[str] = []
        if self.refit:
            t0 = time.perf_counter()
            with _recorded(self.refit_warnings_):
                self.best_estimator_ = clone(self.estimator).set_params(
                    **self.best_params_).fit(X, y01)
            self.refit_time_ = time.perf_counter() - t0
        return self

    def _run_folds(self, params: dict[str, Any], X: Any, y01: np.ndarray, splits: list[Any],
                   scores: list[float], caught: list[str],
                   report: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Fit ``params`` on each fold, score its validation rows (into ``scores``, the
        warnings into ``caught``, ``report`` called after each): a trial's result."""
        score = SCORERS[self.scoring]
        est = clone(self.estimator).set_params(**params)
        oof_y, oof_p = [], []
        for step, (tr, va) in enumerate(splits):
            with _recorded(caught):
                fitted = clone(est).fit(_take(X, tr), y01[tr])
                p = fitted.predict_proba(_take(X, va))[:, 1]
            scores.append(score(y01[va], p))
            oof_y.append(y01[va])
            oof_p.append(p)
            if report is not None:
                report(step)
        return {"value": float(np.mean(scores)), "params": params, "trial_params": {},
                "scores": scores, "warnings": caught, "oof_y": np.concatenate(oof_y),
                "oof_p": np.concatenate(oof_p)}

    def cross_validate(self, params: dict[str, Any], X: Any, y: Any) -> dict[str, Any]:
        """``params`` scored on the search's folds of ``X`` (the rows it was fitted on), as
        a trial is: a result for :meth:`keep`."""
        y01, splits = self._folds(X, y)
        return self._run_folds(params, X, y01, splits, [], [])

    def keep(self, result: dict[str, Any]) -> None:
        """Make ``result`` (:attr:`start_`, or :meth:`cross_validate`'s) the search's best:
        its params, scores and validation predictions. What
        :func:`~crimeclass.models.final_round` does when it scores best on more rows than
        the search saw."""
        check_is_fitted(self, "cv_results_")
        self.best_params_, self.best_trial_params_ = result["params"], result["trial_params"]
        self.best_score_, self.best_fold_scores_ = result["value"], result["scores"]
        self.oof_y_, self.oof_proba_ = result["oof_y"], result["oof_p"]
        self.best_warnings_ = result["warnings"]

    def keep_start(self) -> None:
        """Make the start trial the search's best (:meth:`keep`)."""
        check_is_fitted(self, "cv_results_")
        if self.start_ is None:
            raise ModelsError("the search has no completed start trial to keep")
        self.keep(self.start_)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a parameter value (estimators by their repr)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)
