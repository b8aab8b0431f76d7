"""The models, chosen by short name: each a scikit-learn Pipeline and a search space.

Every pipeline starts with :class:`~crimeclass.features.LeakageGuard` (a frame
holding a column that defines the label cannot be fitted), then the learned
encoders of its family (:func:`~crimeclass.features.make_preprocessor`), then
the classifier. The search space of each family covers its regularization.

>>> sorted(MODELS)
['lgbm', 'location_rate', 'lr', 'majority', 'nn', 'rf', 'stack', 'svm', 'type_rate', 'xgb']
>>> MODELS["lr"].title
'Logistic regression'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline

from crimeclass.features import (
    Feature,
    LeakageGuard,
    PreprocessStyle,
    embedding_columns,
    make_preprocessor,
)
from crimeclass.models._baselines import GroupRateClassifier
from crimeclass.models._errors import ModelOptionError
from crimeclass.models._keras import KerasTabularClassifier
from crimeclass.models._lgbm import EarlyStoppingLGBMClassifier
from crimeclass.models._recency import RecencyPipeline
from crimeclass.models._stack import TimeStackClassifier
from crimeclass.models._xgb import EarlyStoppingXGBClassifier

__all__ = ["BASELINES", "MODELS", "STACK_BASES", "ModelFamily", "baselines_for",
           "make_model", "parse_model_names"]

#: A search space: draws one set of pipeline parameters from an Optuna trial.
SearchSpace = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class ModelFamily:
    """A model family: how to build its pipeline and what to search.

    Parameters
    ----------
    name : str
        Short name (``--models``).
    title : str
        Name for people.
    style : {"linear", "tree", "embedding"} or None
        Preprocessing style (None: the model reads the frame itself).
    estimator : callable
        ``estimator(features, random_state, n_jobs)`` -> the final step.
    space : callable or None
        ``space(trial)`` -> parameters of the pipeline (``model__C`` ...);
        None for baselines, which have nothing to tune, and for the stack (its
        meta-learner weighs a few log-odds on many rows: a search would refit
        every base per trial for nothing).
    baseline : bool
    saved_as : {"skops", "xgboost-ubj", "lightgbm-txt", "keras", "stack"}
        How the final step is saved (the rest of the pipeline always by skops).
    targets : tuple of str
        The targets it can be trained for (``type_rate`` reads the offense
        type, a feature only for the arrest target).
    frame_output : bool
        The encoders hand the model a DataFrame (numbers passed through as the
        frame's own columns) instead of one dense matrix: for XGBoost, which
        quantizes the columns itself, this saves a copy of every number.
    start : dict, optional
        The search's first trial, in ``space``'s own names: the family's defaults,
        so that a tuned model never scores below the untuned one on the search's folds.
    candidates : dict, optional
        Named pipeline parameters, over the start's, that the final round also tries on
        many rows (:func:`~crimeclass.models.final_round`): shapes that only pay there.
    recency : bool
        Fitted with recency weights when a run sets a half-life (its model takes
        ``sample_weight``; only the families the ablation measured, docs/models.md).
    """

    name: str
    title: str
    style: PreprocessStyle | None
    estimator: Callable[[Sequence[Feature], int, int | None], Any]
    space: SearchSpace | None
    baseline: bool = False
    saved_as: str = "skops"
    targets: tuple[str, ...] = ("index", "arrest")
    frame_output: bool = False
    start: dict[str, Any] | None = None
    candidates: dict[str, dict[str, Any]] | None = None
    recency: bool = False


# ----------------------------------------------------------------- spaces
# Module-level functions (not lambdas): search estimators are cloned and pickled.


def _lr_space(trial: Any) -> dict[str, Any]:
    penalty = trial.suggest_categorical("penalty", ["l2", "l1", "elasticnet"])
    params: dict[str, Any] = {"model__C": trial.suggest_float("C", 1e-4, 1e2, log=True)}
    # the fastest solver of each penalty (measured on 300,000 rows: lbfgs 12 s,
    # liblinear 35 s, saga 27 s at tol=1e-2 where it needs 100+ epochs at 1e-3)
    if penalty == "l2":
        params.update(model__l1_ratio=0.0, model__solver="lbfgs", model__tol=1e-3)
    elif penalty == "l1":
        params.update(model__l1_ratio=1.0, model__solver="liblinear", model__tol=1e-3)
    else:
        params.update(model__l1_ratio=trial.suggest_float("l1_ratio", 0.1, 0.9),
                      model__solver="saga", model__tol=1e-2)
    return params


def _rf_space(trial: Any) -> dict[str, Any]:
    return {
        "model__max_depth": trial.suggest_int("max_depth", 8, 24, log=True),
        "model__min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 200, log=True),
        # a tree's cost grows with the rows it draws times the features it tries per split:
        # on 1.45 million rows, 100 trees with 0.67 of the features and 0.22 of the rows
        # took 17 minutes to refit, more than the four other models together. Bounded to
        # 0.4 x 0.1 (a quarter of that product), and still 100,000 rows a tree at 1M rows
        "model__max_features": trial.suggest_float("max_features", 0.1, 0.4),
        "model__max_samples": trial.suggest_float("max_samples", 0.02, 0.1),
    }


def _svm_space(trial: Any) -> dict[str, Any]:
    kernel = trial.suggest_categorical("kernel", ["linear", "rbf"])
    params: dict[str, Any] = {
        "model__estimator__svc__alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True)}
    if kernel == "rbf":
        params["model__estimator__kernel"] = Nystroem(
            kernel="rbf", gamma=trial.suggest_float("gamma", 1e-3, 1e-1, log=True),
            n_components=300, random_state=0)
    else:
        params["model__estimator__kernel"] = "passthrough"
    return params


#: XGBoost's own defaults, in the search's names: crimeclass's defaults and the search's
#: first trial (reg_alpha 1e-3 for XGBoost's 0: the low end of the search's log scale).
#: crimeclass's earlier shape (depth 8, min_child_weight 5, subsamples of 0.8, early
#: stopping on the latest rows) scored below XGBClassifier() on 2017 (bench/xgb_default.py).
XGB_START: dict[str, Any] = {
    "max_depth": 6, "min_child_weight": 1.0, "reg_lambda": 1.0, "reg_alpha": 1e-3, "gamma": 0.0,
    "subsample": 1.0, "colsample_bytree": 1.0}


#: Most of the training period's latest rows that stop XGBoost early (on one machine and
#: on Spark): enough to stop on, without taking the rows nearest the scored period from
#: millions of training rows.
XGB_VALIDATION_ROWS = 20_000
#: More, deeper, slower trees, stopped on the latest rows: a shape for millions of rows,
#: which a search on 50,000 cannot judge; the final round tries it (bench/ablation.py:
#: +0.0032 and +0.0033 ROC AUC on 2016 and 2017 over the defaults, both weighted).
XGB_LARGE: dict[str, Any] = {
    "model__n_estimators": 2000, "model__learning_rate": 0.05, "model__max_depth": 8,
    "model__min_child_weight": 40.0, "model__subsample": 0.8, "model__colsample_bytree": 0.5,
    "model__validation_fraction": 0.1, "model__early_stopping_rounds": 30,
    "model__max_validation_rows": XGB_VALIDATION_ROWS}


def _xgb_space(trial: Any) -> dict[str, Any]:
    # The learning rate stays the family's (with early stopping), not searched: on the
    # search's 50,000 rows a smaller one scores as well, and the refit on every training
    # row then grows several times the trees (bench/xgb_default.py; docs/benchmarks.md)
    return {
        "model__max_depth": trial.suggest_int("max_depth", 3, 10),
        "model__min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "model__reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
        "model__reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "model__gamma": trial.suggest_float("gamma", 0.0, 5.0),
        "model__subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "model__colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
    }


def _lgbm_space(trial: Any) -> dict[str, Any]:
    return {
        "model__num_leaves": trial.suggest_int("num_leaves", 15, 255, log=True),
        "model__learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "model__min_child_samples": trial.suggest_int("min_child_samples", 10, 500, log=True),
        "model__reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
        "model__reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "model__subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "model__colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        # how the places' categories are split: smoothing of each category's share, and the
        # most categories one split may send left
        "model__cat_smooth": trial.suggest_float("cat_smooth", 1.0, 100.0, log=True),
        "model__cat_l2": trial.suggest_float("cat_l2", 1.0, 100.0, log=True),
        "model__max_cat_threshold": trial.suggest_int("max_cat_threshold", 16, 128, log=True),
    }


def _nn_space(trial: Any) -> dict[str, Any]:
    units = trial.suggest_categorical("units", [32, 64, 128])
    layers = trial.suggest_int("layers", 1, 3)
    return {
        "model__hidden_units": tuple(max(8, units // (2 ** i)) for i in range(layers)),
        "model__dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "model__l2": trial.suggest_float("l2", 1e-7, 1e-2, log=True),
        "model__embedding_dim": trial.suggest_categorical("embedding_dim", [4, 8, 16]),
        "model__learning_rate": trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
    }


# ------------------------------------------------------------- estimators


def _majority(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    return DummyClassifier(strategy="prior")


def _location_rate(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    return GroupRateClassifier(column="location_description", smoothing=10.0)


def _type_rate(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    return GroupRateClassifier(column="primary_type", smoothing=10.0)


def _lr(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    return LogisticRegression(C=1.0, l1_ratio=0.0, solver="lbfgs", max_iter=300, tol=1e-3,
                              random_state=random_state)


def _rf(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    return RandomForestClassifier(n_estimators=100, max_depth=20, min_samples_leaf=10,
                                  max_features=0.3, max_samples=0.2, n_jobs=n_jobs,
                                  random_state=random_state)


def _svm(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    # hinge loss + L2 penalty fitted by averaged SGD: the same linear SVM as LinearSVC
    # (alpha = 1 / (C * n_samples)), but seconds instead of minutes past 100,000 rows
    svm = Pipeline([("kernel", "passthrough"),
                    ("svc", SGDClassifier(loss="hinge", penalty="l2", alpha=1e-4,
                                          average=True, max_iter=50, tol=1e-3,
                                          random_state=random_state))])
    # Platt scaling on 3 folds: an SVM gives scores, the comparison needs probabilities
    return CalibratedClassifierCV(svm, method="sigmoid", cv=3)



def _xgb(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    # XGBoost's defaults: 100 trees at 0.3, no early stopping. Stopping on the latest
    # training rows stopped at 26-70 trees, and the model scored below XGBClassifier() on
    # 2017 (bench/xgb_default.py; docs/benchmarks.md). Missing numbers become -1: a dense
    # matrix, a fifth of the memory of a sparse one and faster to build.
    return EarlyStoppingXGBClassifier(n_estimators=100, learning_rate=0.3, **XGB_START,
                                      validation_fraction=0.0,
                                      max_validation_rows=XGB_VALIDATION_ROWS,
                                      early_stopping_rounds=15, fill_missing=-1.0, n_jobs=n_jobs,
                                      random_state=random_state)


def _lgbm(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    # the embedding style's integer codes, first columns: the places as native categories
    return EarlyStoppingLGBMClassifier(categorical_features=embedding_columns(features),
                                       n_jobs=n_jobs, random_state=random_state)


def _stack(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    bases = [(name, make_model(name, features, random_state=random_state, n_jobs=n_jobs))
             for name in STACK_BASES]
    return TimeStackClassifier(bases, random_state=random_state)


def _nn(features: Sequence[Feature], random_state: int, n_jobs: int | None) -> Any:
    # batches of 2,048 and at most 15 epochs (patience 2): each of a search's ~50 fits, and
    # the refit on a million rows, runs fewer steps; the search tunes the learning rate
    return KerasTabularClassifier(categorical_features=embedding_columns(features),
                                  batch_size=2048, epochs=15, patience=2,
                                  random_state=random_state)


BASELINES = ("majority", "location_rate")
#: The models the ``stack`` ensemble combines, each with its family's default parameters.
STACK_BASES = ("lr", "xgb", "lgbm")
#: The bases' parameters over their families' defaults: XGBoost in its shape for many rows
#: (bench/ablation.py: +0.0004 and +0.0005 ROC AUC on 2016 and 2017 over that XGBoost
#: alone, against +0.0014 and +0.0016 for the stack of defaults over XGBoost's defaults).
STACK_BASE_PARAMS: dict[str, dict[str, Any]] = {"xgb": XGB_LARGE}
#: Baselines per target: for arrest, the arrest rate of the offense's primary type too.
_TARGET_BASELINES = {"index": BASELINES, "arrest": (*BASELINES, "type_rate")}


def baselines_for(target: str = "index") -> tuple[str, ...]:
    """The baselines a run for ``target`` adds.

    >>> baselines_for("arrest")
    ('majority', 'location_rate', 'type_rate')
    """
    return _TARGET_BASELINES[target]


MODELS: dict[str, ModelFamily] = {m.name: m for m in (
    ModelFamily("majority", "Majority class (prior)", None, _majority, None, baseline=True),
    ModelFamily("location_rate", "Rate of the location description (index or arrest)", None,
                _location_rate, None, baseline=True),
    ModelFamily("type_rate", "Arrest rate of the offense's primary type", None, _type_rate,
                None, baseline=True, targets=("arrest",)),
    ModelFamily("lr", "Logistic regression", "linear", _lr, _lr_space),
    ModelFamily("rf", "Random forest", "tree", _rf, _rf_space),
    ModelFamily("svm", "SVM (hinge loss; linear or Nystroem RBF; Platt-calibrated)", "linear",
                _svm,
                _svm_space),
    ModelFamily("xgb", "XGBoost (hist)", "tree", _xgb, _xgb_space,
                saved_as="xgboost-ubj", frame_output=True, start=XGB_START,
                candidates={"large": XGB_LARGE}, recency=True),
    ModelFamily("nn", "Neural network (Keras, embeddings)", "embedding", _nn, _nn_space,
                saved_as="keras"),
    ModelFamily("lgbm", "LightGBM (places as native categories, early stopping)",
                "embedding", _lgbm, _lgbm_space, saved_as="lightgbm-txt", recency=True),
    ModelFamily("stack", "Stacked ensemble (lr, xgb, lgbm; time-ordered out-of-fold; "
                "logistic meta-learner)", None, _stack, None, saved_as="stack",
                targets=("index",)),
)}


def default_models(target: str = "index") -> tuple[str, ...]:
    """What ``crimeclass train`` trains unless told otherwise: every family that can be
    trained for ``target``, the ensemble too, so that the run's best is the best there is.

    >>> default_models()
    ('lr', 'rf', 'svm', 'xgb', 'nn', 'lgbm', 'stack')
    >>> default_models("arrest")
    ('lr', 'rf', 'svm', 'xgb', 'nn', 'lgbm')
    """
    return tuple(m.name for m in MODELS.values() if not m.baseline and target in m.targets)


def parse_model_names(names: str | Sequence[str]) -> list[str]:
    """``"lr,rf"`` -> ``["lr", "rf"]``; raise a clear error for an unknown name.

    >>> parse_model_names("lr, xgb")
    ['lr', 'xgb']
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    out = []
    for n in names:
        if not n:
            continue
        if n not in MODELS:
            raise ModelOptionError(f"unknown model {n!r}; models are: {', '.join(MODELS)}",
                                   option="--models", value=n)
        if n not in out:
            out.append(n)
    if not out:
        raise ModelOptionError(f"no model named; models are: {', '.join(MODELS)}",
                               option="--models", value=names)
    return out


def make_model(name: str, features: Sequence[Feature], *, random_state: int = 0,
               n_jobs: int | None = None, allow_arrest: bool = False,
               min_frequency: int = 50, target: str = "index",
               half_life_days: float | None = None) -> Pipeline:
    """The pipeline of model ``name`` for the catalog ``features``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    features : sequence of Feature
    random_state : int, default=0
    n_jobs : int, optional
        Threads for the families that use them (random forest, XGBoost).
    allow_arrest : bool, default=False
        Let the leakage guard pass the ``arrest`` column.
    min_frequency : int, default=50
        Categories with fewer training rows are grouped as rare.
    target : {"index", "arrest"}, default="index"
        What the label is; the leakage guard follows it.
    half_life_days : float, optional
        Weigh each training row by its recency (:class:`RecencyPipeline`) in the families
        that take it (``ModelFamily.recency``; a stack passes it to its bases).

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``guard`` -> ``prep`` (unless a baseline) -> ``model``; a
        :class:`RecencyPipeline` where it is weighted.
    """
    family = MODELS[parse_model_names([name])[0]]
    if target not in family.targets:
        raise ModelOptionError(f"model {name!r} cannot be trained for the {target!r} target "
                               f"(only {', '.join(family.targets)})", option="--models",
                               value=name)
    steps: list[tuple[str, Any]] = [("guard", LeakageGuard(allow_arrest=allow_arrest,
                                                           target=target))]
    if family.style is not None:
        prep = make_preprocessor(features, family.style, min_frequency=min_frequency,
                                 random_state=random_state)
        if family.frame_output:
            prep.set_output(transform="pandas")
        steps.append(("prep", prep))
    model = family.estimator(features, random_state, n_jobs)
    if isinstance(model, TimeStackClassifier):  # each base guards and encodes as this one
        model.set_params(bases=[(base, make_model(
            base, features, random_state=random_state, n_jobs=n_jobs,
            allow_arrest=allow_arrest, min_frequency=min_frequency, target=target,
            half_life_days=half_life_days).set_params(**STACK_BASE_PARAMS.get(base, {})))
            for base, _ in model.bases])
    steps.append(("model", model))
    if half_life_days is not None and family.recency:
        return RecencyPipeline(steps, half_life_days=half_life_days)
    return Pipeline(steps)
