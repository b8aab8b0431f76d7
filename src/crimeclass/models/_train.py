"""A training run: features, search, held-out evaluation, saved models, one folder.

:func:`train` reads the features of a store's window, holds out the most
recent complete year (or ``holdout``), tunes each model with
:class:`OptunaSearchCV` on the training period only, refits the best
parameters on the whole training period, evaluates on the held-out period and
writes everything into ``runs/<run-id>/``. The folder is built under a
temporary name and renamed when complete, so a run folder is never half
written. Its layout is the contract later stages read: it is written and read
by :mod:`crimeclass.models._run` only (see ``docs/models.md``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crimeclass.engines import DuckDBEngine, to_spark_sql
from crimeclass.features import (
    check_features,
    feature_catalog,
    read_features,
    store_feature_sql,
)
from crimeclass.models._config import (
    ARREST_WARNING,
    TARGET_CLASSES,
    TARGET_WORDS,
    TrainConfig,
)
from crimeclass.models._cv import make_cv
from crimeclass.models._errors import TrainingDataError
from crimeclass.models._final_round import FinalRound, final_round, sample_index
from crimeclass.models._metrics import HELD_OUT_METRICS, METRICS, binary_metrics, choose_threshold
from crimeclass.models._persist import versions
from crimeclass.models._recency import half_life_of
from crimeclass.models._registry import MODELS, make_model
from crimeclass.models._report import write_report
from crimeclass.models._run import RunWriter
from crimeclass.models._search import OptunaSearchCV, _plain, _recorded
from crimeclass.models._window import Window, resolve_window

__all__ = ["TrainResult", "train"]

#: ``on_event(kind, info)``: progress for a user interface.
EventHandler = Callable[[str, dict[str, Any]], None]


@dataclass
class TrainResult:
    """Where a run was written, and its metrics."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def best_model(self) -> str | None:
        return self.metrics["best_model"]


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _fingerprint(store: Any, frame: pd.DataFrame, train: pd.DataFrame, hold: pd.DataFrame,
                 window: Window, sql: str, feature_names: list[str],
                 label: str = "is_index") -> dict[str, Any]:
    order = np.argsort(frame["key"].to_numpy(), kind="stable")
    keys = frame["key"].to_numpy()[order].astype(np.int64)
    dates = frame["date"].to_numpy()[order].astype("datetime64[us]").astype(np.int64)
    labels = frame[label].to_numpy()[order].astype(np.int8)
    feats = pd.util.hash_pandas_object(frame[feature_names], index=False).to_numpy()[order]
    ingests = store.con.execute(
        "SELECT ingest_id, source, started_at, read, inserted, updated FROM ingests "
        "ORDER BY ingest_id").fetchall()
    return {
        "store": str(store.path),
        "store_rows": store.count(),
        "ingests": [{"ingest_id": i, "source": s, "started_at": str(t), "read": r,
                     "inserted": n, "updated": u} for i, s, t, r, n, u in ingests],
        **window.to_dict(),
        "rows": {"read": int(len(frame)), "train": int(len(train)),
                 "holdout": int(len(hold))},
        "target": "index" if label == "is_index" else "arrest",
        "label": label,
        "positive_share": {"train": float(train[label].mean()),
                           "holdout": float(hold[label].mean())},
        "sha256": {
            "rows": _sha256(keys, dates, labels),
            "features": _sha256(feats),
            "feature_sql": hashlib.sha256(sql.encode()).hexdigest(),
        },
        "hash_note": "rows: sha256 of (key, date as int64 microseconds, label) sorted by key; "
                     "features: sha256 of pandas' row hashes of the feature columns, same order",
    }


def _subsample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    if n is None or len(frame) <= n:
        return frame
    return frame.iloc[sample_index(len(frame), n, seed)]


def _run_id() -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass
class _Data:
    """The run's data: the window, its feature query, and the rows each step uses."""

    window: Window
    sql: str
    fingerprint: dict[str, Any]
    train_all: pd.DataFrame
    hold: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    Xs: pd.DataFrame
    ys: np.ndarray
    Xh: pd.DataFrame
    yh: np.ndarray

    @property
    def hold_window(self) -> dict[str, str]:
        return {"since": self.window.holdout_since.isoformat(),
                "until": self.window.holdout_until.isoformat()}


