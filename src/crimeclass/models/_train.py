"""A training run: features, search, held-out evaluation, saved models, one folder.

:func:`train` reads the features of a store's window, holds out the most
recent complete year (or ``holdout``), tunes each model with
:class:`OptunaSearchCV` on the training period only, refits the best
parameters on the whole training period, evaluates on the held-out period and
writes everything into ``runs/<run-id>/``. The folder is built under a
temporary name and renamed when complete, so a run folder is never half
written. Its layout is the contract later stages read (see ``docs/models.md``):

``config.json``        the :class:`TrainConfig` and the versions
``data.json``          the data fingerprint: store, window, rows, sha256
``features.json``      the features, with their kind, group and meaning
``features.sql``       the feature query (DuckDB), and ``features.spark.sql``
``metrics.json``       per model: name, features, held-out window, metrics, CV, params
``comparison.md``      the comparison table; ``report.html`` and ``plots/`` with plots
``predictions.parquet`` held-out incidents with each model's probability
``validation.parquet`` out-of-fold probabilities of each model's best trial (validation
                       folds inside the training period): for thresholds and calibration
``models/<name>/``     the saved model and its ``manifest.json``
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crimeclass.engines import DuckDBEngine
from crimeclass.features import (
    TARGETS,
    FeatureSpec,
    Target,
    check_features,
    feature_catalog,
    read_features,
    store_feature_sql,
    to_spark_sql,
)
from crimeclass.models._cv import CVKind, make_cv
from crimeclass.models._metrics import METRICS, binary_metrics, choose_threshold
from crimeclass.models._persist import save_model, versions
from crimeclass.models._registry import MODELS, baselines_for, make_model, parse_model_names
from crimeclass.models._report import write_report
from crimeclass.models._search import OptunaSearchCV, Scoring, _plain, _recorded
from crimeclass.models._window import Window, resolve_window

__all__ = ["RUN_FORMAT_VERSION", "TARGET_CLASSES", "TrainConfig", "TrainResult", "train"]

RUN_FORMAT_VERSION = 1
ARREST_WARNING = ("these models use Arrest, which is recorded after the report: they do not "
                  "predict at report time")
#: What each target's classes mean, for people.
TARGET_CLASSES: dict[str, dict[str, str]] = {
    "index": {"0": "not an index offense", "1": "index offense"},
    "arrest": {"0": "no arrest", "1": "arrest"},
}
#: What each target's positive class is called, in titles.
TARGET_WORDS: dict[str, str] = {"index": "index offense", "arrest": "arrest"}

#: ``on_event(kind, info)``: progress for a user interface.
EventHandler = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does.

    Parameters
    ----------
    models : tuple of str
        Short names (see :data:`~crimeclass.models.MODELS`).
    baselines : bool, default=True
        Add the majority-class and location-rate baselines to the comparison.
    cv : {"time", "stratified"}, default="time"
        Time-ordered folds (train on earlier periods, validate on the next) or
        shuffled stratified k-fold, inside the training period.
    folds : int, default=3
    trials : int, default=20
        Optuna trials per model (the baselines have nothing to tune).
    since, until : str, optional
        The data window (ISO dates); the store's span by default.
    holdout : str, default="auto"
        The held-out period: ``auto`` (most recent complete year), ``2017``,
        ``2017-06`` or ``START:END``.
    sample : int, optional
        Train on this many training rows, drawn at random (seeded); the
        held-out period is always evaluated whole.
    search_sample : int or None, default=50000
        Rows the search sees (a seeded random subset of the training rows, in
        time order); the best parameters are then refitted on all training
        rows. None: the search sees them all.
    seed : int, default=0
        Seeds the samples, the folds, the search and the models: the same
        seed gives the same numbers.
    scoring : {"roc_auc", "average_precision", "neg_log_loss"}, default="roc_auc"
        What the search maximizes.
    primary_metric : str, default="roc_auc"
        Held-out metric that picks the best model.
    allow_arrest : bool, default=False
        Use Arrest as a feature (recorded after the report; every output says
        so). Index target only.
    target : {"index", "arrest"}, default="index"
        What to predict: an index offense (from the IUCR code, which is then
        never a feature), or an arrest (the kind of offense is then a feature,
        arrest never). Every output states it.
    timeout : float, optional
        Seconds after which a model's search starts no new trial.
    n_jobs : int, optional
        Threads for random forest and XGBoost (all cores by default).
    min_frequency : int, default=50
        Categories with fewer training rows are grouped as rare.
    memory_limit : str, default="3GB"
        DuckDB's memory limit while it computes the features (beyond it DuckDB
        spills to disk); the feature frame and the models come on top of it.
    features : FeatureSpec
    """

    models: tuple[str, ...] = ("lr", "rf", "svm", "xgb", "nn")
    baselines: bool = True
    cv: CVKind = "time"
    folds: int = 3
    trials: int = 20
    since: str | None = None
    until: str | None = None
    holdout: str = "auto"
    sample: int | None = None
    search_sample: int | None = 50_000
    seed: int = 0
    scoring: Scoring = "roc_auc"
    primary_metric: str = "roc_auc"
    allow_arrest: bool = False
    target: Target = "index"
    timeout: float | None = None
    n_jobs: int | None = None
    min_frequency: int = 50
    memory_limit: str = "3GB"
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; targets are {list(TARGETS)}")
        if self.target == "arrest" and self.allow_arrest:
            raise ValueError("arrest is the target: it cannot also be a feature "
                             "(allow_arrest / --allow-arrest)")
        for name in parse_model_names(list(self.models)):
            if self.target not in MODELS[name].targets:
                raise ValueError(f"model {name!r} cannot be trained for the {self.target!r} "
                                 f"target (only {', '.join(MODELS[name].targets)})")
        if self.primary_metric not in METRICS:
            raise ValueError(f"unknown primary metric {self.primary_metric!r}; use one of "
                             f"{list(METRICS)}")
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.trials < 1:
            raise ValueError(f"trials must be at least 1, got {self.trials}")
        for name in ("sample", "search_sample"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be positive, got {v}")
        if (self.allow_arrest, self.target) != (self.features.allow_arrest,
                                                self.features.target):
            object.__setattr__(self, "features",
                               FeatureSpec(**{**self.features.__dict__,
                                              "allow_arrest": self.allow_arrest,
                                              "target": self.target}))

    def model_names(self) -> list[str]:
        names = parse_model_names(list(self.models))
        if self.baselines:
            names = [b for b in baselines_for(self.target) if b not in names] + names
        return names

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = list(self.models)
        d["features"] = self.features.to_dict()
        return d


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
        "format_version": RUN_FORMAT_VERSION,
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
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(frame), size=n, replace=False))
    return frame.iloc[idx]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _run_id() -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


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
        ``model_done``.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        An unknown model, a window without a training or held-out period, a
        training or held-out period with one class only, too few rows for the
        folds.
    """
    from crimeclass.data import Store

    config = config or TrainConfig()
    names = config.model_names()
    emit: EventHandler = on_event or _no_event
    feats = feature_catalog(config.features)
    target, label = config.target, config.features.label_column
    check_features(feats, allow_arrest=config.allow_arrest, target=target)
    feature_names = [f.name for f in feats]
    n_jobs = config.n_jobs or os.cpu_count() or 1
    t_start = time.perf_counter()

    with Store(store_path, read_only=True) as store:
        store.require_rows()
        window = resolve_window(store.con, since=config.since, until=config.until,
                                holdout=config.holdout)
        emit("stage", {"text": f"computing features {window.train_since:%Y-%m-%d} to "
                               f"{window.holdout_until:%Y-%m-%d}"})
        frame = read_features(DuckDBEngine.from_store(store), config.features,
                              since=window.train_since, until=window.holdout_until,
                              memory_limit=config.memory_limit)
        sql = store_feature_sql(DuckDBEngine.from_store(store), config.features,
                                since=window.train_since, until=window.holdout_until)
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
    X, y = train_df[cols], train_df[label].to_numpy().astype(int)
    Xs, ys = search_df[cols], search_df[label].to_numpy().astype(int)
    Xh, yh = hold[cols], hold[label].to_numpy().astype(int)

    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_id = _run_id()
    tmp = runs_dir / f".{run_id}.tmp"
    tmp.mkdir()
    try:
        (tmp / "models").mkdir()
        _write_json(tmp / "config.json", {"format_version": RUN_FORMAT_VERSION,
                                          "run_id": run_id, **config.to_dict(),
                                          "model_names": names, "n_jobs": n_jobs,
                                          "versions": versions()})
        _write_json(tmp / "data.json", fingerprint)
        _write_json(tmp / "features.json", [
            {"name": f.name, "kind": f.kind, "group": f.group, "uses": list(f.uses),
             "history": f.history, "doc": f.doc} for f in feats])
        (tmp / "features.sql").write_text(sql + "\n")
        (tmp / "features.spark.sql").write_text(to_spark_sql(sql, pretty=True) + "\n")

        hold_window = {"since": window.holdout_since.isoformat(),
                       "until": window.holdout_until.isoformat()}
        cv = make_cv(config.cv, config.folds, config.seed)
        results, preds = [], {}
        validation: list[pd.DataFrame] = []
        for name in names:
            family = MODELS[name]
            n_trials = config.trials if family.space is not None else 1
            emit("model", {"name": name, "title": family.title, "trials": n_trials})
            pipeline = make_model(name, feats, random_state=config.seed, n_jobs=n_jobs,
                                  allow_arrest=config.allow_arrest,
                                  min_frequency=config.min_frequency, target=target)
            search = OptunaSearchCV(
                pipeline, family.space, n_trials=n_trials, cv=cv, scoring=config.scoring,
                timeout=config.timeout, refit=False, random_state=config.seed,
                on_trial=functools.partial(_trial_event, emit, name))
            t0 = time.perf_counter()
            search.fit(Xs, ys)
            t_search = time.perf_counter() - t0
            emit("stage", {"text": f"{name}: refitting on {len(X):,} rows"})
            refit_warnings: list[str] = []
            t0 = time.perf_counter()
            with _recorded(refit_warnings):
                model = clone(pipeline).set_params(**search.best_params_).fit(X, y)
            t_refit = time.perf_counter() - t0
            threshold = choose_threshold(search.oof_y_, search.oof_proba_)
            with _recorded(refit_warnings):
                p = model.predict_proba(Xh)[:, 1]
            metrics = binary_metrics(yh, p, threshold)
            preds[name] = p
            validation.append(pd.DataFrame({"model": name,
                                            label: search.oof_y_.astype(np.int8),
                                            "p": search.oof_proba_.astype(float)}))
            states = search.cv_results_["state"]
            fold_scores = search.best_fold_scores_
            entry = {
                "name": name,
                "title": family.title,
                "baseline": family.baseline,
                "target": target,
                "features": feature_names,
                "allow_arrest": config.allow_arrest,
                "holdout": hold_window,
                "metrics": metrics,
                "threshold": threshold,
                "threshold_rule": "maximizes F1 on the best trial's validation folds",
                "cv": {"kind": config.cv, "folds": config.folds, "scoring": config.scoring,
                       "mean": float(np.mean(fold_scores)), "std": float(np.std(fold_scores)),
                       "fold_scores": [float(s) for s in fold_scores],
                       "rows": int(len(Xs))},
                "params": search.best_trial_params_,
                "pipeline_params": {k: _plain(v) for k, v in search.best_params_.items()},
                "trials": {"run": len(states), "complete": states.count("complete"),
                           "pruned": states.count("pruned")},
                "seconds": {"search": round(t_search, 2), "refit": round(t_refit, 2)},
                "warnings": sorted(set(search.best_warnings_ + refit_warnings)),
                "path": f"models/{name}",
            }
            if config.allow_arrest:
                entry["arrest_warning"] = ARREST_WARNING
            save_model(model, tmp / "models" / name, saved_as=family.saved_as, manifest={
                "run_id": run_id, "name": name, "title": family.title,
                "target": target, "label": label,
                "features": feature_names, "feature_spec": config.features.to_dict(),
                "allow_arrest": config.allow_arrest,
                **({"arrest_warning": ARREST_WARNING} if config.allow_arrest else {}),
                "holdout": hold_window, "threshold": threshold,
                "classes": TARGET_CLASSES[target],
                "input": "a feature frame (features.sql) with the columns 'date' and "
                         f"the features; predict_proba[:, 1] is P({TARGET_WORDS[target]})",
                "params": search.best_trial_params_,
                "holdout_metrics": {k: metrics[k] for k in METRICS},
            })
            _write_json(tmp / "models" / name / "trials.json", search.cv_results_)
            results.append(entry)
            emit("model_done", {"name": name, "metrics": metrics,
                                "cv_mean": entry["cv"]["mean"]})

        best = _best(results, config.primary_metric)
        for r in results:
            r["best"] = r["name"] == best
        metrics_doc = {
            "format_version": RUN_FORMAT_VERSION,
            "run_id": run_id,
            "primary_metric": config.primary_metric,
            "best_model": best,
            "target": target,
            "label": label,
            "allow_arrest": config.allow_arrest,
            **({"arrest_warning": ARREST_WARNING} if config.allow_arrest else {}),
            "holdout": {**hold_window, "label": window.holdout_label, "rows": int(len(hold)),
                        "positive_share": float(yh.mean()),
                        **({"index_share": float(yh.mean())} if target == "index" else {})},
            "train": {"since": window.train_since.isoformat(),
                      "until": window.holdout_since.isoformat(), "rows": int(len(X)),
                      "rows_in_window": int(len(train_all)), "search_rows": int(len(Xs)),
                      "positive_share": float(y.mean()),
                      **({"index_share": float(y.mean())} if target == "index" else {})},
            "cv": {"kind": config.cv, "folds": config.folds, "scoring": config.scoring,
                   "trials": config.trials},
            "seconds": round(time.perf_counter() - t_start, 1),
            "models": results,
        }
        _write_json(tmp / "metrics.json", metrics_doc)
        pd.DataFrame({"key": hold["key"].to_numpy(), "date": hold["date"].to_numpy(),
                      label: yh, **{f"p_{k}": v for k, v in preds.items()}}
                     ).to_parquet(tmp / "predictions.parquet", index=False)
        pd.concat(validation, ignore_index=True).to_parquet(tmp / "validation.parquet",
                                                            index=False)
        emit("stage", {"text": "writing the report"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # matplotlib layout notes
            write_report(tmp, metrics_doc, yh, preds)
        final = runs_dir / run_id
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TrainResult(run_dir=final, metrics=metrics_doc)


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
        raise ValueError(f"the {what} period ({span}) holds no labeled incidents")
    classes = df[label].astype(bool).unique()
    if len(classes) < 2:
        if label == "is_index":
            kind = "index offenses" if classes[0] else "non-index incidents"
        else:
            kind = "incidents with an arrest" if classes[0] else "incidents without an arrest"
        raise ValueError(f"the {what} period ({span}) holds only {kind} ({len(df):,} rows); "
                         "a classifier needs both classes")


def _best(results: list[dict[str, Any]], metric: str) -> str | None:
    higher = METRICS[metric]
    scored = [(r["metrics"][metric], r["name"]) for r in results
              if r["metrics"].get(metric) is not None]
    if not scored:
        return None
    value, name = (max if higher else min)(scored, key=lambda t: t[0])
    return name

