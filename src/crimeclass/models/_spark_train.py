"""Training on Spark: XGBoost, logistic regression, the SVM and the forest on a Parquet input.

:func:`spark_train` is ``crimeclass train --engine spark``: the window, held-out period,
feature query and pipelines of the single-machine :func:`~crimeclass.models.train`.

* The encoders (category codes, the target encoder), the baselines and the neural network
  are fitted on the driver, on a stratified sample of the training rows collected by
  Spark (all of them up to ``encoder_rows``); the encoders then transform every training
  row on the executors (``mapInArrow``, the target encoder cross-fitted by fold of the key).
* XGBoost: :class:`xgboost.spark.SparkXGBClassifier` on every row with ``num_workers``
  workers, weighted by recency as on one machine (``weight``), its validation indicator
  column the rows the single-machine XGBoost holds out. Logistic regression, the SVM, the
  random forest: MLlib's, on the rows before them (``_spark_lr``, ``_spark_svm``,
  ``_spark_rf``).
* The threshold is the best F1 on the validation rows, scored on Spark; the held-out
  period is collected and scored on the driver with the pipeline as saved.

The models are saved as on one machine (XGBoost's UBJ booster, MLlib's models in
scikit-learn's, skops), so ``evaluate``, ``predict`` and the service load a Spark run like
any other. Parameters: the single-machine search on the driver's sample, then one fit.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from crimeclass.engines import SparkEngine, to_spark_sql
from crimeclass.features import (
    check_features,
    feature_catalog,
    feature_frame,
    spark_features,
    store_feature_sql,
)
from crimeclass.models._config import ARREST_WARNING, TrainConfig
from crimeclass.models._errors import ModelOptionError
from crimeclass.models._metrics import binary_metrics, choose_threshold
from crimeclass.models._persist import versions
from crimeclass.models._recency import half_life_of, recency_weights
from crimeclass.models._registry import MODELS, XGB_VALIDATION_ROWS, make_model
from crimeclass.models._run import RunWriter
from crimeclass.models._score import required_columns
from crimeclass.models._spark_rf import MISSING, fit_rf
from crimeclass.models._spark_search import SampleSearch, record_search, search_on_sample
from crimeclass.models._train import (
    TrainResult,
    _check_period,
    _Fitted,
    _manifest,
    _metrics_doc,
    _run_id,
    _write_outputs,
)
from crimeclass.models._window import Window, resolve_window

__all__ = ["SPARK_MODELS", "spark_train"]

#: Models ``train --engine spark`` fits (the baselines are added as on one machine).
SPARK_MODELS = ("xgb", "lr", "svm", "rf", "nn")
#: Share of the training period's latest rows that stops XGBoost early (at most
#: ``XGB_VALIDATION_ROWS`` rows), and on which the threshold is chosen.
VALIDATION_SHARE = 0.1

EventHandler = Callable[[str, dict[str, Any]], None]


@dataclass
class _SparkData:
    """What the run's documents read of its data (``_train._Data``'s names): the held-out
    rows collected, the training rows counted on Spark (``range``: their ``len`` is all the
    documents read of them)."""

    window: Window
    sql: str
    hold: pd.DataFrame
    yh: np.ndarray
    y: np.ndarray
    X: range
    train_all: range
    Xs: range
    names: list[str]
    sample: pd.DataFrame
    validation_since: Any = None
    latest: Any = None  # the latest training incident: recency weights count from it

    @property
    def hold_window(self) -> dict[str, str]:
        return {"since": self.window.holdout_since.isoformat(),
                "until": self.window.holdout_until.isoformat()}


def _collect(frame: Any, spec: Any) -> pd.DataFrame:
    """Spark rows of the feature query as the feature frame of one machine, in time order."""
    table = frame.orderBy("date", "key").toArrow()
    return feature_frame(table, spec).reset_index(drop=True)


def _validation_share(n_train: int) -> float:
    """The share of the latest training rows that validate: a tenth, at most
    ``XGB_VALIDATION_ROWS`` rows, as one machine's XGBoost holds out.

    >>> _validation_share(100_000), _validation_share(1_000_000)
    (0.1, 0.02)
    """
    return min(VALIDATION_SHARE, XGB_VALIDATION_ROWS / max(n_train, 1))


def _read(engine: SparkEngine, config: TrainConfig, encoder_rows: int,
          emit: EventHandler) -> tuple[_SparkData, Any]:
    """The window, the held-out rows (collected), the encoder sample and the training rows
    (a cached Spark DataFrame with ``_val``, the early-stopping rows)."""
    spec, label = config.features, config.features.label_column
    window = resolve_window(engine, since=config.since, until=config.until,
                            holdout=config.holdout)
    emit("stage", {"text": f"computing features on Spark {window.train_since:%Y-%m-%d} to "
                           f"{window.holdout_until:%Y-%m-%d}"})
    sql = store_feature_sql(engine, spec, since=window.train_since,
                            until=window.holdout_until)
    frame = spark_features(engine, spec, since=window.train_since,
                           until=window.holdout_until).persist()
    hs = window.holdout_since
    hold = _collect(frame.where(frame.date >= hs), spec)
    train = frame.where(frame.date < hs)
    n_window = train.count()
    if config.sample is not None and config.sample < n_window:  # --sample: about that many
        share = config.sample / n_window
        train = train.sampleBy(label, fractions={True: share, False: share}, seed=config.seed)
    counts = {bool(r[label]): int(r["n"]) for r in train.groupBy(label).count()
              .withColumnRenamed("count", "n").collect()}
    n_train = sum(counts.values())
    _check_period(hold, "held-out", hs, window.holdout_until, label)
    fraction = min(1.0, encoder_rows / max(n_train, 1))
    sample = train if fraction >= 1 else train.sampleBy(
        label, fractions={True: fraction, False: fraction}, seed=config.seed)
    sample_frame = _collect(sample, spec)
    _check_period(sample_frame, "training" if fraction >= 1 else "sampled training",
                  window.train_since, hs, label)
    since_us = train.selectExpr(
        "CAST(date_diff(MICROSECOND, TIMESTAMP_NTZ '1970-01-01 00:00:00', date) AS DOUBLE) AS us"
    ).approxQuantile("us", [1 - _validation_share(n_train)], 1e-4)[0]
    val_since = pd.Timestamp(int(since_us), unit="us").to_pydatetime()
    latest = train.agg({"date": "max"}).first()[0]
    train = train.withColumn("_val", train.date >= val_since)
    y = np.repeat([0, 1], [counts.get(False, 0), counts.get(True, 0)]).astype(np.int8)
    names = [f.name for f in feature_catalog(spec)]
    data = _SparkData(window=window, sql=sql, hold=hold, yh=hold[label].to_numpy().astype(int),
                      y=y, X=range(n_train), train_all=range(n_window),
                      Xs=range(len(sample_frame)), names=names, sample=sample_frame,
                      validation_since=val_since, latest=latest)
    return data, train


# ------------------------------------------------------------------ XGBoost on Spark
#: Folds of the encoders' cross-fitting on Spark (the single-machine target encoder's 5).
ENCODER_FOLDS = 5


def encode_batches(batches: Any, preps: Any, spec: Any, label: str,
                   recency: tuple[Any, float] | None = None) -> Any:
    """``mapInArrow``'s function: feature rows -> the encoders' numbers (float32, -1 for
    missing, as one machine's XGBoost fills them), label, ``_val``, ``weight`` (from
    ``recency``: the latest training incident and the half-life, else 1).

    A row of fold ``key mod ENCODER_FOLDS`` is encoded by the target encoder fitted on the
    sample's rows of the other folds (:func:`_cross_fitted`): its own label never reaches
    its target encoding, as scikit-learn's cross-fitting keeps it out on one machine.
    One array column, not a column per number: xgboost.spark's list of feature columns
    fails on a partition whose rows are all validation rows (the latest, here).
    """
    names = ["date", *[f.name for f in feature_catalog(spec)]]
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        frame = feature_frame(table.drop_columns(["_val"]), spec)
        fold = np.mod(frame["key"].to_numpy(), ENCODER_FOLDS)
        values = np.empty((len(frame), 0), dtype=np.float32)
        for k, prep in enumerate(preps.value):
            rows = np.flatnonzero(fold == k)
            if len(rows):
                out = prep.transform(frame[names].iloc[rows])
                out = np.asarray(out.toarray() if hasattr(out, "toarray") else out,
                                 dtype=np.float32)
                if values.shape[1] == 0:
                    values = np.empty((len(frame), out.shape[1]), dtype=np.float32)
                values[rows] = out
        values[np.isnan(values)] = MISSING
        offsets = np.arange(0, values.size + 1, values.shape[1], dtype=np.int32)
        weight = (np.ones(len(frame)) if recency is None
                  else recency_weights(frame["date"], recency[1], latest=recency[0]))
        arrays = [pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel())),
                  pa.array(frame[label].to_numpy().astype(np.float64)),
                  table.column("_val").combine_chunks(), pa.array(weight)]
        yield from pa.Table.from_arrays(arrays, names=["features", "label", "_val", "weight"]
                                        ).to_batches()


def _cross_fitted(prep: Any, sample: pd.DataFrame, cols: list[str], label: str) -> list[Any]:
    """The encoders of each fold: the target encoder fitted on the sample's rows of the other
    folds, every other encoder (category codes: one code per category in every fold) the one
    fitted on the whole sample, as ``fit_transform`` cross-fits only the target encoder on
    one machine."""
    from sklearn.base import clone

    whole = prep.named_steps["prep"]
    fold = np.mod(sample["key"].to_numpy(), ENCODER_FOLDS)
    y = sample[label].to_numpy().astype(int)
    preps = []
    for k in range(ENCODER_FOLDS):
        one = clone(prep).fit(sample[cols][fold != k], y[fold != k])
        ct = one.named_steps["prep"]
        ct.transformers_ = [(name, fitted if name == "target" else
                             whole.named_transformers_[name], columns)
                            for name, fitted, columns in ct.transformers_]
        preps.append(one)
    return preps


def _xgb_params(pipeline: Any) -> dict[str, Any]:
    """The single-machine XGBoost's settings, as SparkXGBClassifier names them."""
    est = pipeline.steps[-1][1]
    return {"n_estimators": est.n_estimators, "learning_rate": est.learning_rate,
            "max_depth": est.max_depth, "min_child_weight": est.min_child_weight,
            "subsample": est.subsample, "colsample_bytree": est.colsample_bytree,
            "reg_lambda": est.reg_lambda, "reg_alpha": est.reg_alpha, "gamma": est.gamma,
            "max_bin": est.max_bin, "tree_method": "hist", "eval_metric": est.eval_metric,
            # no early stopping where one machine has none (the rows still choose the
            # threshold)
            "early_stopping_rounds": (est.early_stopping_rounds if est.validation_fraction
                                      else None),
            "random_state": est.random_state}