def _read_data(store_path: str | Path, config: TrainConfig, feature_names: list[str],
               emit: EventHandler) -> _Data:
    """Read the window's features from the store; split and sample them."""
    from crimeclass.data import Store

    label = config.features.label_column
    with Store(store_path, read_only=True) as store:
        store.require_rows()
        window = resolve_window(DuckDBEngine.from_store(store), since=config.since,
                                until=config.until,
                                holdout=config.holdout)
        emit("stage", {"text": f"computing features {window.train_since:%Y-%m-%d} to "
                               f"{window.holdout_until:%Y-%m-%d}"})
        frame = read_features(DuckDBEngine.from_store(store), config.features,
                              since=window.train_since,
                              until=window.holdout_until, memory_limit=config.memory_limit)
        sql = store_feature_sql(DuckDBEngine.from_store(store), config.features,
                                since=window.train_since,
                                until=window.holdout_until)
        is_hold = (frame["date"] >= window.holdout_since).to_numpy()
        train_all, hold = frame[~is_hold], frame[is_hold]
        _check_period(train_all, "training", window.train_since, window.holdout_since, label)
        _check_period(hold, "held-out", window.holdout_since, window.holdout_until, label)
        fingerprint = _fingerprint(store, frame, train_all, hold, window, sql, feature_names,
                                   label)
    train_df = _subsample(train_all, config.sample, config.seed)
    search_df = _subsample(train_df, config.search_sample, config.seed + 1)
    _check_period(train_df, "sampled training", window.train_since, window.holdout_since, label)
    cols = ["date", *feature_names]
    return _Data(window=window, sql=sql, fingerprint=fingerprint, train_all=train_all,
                 hold=hold, X=train_df[cols], y=train_df[label].to_numpy().astype(int),
                 Xs=search_df[cols], ys=search_df[label].to_numpy().astype(int),
                 Xh=hold[cols], yh=hold[label].to_numpy().astype(int))


@dataclass
class _Fitted:
    """One model, tuned, refitted and scored on the held-out period."""

    entry: dict[str, Any]
    model: Any
    p: np.ndarray
    validation: pd.DataFrame
    trials: dict[str, Any]


def make_search(name: str, pipeline: Any, config: TrainConfig, *,
                space: Callable[[Any], dict[str, Any]] | None = None,
                on_trial: Callable[..., None] | None = None) -> OptunaSearchCV:
    """The search ``train`` runs for ``name``: ``config``'s trials, folds, scoring and
    seed, the family's defaults first when ``space`` is the family's own (None: it is).
    A space of None (a baseline) makes one trial of the pipeline as it is."""
    family = MODELS[name]
    space = family.space if space is None else space
    return OptunaSearchCV(pipeline, space,
                          n_trials=config.trials if space is not None else 1,
                          cv=make_cv(config.cv, config.folds, config.seed),
                          scoring=config.scoring, timeout=config.timeout, refit=False,
                          random_state=config.seed, on_trial=on_trial,
                          start=family.start if space is family.space else None)


def tune(name: str, pipeline: Any, config: TrainConfig, data: Any, *,
         space: Callable[[Any], dict[str, Any]] | None = None,
         on_trial: Callable[..., None] | None = None,
         emit: EventHandler | None = None) -> tuple[OptunaSearchCV, FinalRound | None]:
    """``train``'s choice of parameters for ``name``: the search (:func:`make_search`) on
    ``data.Xs``, then the final round on ``data.X`` (the training rows): the search's best
    against the family's defaults and its candidates for many rows."""
    search = make_search(name, pipeline, config, space=space, on_trial=on_trial)
    search.fit(data.Xs, data.ys)
    start, candidates = search.start_, MODELS[name].candidates or {}
    if (emit is not None and config.final_sample and start is not None
            and (candidates or start["trial_params"] != search.best_trial_params_)):
        emit("stage", {"text": f"{name}: the search's best, the defaults and "
                               f"{', '.join(candidates) or 'no other shape'} on up to "
                               f"{config.final_sample:,} rows"})
    final = final_round(search, data.X, data.y, rows=config.final_sample,
                        seed=config.seed + 2, candidates=candidates,
                        search_rows=(data.Xs, data.ys))
    return search, final


