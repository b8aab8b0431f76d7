"""The hyperparameter search of a Spark run: Optuna on the driver's sample, then one fit
of the best parameters on every training row on Spark.

The single-machine run already searches a sample (``search_sample``, 50,000 rows by
default, in time order) and refits the best parameters on every training row: the
parameters that win on a sample carry over to the rows. A Spark run does the same with
the stratified sample it collects for the encoders: the very search of one machine
(:class:`~crimeclass.models._search.OptunaSearchCV`: the family's space, time-ordered
folds, pruning, the same seed), its trials fitted on the driver, then the best parameters
fitted once on Spark. Why not each trial as a Spark job: 20 trials of 3 folds would be 60
distributed fits, each paying Spark's start-up per stage, to choose among parameters that
a sample ranks as well; and MLlib's own ``CrossValidator`` shuffles its folds (no time
order) and searches a grid.

What carries over to MLlib (its parameters are per row, scikit-learn's per sum):

* logistic regression: scikit-learn minimizes ``C * sum(loss) + penalty``, MLlib
  ``mean(loss) + regParam * penalty``, the same optimum when ``regParam = 1 / (C * n)``
  for the ``n`` rows fitted; ``l1_ratio`` is ``elasticNetParam``;
* the linear SVM: SGD's ``alpha`` multiplies the same ``0.5 * |w|^2`` as MLlib's
  ``regParam`` beside the mean hinge loss, so ``regParam = alpha``; MLlib has no kernel
  approximation, so the Spark SVM's search is the linear half of the single-machine space;
* XGBoost, the network: the same parameters by the same names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np

from crimeclass.features import feature_catalog
from crimeclass.models._config import TrainConfig
from crimeclass.models._registry import MODELS, make_model
from crimeclass.models._train import _subsample, _trial_event, tune

__all__ = ["SampleSearch", "mllib_lr_params", "record_search", "search_on_sample"]

EventHandler = Callable[[str, dict[str, Any]], None]


def _linear_svm_space(trial: Any) -> dict[str, Any]:
    """The single-machine SVM's space without its kernel: MLlib's LinearSVC is linear."""
    return {"model__estimator__svc__alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True),
            "model__estimator__kernel": "passthrough"}


#: Where a Spark model searches another space than its single-machine family.
SPARK_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {"svm": _linear_svm_space}


@dataclass
class SampleSearch:
    """The search of one model on the driver's sample.

    Attributes
    ----------
    params : dict
        The best trial's ``set_params`` arguments (``model__C``, ...).
    trial_params : dict
        The values Optuna drew for it (``C``, ``penalty``, ...).
    rows : int
        Rows the search saw.
    seconds : float
        The search's time on the driver.
    score, fold_scores : float, list of float
        The best trial's mean score over the folds, and each fold's.
    counts : dict
        Trials run, complete and pruned.
    final_round : dict or None
        The search's best against the family's defaults on the driver's whole sample
        (:class:`~crimeclass.models.FinalRound`); None when there was nothing to compare.
    cv_results : dict of lists
        Every trial, as :class:`OptunaSearchCV` records them (the run's ``trials.json``).
    """

    params: dict[str, Any]
    trial_params: dict[str, Any]
    rows: int
    seconds: float
    score: float
    fold_scores: list[float]
    counts: dict[str, int]
    cv_results: dict[str, list[Any]] = field(repr=False)
    final_round: dict[str, Any] | None = None

    def param(self, name: str, default: Any = None) -> Any:
        """A best parameter by its ``set_params`` name (``model__C``)."""
        return self.params.get(name, default)


def search_on_sample(name: str, data: Any, config: TrainConfig,
                     emit: EventHandler) -> SampleSearch | None:
    """Search ``name``'s parameters on the driver's sample (None: a baseline, nothing to
    tune)."""
    family = MODELS[name]
    space = SPARK_SPACES.get(name, family.space)
    emit("model", {"name": name, "title": family.title,
                   "trials": config.trials if space is not None else 1})
    if space is None:
        return None
    # at most search_sample rows, seeded, in time order: as one machine draws its own
    rows = _subsample(data.sample, config.search_sample, config.seed + 1)
    label, cols = config.features.label_column, ["date", *data.names]
    pipeline = make_model(name, feature_catalog(config.features), random_state=config.seed,
                          n_jobs=config.n_jobs or os.cpu_count() or 1,
                          allow_arrest=config.allow_arrest,
                          min_frequency=config.min_frequency, target=config.target,
                          half_life_days=config.half_life_days)
    # the family's defaults first, as on one machine, where the space is the family's own;
    # the final round on the driver's whole sample
    t0 = time.perf_counter()
    search, final = tune(name, pipeline, config, SimpleNamespace(
        Xs=rows[cols], ys=rows[label].to_numpy().astype(int), X=data.sample[cols],
        y=data.sample[label].to_numpy().astype(int)), space=space,
        on_trial=partial(_trial_event, emit, name), emit=emit)
    states = search.cv_results_["state"]
    emit("stage", {"text": f"{name}: fitting the best of {len(states)} trials on Spark"})
    return SampleSearch(
        params=dict(search.best_params_), trial_params=dict(search.best_trial_params_),
        rows=len(rows), seconds=time.perf_counter() - t0, score=float(search.best_score_),
        fold_scores=[float(s) for s in search.best_fold_scores_],
        counts={"run": len(states), "complete": states.count("complete"),
                "pruned": states.count("pruned")},
        cv_results=search.cv_results_,
        final_round=final.as_dict() if final is not None else None)


def mllib_lr_params(search: SampleSearch | None, rows: int) -> dict[str, float]:
    """MLlib's parameters of the logistic regression the search chose, for ``rows`` rows
    fitted (without a search: a light elastic net)."""
    if search is None:
        return {"regParam": 1e-4, "elasticNetParam": 0.5, "maxIter": 100, "tol": 1e-6}
    c = float(search.param("model__C", 1.0))
    return {"regParam": 1.0 / (c * max(rows, 1)),
            "elasticNetParam": float(search.param("model__l1_ratio", 0.0)),
            "maxIter": 100, "tol": 1e-6}


def record_search(fitted: Any, search: SampleSearch | None, config: TrainConfig) -> None:
    """Write the search into a fitted model's entry and trials: what ran, what won, where."""
    if search is None:
        return
    entry = fitted.entry
    entry["params"] = {**search.trial_params, **entry["params"]}
    entry["trials"] = search.counts
    entry["seconds"]["search"] = round(search.seconds, 2)
    entry["search"] = {
        "where": f"the driver, {search.rows:,} rows of the sample Spark collected",
        "cv": {"kind": config.cv, "folds": config.folds, "scoring": config.scoring,
               "mean": search.score, "std": float(np.std(search.fold_scores)),
               "fold_scores": search.fold_scores},
        "best": search.trial_params}
    entry["final_round"] = search.final_round
    fitted.trials = {"engine": "spark", "searched_on": "driver sample",
                     "spark_params": entry["params"], **search.cv_results}