@contextmanager
def _encoded(name: str, data: _SparkData, train: Any, config: TrainConfig,
             params: dict[str, Any] | None = None) -> Iterator[tuple[Any, list[str], Any]]:
    """The pipeline of ``name`` with its encoders fitted on the driver's sample, the
    encoders' column names, and every training row encoded on Spark (cached while used)."""
    spec, label = config.features, config.features.label_column
    pipeline = make_model(name, feature_catalog(spec), random_state=config.seed, n_jobs=1,
                          allow_arrest=config.allow_arrest,
                          min_frequency=config.min_frequency, target=config.target,
                          half_life_days=config.half_life_days)
    pipeline.set_params(**(params or {}))  # the search's best
    half_life = getattr(pipeline, "half_life_days", None)  # a RecencyPipeline's
    cols = ["date", *data.names]
    prep = pipeline[:-1].fit(data.sample[cols], data.sample[label].to_numpy().astype(int))
    columns = [str(c) for c in prep[-1].get_feature_names_out()]
    shared = train.sparkSession.sparkContext.broadcast(
        _cross_fitted(prep, data.sample, cols, label))
    try:
        with warnings.catch_warnings():  # Arrow and pandas UDFs warn of pandas 3 at once
            warnings.filterwarnings("ignore", category=FutureWarning,
                                    message="PySpark does not yet fully support pandas")
            rows = train.mapInArrow(
                partial(encode_batches, preps=shared, spec=spec, label=label,
                        recency=None if half_life is None else (data.latest, half_life)),
                "features ARRAY<FLOAT>, label DOUBLE, _val BOOLEAN, weight DOUBLE")
            rows = rows.persist()
            yield pipeline, columns, rows
        rows.unpersist()
    finally:
        shared.destroy()