def _fit_one(name: str, data: _Data, config: TrainConfig, feats: list[Any], n_jobs: int,
             emit: EventHandler) -> _Fitted:
    """Tune ``name`` on the search rows, refit on the training rows, score the held-out."""
    family = MODELS[name]
    n_trials = config.trials if family.space is not None else 1
    emit("model", {"name": name, "title": family.title, "trials": n_trials})
    pipeline = make_model(name, feats, random_state=config.seed, n_jobs=n_jobs,
                          allow_arrest=config.allow_arrest,
                          min_frequency=config.min_frequency, target=config.target,
                          half_life_days=config.half_life_days)
    t0 = time.perf_counter()
    search, final = tune(name, pipeline, config, data, on_trial=functools.partial(
        _trial_event, emit, name), emit=emit)
    t_search = time.perf_counter() - t0
    emit("stage", {"text": f"{name}: refitting on {len(data.X):,} rows"})
    refit_warnings: list[str] = []
    t0 = time.perf_counter()
    with _recorded(refit_warnings):
        model = clone(pipeline).set_params(**search.best_params_).fit(data.X, data.y)
    t_refit = time.perf_counter() - t0
    threshold = choose_threshold(search.oof_y_, search.oof_proba_)
    with _recorded(refit_warnings):
        p = model.predict_proba(data.Xh)[:, 1]
    entry = _model_entry(name, search, config, data, binary_metrics(data.yh, p, threshold),
                         threshold)
    entry["seconds"] = {"search": round(t_search, 2), "refit": round(t_refit, 2)}
    entry["final_round"] = final.as_dict() if final is not None else None
    entry["half_life_days"] = half_life_of(model)
    entry["warnings"] = sorted(set(search.best_warnings_ + refit_warnings))
    entry["path"] = f"models/{name}"
    if config.allow_arrest:
        entry["arrest_warning"] = ARREST_WARNING
    validation = pd.DataFrame({"model": name,
                               config.features.label_column: search.oof_y_.astype(np.int8),
                               "p": search.oof_proba_.astype(float)})
    return _Fitted(entry=entry, model=model, p=p, validation=validation,
                   trials=search.cv_results_)


def _model_entry(name: str, search: OptunaSearchCV, config: TrainConfig, data: _Data,
                 metrics: dict[str, Any], threshold: float) -> dict[str, Any]:
    """A model's entry of ``metrics.json`` (timings, warnings and path are added after)."""
    family = MODELS[name]
    states = search.cv_results_["state"]
    fold_scores = search.best_fold_scores_
    return {
        "name": name,
        "title": family.title,
        "baseline": family.baseline,
        "target": config.target,
        "features": list(data.X.columns[1:]),
        "allow_arrest": config.allow_arrest,
        "holdout": data.hold_window,
        "metrics": metrics,
        "threshold": threshold,
        "threshold_rule": "maximizes F1 on the best trial's validation folds",
        "cv": {"kind": config.cv, "folds": config.folds, "scoring": config.scoring,
               "mean": float(np.mean(fold_scores)), "std": float(np.std(fold_scores)),
               "fold_scores": [float(s) for s in fold_scores],
               "rows": int(len(data.Xs))},
        "params": search.best_trial_params_,
        "pipeline_params": {k: _plain(v) for k, v in search.best_params_.items()},
        "trials": {"run": len(states), "complete": states.count("complete"),
                   "pruned": states.count("pruned")},
    }


def _manifest(fitted: _Fitted, config: TrainConfig) -> dict[str, Any]:
    """What a saved model's ``manifest.json`` says beyond its files."""
    e, target = fitted.entry, config.target
    return {
        "name": e["name"], "title": e["title"],
        "target": target, "label": config.features.label_column,
        "features": e["features"], "feature_spec": config.features.to_dict(),
        "allow_arrest": config.allow_arrest,
        **({"arrest_warning": ARREST_WARNING} if config.allow_arrest else {}),
        "holdout": e["holdout"], "threshold": e["threshold"],
        "classes": TARGET_CLASSES[target],
        "input": "a feature frame (features.sql) with the columns 'date' and "
                 f"the features; predict_proba[:, 1] is P({TARGET_WORDS[target]})",
        "params": e["params"],
        "holdout_metrics": {k: e["metrics"][k] for k in HELD_OUT_METRICS},
    }


def _metrics_doc(results: list[dict[str, Any]], data: _Data, config: TrainConfig,
                 seconds: float) -> dict[str, Any]:
    """``metrics.json`` but for its format version and run id."""
    best = _best(results, config.primary_metric)
    for r in results:
        r["best"] = r["name"] == best
    target, yh, y = config.target, data.yh, data.y
    return {
        "primary_metric": config.primary_metric,
        "best_model": best,
        "target": target,
        "label": config.features.label_column,
        "allow_arrest": config.allow_arrest,
        **({"arrest_warning": ARREST_WARNING} if config.allow_arrest else {}),
        "holdout": {**data.hold_window, "label": data.window.holdout_label,
                    "rows": int(len(data.hold)), "positive_share": float(yh.mean()),
                    **({"index_share": float(yh.mean())} if target == "index" else {})},
        "train": {"since": data.window.train_since.isoformat(),
                  "until": data.window.holdout_since.isoformat(), "rows": int(len(data.X)),
                  "rows_in_window": int(len(data.train_all)), "search_rows": int(len(data.Xs)),
                  "positive_share": float(y.mean()),
                  **({"index_share": float(y.mean())} if target == "index" else {})},
        "cv": {"kind": config.cv, "folds": config.folds, "scoring": config.scoring,
               "trials": config.trials},
        "seconds": round(seconds, 1),
        "models": results,
    }


def train(store_path: str | Path, config: TrainConfig | None = None, *,
          runs_dir: str | Path = "runs", on_event: EventHandler | None = None) -> TrainResult:
    """Train, tune, evaluate and save the models of ``config`` on a store.

    Parameters
    ----------
    store_path : str or Path
        The DuckDB store (opened read-only).
    config : TrainConfig, optional
    runs_dir : str or Path, default="runs"
        Where the run folder ``<run-id>/`` is written.
    on_event : callable, optional
        ``on_event(kind, info)`` for progress: ``stage``, ``model``, ``trial``,
        ``model_done`` (``name``, held-out ``metrics``, ``cv_mean``, ``seconds`` to
        search and refit).

    Returns
    -------
    TrainResult

    Raises
    ------
    ModelOptionError
        An unknown model, a window without a training or held-out period.
    TrainingDataError
        A training or held-out period with one class only, too few rows for
        the folds.
    """
    config = config or TrainConfig()
    names = config.model_names()
    emit: EventHandler = on_event or _no_event
    feats = feature_catalog(config.features)
    check_features(feats, allow_arrest=config.allow_arrest, target=config.target)
    n_jobs = config.n_jobs or os.cpu_count() or 1
    t_start = time.perf_counter()
    data = _read_data(store_path, config, [f.name for f in feats], emit)

    with RunWriter(runs_dir, _run_id()) as run:
        run.write_config({**config.to_dict(), "model_names": names, "n_jobs": n_jobs,
                          "versions": versions()})
        run.write_data(data.fingerprint)
        run.write_features([{"name": f.name, "kind": f.kind, "group": f.group,
                             "uses": list(f.uses), "history": f.history, "doc": f.doc}
                            for f in feats], data.sql, to_spark_sql(data.sql, pretty=True))
        fitted: list[_Fitted] = []
        for name in names:
            one = _fit_one(name, data, config, feats, n_jobs, emit)
            run.save_model(name, one.model, saved_as=MODELS[name].saved_as,
                           manifest=_manifest(one, config), trials=one.trials)
            fitted.append(one)
            emit("model_done", {"name": name, "metrics": one.entry["metrics"],
                                "cv_mean": one.entry["cv"]["mean"],
                                "seconds": sum(one.entry["seconds"].values())})
        metrics_doc = run.write_metrics(_metrics_doc([f.entry for f in fitted], data, config,
                                                     time.perf_counter() - t_start))
        _write_outputs(run, data, config, fitted, metrics_doc, emit)
        final = run.commit()
    return TrainResult(run_dir=final, metrics=metrics_doc)


def _write_outputs(run: RunWriter, data: _Data, config: TrainConfig, fitted: list[_Fitted],
                   metrics_doc: dict[str, Any], emit: EventHandler) -> None:
    """The held-out predictions, the validation data and the report."""
    preds = {f.entry["name"]: f.p for f in fitted}
    run.write_predictions(pd.DataFrame({
        "key": data.hold["key"].to_numpy(), "date": data.hold["date"].to_numpy(),
        config.features.label_column: data.yh, **{f"p_{k}": v for k, v in preds.items()}}))
    run.write_validation(pd.concat([f.validation for f in fitted], ignore_index=True))
    emit("stage", {"text": "writing the report"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # matplotlib layout notes
        write_report(run.path, metrics_doc, data.yh, preds)


def _no_event(kind: str, info: dict[str, Any]) -> None:
    pass


def _trial_event(emit: EventHandler, name: str, done: int, total: int, state: str,
                 value: float | None) -> None:
    emit("trial", {"name": name, "done": done, "total": total, "state": state,
                   "value": value})


def _check_period(df: pd.DataFrame, what: str, since: dt.datetime, until: dt.datetime,
                  label: str = "is_index") -> None:
    span = f"{since:%Y-%m-%d} to {until:%Y-%m-%d}"
    if len(df) == 0:
        raise TrainingDataError(f"the {what} period ({span}) holds no labeled incidents",
                                period=what, rows=0)
    classes = df[label].astype(bool).unique()
    if len(classes) < 2:
        if label == "is_index":
            kind = "index offenses" if classes[0] else "non-index incidents"
        else:
            kind = "incidents with an arrest" if classes[0] else "incidents without an arrest"
        raise TrainingDataError(f"the {what} period ({span}) holds only {kind} "
                                f"({len(df):,} rows); a classifier needs both classes",
                                period=what, rows=len(df))


def _best(results: list[dict[str, Any]], metric: str) -> str | None:
    higher = METRICS[metric].higher_is_better
    scored = [(r["metrics"][metric], r["name"]) for r in results
              if r["metrics"].get(metric) is not None]
    if not scored:
        return None
    value, name = (max if higher else min)(scored, key=lambda t: t[0])
    return name