def _fit_xgb(data: _SparkData, train: Any, config: TrainConfig, num_workers: int,
             emit: EventHandler, search: SampleSearch | None = None) -> _Fitted:
    """Encoders on the driver's sample, trees on Spark, the held-out scored on the driver."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql.functions import col
    from xgboost.spark import SparkXGBClassifier

    t0 = time.perf_counter()  # the encoders' fit, the trees, the validation rows
    best = search.params if search else None
    with _encoded("xgb", data, train, config, best) as (pipeline, columns, rows):
        emit("stage", {"text": f"xgb: growing trees on Spark ({num_workers} workers, "
                               f"{len(data.X):,} rows)"})
        params = _xgb_params(pipeline)
        logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)
        if getattr(pipeline, "half_life_days", None) is not None:  # recency weights
            params = {**params, "weight_col": "weight"}
        model = SparkXGBClassifier(features_col="features", label_col="label",
                                   validation_indicator_col="_val",
                                   num_workers=num_workers, **params).fit(rows)
        val = model.transform(rows.where("_val")).select(
            "label", vector_to_array(col("probability"))[1].alias("p")).toArrow()
    est = pipeline.steps[-1][1]
    # the column names and count it reads, as fit sets them on one machine
    est._check_X(pd.DataFrame(np.zeros((1, len(columns)), np.float32), columns=columns),
                 reset=True)
    est.classes_ = np.array([0, 1])
    est.booster_ = model.get_booster()
    est.booster_.feature_names = columns
    best = est.booster_.attributes().get("best_iteration")  # set where it stopped early
    est.best_iteration_ = (int(best) if best is not None
                           else est.booster_.num_boosted_rounds() - 1)
    fitted = _scored("xgb", pipeline, data, config, val, params, time.perf_counter() - t0)
    fitted.entry["num_workers"] = num_workers
    return fitted


def _scored(name: str, pipeline: Any, data: _SparkData, config: TrainConfig, val: Any,
            params: dict[str, Any], seconds: float) -> _Fitted:
    """A model fitted on Spark: its threshold from the validation rows scored there, the
    held-out rows scored on the driver with the pipeline as saved."""
    label, cols = config.features.label_column, ["date", *data.names]
    yv = val.column("label").to_numpy().astype(int)
    pv = val.column("p").to_numpy().astype(float)
    threshold = choose_threshold(yv, pv)
    p = pipeline.predict_proba(data.hold[cols])[:, 1]
    entry = _entry(name, data, config, binary_metrics(data.yh, p, threshold), threshold,
                   yv, pv, params)
    entry["seconds"] = {"search": 0.0, "refit": round(seconds, 2)}
    validation = pd.DataFrame({"model": name, label: yv.astype(np.int8), "p": pv})
    return _Fitted(entry=entry, model=pipeline, p=p, validation=validation,
                   trials={"engine": "spark", "params": [params]})


def _fit_on_driver(name: str, data: _SparkData, config: TrainConfig,
                   search: SampleSearch | None = None) -> _Fitted:
    """A model fitted on the driver's stratified sample (every training row up to
    ``encoder_rows``): a baseline on all of it, as on one machine on the training rows; the
    neural network on its rows before the validation rows. The threshold is chosen on the
    sample's validation rows."""
    label, cols = config.features.label_column, ["date", *data.names]
    sample = data.sample
    late = (sample["date"] >= data.validation_since).to_numpy()
    fit_rows = sample if MODELS[name].baseline or late.all() else sample[~late]
    pipeline = make_model(name, feature_catalog(config.features), random_state=config.seed,
                          allow_arrest=config.allow_arrest, min_frequency=config.min_frequency,
                          target=config.target, half_life_days=config.half_life_days)
    pipeline.set_params(**(search.params if search else {}))
    t0 = time.perf_counter()
    pipeline.fit(fit_rows[cols], fit_rows[label].to_numpy().astype(int))
    val_rows = sample[late] if late.any() else sample
    yv = val_rows[label].to_numpy().astype(int)
    pv = pipeline.predict_proba(val_rows[cols])[:, 1]
    threshold = choose_threshold(yv, pv)
    p = pipeline.predict_proba(data.hold[cols])[:, 1]
    entry = _entry(name, data, config, binary_metrics(data.yh, p, threshold), threshold,
                   yv, pv, {})
    entry["seconds"] = {"search": 0.0, "refit": round(time.perf_counter() - t0, 2)}
    entry["trained_on"] = f"the driver, {len(fit_rows):,} sampled training rows"
    validation = pd.DataFrame({"model": name, label: yv.astype(np.int8), "p": pv})
    return _Fitted(entry=entry, model=pipeline, p=p, validation=validation,
                   trials={"engine": "spark", "params": []})


def _entry(name: str, data: _SparkData, config: TrainConfig, metrics: dict[str, Any],
           threshold: float, yv: np.ndarray, pv: np.ndarray,
           params: dict[str, Any]) -> dict[str, Any]:
    """A model's entry of ``metrics.json``: one validation split (the latest tenth of the
    training period, at most ``XGB_VALIDATION_ROWS`` rows) stands for the cross-validation
    folds."""
    from crimeclass.models._metrics import roc_auc

    family = MODELS[name]
    score = roc_auc(yv, pv) if len(np.unique(yv)) == 2 else float("nan")
    return {
        "name": name, "title": family.title, "baseline": family.baseline,
        "target": config.target, "features": data.names, "allow_arrest": config.allow_arrest,
        "holdout": data.hold_window, "metrics": metrics, "threshold": threshold,
        "threshold_rule": "maximizes F1 on the validation rows (the latest tenth of the "
                          f"training period, at most {XGB_VALIDATION_ROWS:,} rows)",
        "cv": {"kind": "validation", "folds": 1, "scoring": "roc_auc", "mean": score,
               "std": 0.0, "fold_scores": [score], "rows": int(len(yv))},
        "params": {k: v for k, v in params.items() if not isinstance(v, str)},
        "pipeline_params": {}, "trials": {"run": 1, "complete": 1, "pruned": 0},
        "warnings": [], "path": f"models/{name}", "engine": "spark",
        **({"arrest_warning": ARREST_WARNING} if config.allow_arrest else {}),
    }


# ------------------------------------------------------------------ the run


def _spark_fit(name: str) -> Callable[..., _Fitted] | None:
    """How ``name`` trains on Spark (None: on the driver, a baseline or the network)."""
    from crimeclass.models._spark_lr import fit_lr  # they build on this module
    from crimeclass.models._spark_svm import fit_svm

    return {"xgb": _fit_xgb, "lr": fit_lr, "svm": fit_svm, "rf": fit_rf}.get(name)


def _fingerprint(incidents: str, data: _SparkData, label: str,
                 engine: SparkEngine) -> dict[str, Any]:
    n_hold = len(data.hold)
    return {
        "store": incidents, "engine": "spark", "input": incidents, "detail": engine.detail,
        **data.window.to_dict(),
        "rows": {"read": len(data.X) + n_hold, "train": len(data.X), "holdout": n_hold},
        "target": "index" if label == "is_index" else "arrest", "label": label,
        "positive_share": {"train": float(data.y.mean()), "holdout": float(data.yh.mean())},
        "validation_since": data.validation_since.isoformat(),
        "encoder_rows": len(data.sample),
        "hash_note": "no row hashes: on Spark the training rows never come to the driver",
    }


def spark_train(incidents: str | Path, config: TrainConfig | None = None, *,
                runs_dir: str | Path = "runs", master: str = "local[*]", session: Any = None,
                num_workers: int | None = None, encoder_rows: int = 200_000,
                on_event: EventHandler | None = None) -> TrainResult:
    """Train on Spark from a Parquet input; write a run folder like :func:`train`'s.

    Parameters
    ----------
    incidents : str or Path
        Parquet in the canonical schema (a path or URI Spark reads).
    config : TrainConfig, optional
        Its models must be among :data:`SPARK_MODELS`.
    runs_dir : str or Path, default="runs"
    master : str, default="local[*]"
    session : pyspark.sql.SparkSession, optional
    num_workers : int, optional
        XGBoost's workers (Spark tasks); by default Spark's default parallelism.
    encoder_rows : int, default=200000
        Most training rows collected (a stratified sample) to fit the encoders and
        baselines on the driver.
    on_event : callable, optional
        ``on_event(kind, info)``: ``stage``, ``model``, ``model_done``.

    Raises
    ------
    ModelOptionError
        A model that does not train on Spark yet; a window without a held-out period.
    TrainingDataError
        A period with one class only.
    EngineError
        An input that cannot be read or has a column missing or mistyped.
    """
    config = config or TrainConfig(models=SPARK_MODELS)
    other = [m for m in config.models or () if m not in SPARK_MODELS]
    if other:
        raise ModelOptionError(f"--engine spark trains {', '.join(SPARK_MODELS)} (not yet "
                               f"{', '.join(other)}); train those on one machine",
                               option="--models", value=",".join(other))
    emit: EventHandler = on_event or (lambda kind, info: None)
    feats = feature_catalog(config.features)
    check_features(feats, allow_arrest=config.allow_arrest, target=config.target)
    t_start = time.perf_counter()
    needed = sorted({*required_columns(config.features), "iucr"})
    with SparkEngine.from_input(incidents, required=needed, master=master,
                                session=session) as engine:
        data, train = _read(engine, config, encoder_rows, emit)
        workers = num_workers or int(engine.spark.sparkContext.defaultParallelism)
        fitted = []
        for name in config.model_names():
            search = search_on_sample(name, data, config, emit)
            fit = _spark_fit(name)
            one = (fit(data, train, config, workers, emit, search) if fit is not None
                   else _fit_on_driver(name, data, config, search))
            record_search(one, search, config)
            one.entry["half_life_days"] = half_life_of(one.model)
            fitted.append(one)
            emit("model_done", {"name": name, "metrics": one.entry["metrics"],
                                "cv_mean": one.entry["cv"]["mean"],
                                "seconds": sum(one.entry["seconds"].values())})
        fingerprint = _fingerprint(str(incidents), data, config.features.label_column, engine)
        master = str(engine.spark.sparkContext.master)
    return _write_run(runs_dir, config, data, fitted, fingerprint,
                      {"engine": "spark", "master": master, "num_workers": workers,
                       "encoder_rows": encoder_rows}, time.perf_counter() - t_start, emit)


def _write_run(runs_dir: str | Path, config: TrainConfig, data: _SparkData,
               fitted: list[_Fitted], fingerprint: dict[str, Any], spark: dict[str, Any],
               seconds: float, emit: EventHandler) -> TrainResult:
    feats = feature_catalog(config.features)
    with RunWriter(runs_dir, _run_id()) as run:
        run.write_config({**config.to_dict(), "model_names": [f.entry["name"] for f in fitted],
                          "n_jobs": os.cpu_count() or 1, "versions": versions(), **spark})
        run.write_data(fingerprint)
        run.write_features([{"name": f.name, "kind": f.kind, "group": f.group,
                             "uses": list(f.uses), "history": f.history, "doc": f.doc}
                            for f in feats], data.sql, to_spark_sql(data.sql, pretty=True))
        for one in fitted:
            name = one.entry["name"]
            run.save_model(name, one.model, saved_as=MODELS[name].saved_as,
                           manifest={**_manifest(one, config), "engine": "spark"},
                           trials=one.trials)
        doc = run.write_metrics(_metrics_doc([f.entry for f in fitted], data,  # type: ignore[arg-type]
                                             config, seconds))
        _write_outputs(run, data, config, fitted, doc, emit)  # type: ignore[arg-type]
        final = run.commit()
    return TrainResult(run_dir=final, metrics=doc)

