"""Batch prediction on Spark: score a Parquet input with a saved model, in parallel.

:func:`spark_predict` is ``crimeclass predict --engine spark``. It reads the
input (a Parquet file or folder, local or on a cluster file system) with
:func:`~crimeclass.engines.read_incidents` (the canonical schema, checked),
computes the features with the run's own feature query compiled to Spark (the
history windows as window frames), and scores them with ``mapInArrow``: each
Python worker loads the model once, from its files broadcast by the driver and
checked against their sha256 as on one machine, and scores Arrow batches with
the same scoring core (:func:`~crimeclass.models._score.score_features`). The
output is a Parquet folder with the columns of the single-machine predict
(:data:`~crimeclass.models._score.OUTPUT_COLUMNS`).

The history is that of the single-machine predict: the input's own earlier
rows, plus the earlier incidents of ``history`` (Parquet, as ``--store`` on one
machine) where given; an incident in both counts once, as the input's. Each row
says how many days of earlier data its features could read (``history_days``,
up to a gap in the data) and whether that covers the lookback. The input is not
validated row by row as ingest does (it is the canonical schema of an export,
already validated): rows without a key are left out, and duplicate keys are
refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from crimeclass.engines import SparkEngine, read_incidents
from crimeclass.features import FeatureSpec, feature_catalog, feature_sql
from crimeclass.models._errors import PredictError
from crimeclass.models._run import MODELS_DIR, LoadedModel, open_run
from crimeclass.models._score import (
    _COVER,
    OUTPUT_SCHEMA,
    ROW_COLUMNS,
    Features,
    required_columns,
    score_features,
)

__all__ = ["ModelPayload", "SparkPredictResult", "load_payload", "model_payload",
           "cover_sql", "score_batches", "scoring_sql", "spark_predict", "spark_schema"]

_SPARK_DDL = {"int64": "BIGINT", "timestamp[us]": "TIMESTAMP_NTZ", "double": "DOUBLE",
              "bool": "BOOLEAN", "string": "STRING", "float": "FLOAT"}


def spark_schema(schema: pa.Schema) -> str:
    """An Arrow schema as Spark's DDL (``id BIGINT, key BIGINT, ...``)."""
    return ", ".join(f"{f.name} {_SPARK_DDL[str(f.type)]}" for f in schema)


@dataclass
class SparkPredictResult:
    """What a prediction on Spark wrote."""

    out: str
    model_id: str
    target: str
    threshold: float
    history: str
    scored: int
    positives: int
    history_incomplete: int
    master: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------ the model on executors


@dataclass(frozen=True)
class ModelPayload:
    """A saved model as bytes, for the executors: its folder's files and what vouches
    for them (the manifest's sha256 recorded by the run)."""

    name: str
    run_id: str
    files: dict[str, bytes]
    manifest_sha256: str | None
    spec: dict[str, Any]

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name])
        return h.hexdigest()


def model_payload(run_dir: str | Path, model: LoadedModel) -> ModelPayload:
    """The files of a model checked by :meth:`Run.load_model`, to broadcast."""
    run = open_run(run_dir)
    folder = run.path / MODELS_DIR / model.name
    return ModelPayload(name=model.name, run_id=model.run_id,
                        files={p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()},
                        manifest_sha256=run.model_entry(model.name).get("manifest_sha256"),
                        spec=model.spec.to_dict())


#: Models loaded in this Python process (a Spark worker), by the digest of their files.
_LOADED: dict[str, LoadedModel] = {}


def load_payload(payload: ModelPayload) -> LoadedModel:
    """The model of ``payload``, loaded once per process: its files written to a private
    folder and loaded through :func:`~crimeclass.models.load_model` (sha256 checked)."""
    from crimeclass.models._persist import check_manifest_sha256, load_model

    key = payload.digest
    if key not in _LOADED:
        with tempfile.TemporaryDirectory(prefix="crimeclass-model-") as tmp:
            for name, data in payload.files.items():
                (Path(tmp) / name).write_bytes(data)
            if payload.manifest_sha256 is not None:
                check_manifest_sha256(tmp, payload.manifest_sha256)
            pipeline, manifest = load_model(tmp)
        _LOADED[key] = LoadedModel(name=payload.name, pipeline=pipeline, manifest=manifest,
                                   spec=FeatureSpec.from_dict(payload.spec),
                                   run_id=payload.run_id)
    return _LOADED[key]


def score_batches(batches: Any, payload: Any) -> Any:
    """``mapInArrow``'s function: feature batches in, prediction batches out (the
    columns of :data:`OUTPUT_SCHEMA`); the model is loaded at the first batch."""
    model: LoadedModel | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        model = model or load_payload(payload.value)
        features = Features.from_arrow(pa.Table.from_batches([batch]), model.spec)
        yield from score_features(features, model).to_arrow().to_batches()


# ------------------------------------------------------------------ the query


def cover_sql() -> str:
    """The days of earlier data of each day of ``_rows`` (``_score._COVER``: written with
    ``date_diff``, which both engines read as a number of days)."""
    return _COVER


def _ts(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(' ')}'"


def scoring_sql(engine: SparkEngine, spec: FeatureSpec, *, history: str | None) -> str:
    """The features of the input's incidents (``engine.source``) against their history
    (the relation ``history``, if any), with ``id`` and ``history_days``: the statement
    of :func:`~crimeclass.models._score.feature_query` for a file input."""
    src = engine.source
    stats = engine.table(f"SELECT count(*) AS n, count(DISTINCT key) AS keys, min(date) AS lo, "
                         f"max(date) AS hi FROM {src}").to_pylist()[0]
    if not stats["n"]:
        raise PredictError("no incidents to score: the input holds no rows with a key")
    if stats["keys"] != stats["n"]:
        raise PredictError(f"the input's keys are not unique ({stats['n']:,} rows, "
                           f"{stats['keys']:,} keys): deduplicate it (a store's export is)")
    lo, hi = stats["lo"], stats["hi"]
    start = lo - dt.timedelta(days=spec.lookback_days)
    span = f"date >= {_ts(start)} AND date <= {_ts(hi)}"
    cols = ", ".join(ROW_COLUMNS)
    rows = f"SELECT {cols}, true AS _target FROM {src}"
    if history is not None:  # an incident in both counts once, as the input's
        rows += (f"\nUNION ALL\nSELECT {cols}, false FROM {history} AS h WHERE {span} "
                 f"AND NOT EXISTS (SELECT 1 FROM {src} AS i WHERE i.key = h.key)")
    engine.define("_rows", rows, materialize=True)
    features = feature_sql(spec, years=range(start.year, hi.year + 2), labeled_only=False,
                           table="_rows")
    names = [f.name for f in feature_catalog(spec)]
    days = (f"CAST(least({float(spec.lookback_days)}, date_diff('day', c.since, f.date)) "
            "AS FLOAT) AS history_days")
    return (f"WITH f AS ({features}),\n_cover AS ({cover_sql()})\n"
            f"SELECT r.id, f.key, f.date, f.{spec.label_column}, "
            f"{', '.join('f.' + n for n in names)}, {days}\n"
            "FROM f JOIN (SELECT key, id FROM _rows WHERE _target) AS r "
            "USING (key) JOIN _cover AS c ON c.day = CAST(f.date AS DATE)")


# ------------------------------------------------------------------ predict


def _check_out(out: str, overwrite: bool) -> None:
    if "://" in out:
        return
    path = Path(out.removeprefix("file:"))
    if path.exists() and not overwrite:
        raise PredictError(f"{out} exists; pass overwrite=True (--overwrite) to replace it",
                           path=out)
    if not path.parent.is_dir():
        raise PredictError(f"the output folder {path.parent} does not exist", path=out)


def spark_predict(run_dir: str | Path, incidents: str | Path, out: str | Path, *,
                  model_name: str | None = None, history: str | Path | None = None,
                  master: str = "local[*]", session: Any = None,
                  overwrite: bool = False) -> SparkPredictResult:
    """Score the incidents of a Parquet input on Spark with a saved model of a run.

    Parameters
    ----------
    run_dir : str or Path
        A run folder (trained on one machine or on Spark alike).
    incidents : str or Path
        Parquet file or folder, or a URI Spark reads (``s3a://``, ``abfss://``, ``gs://``),
        in the canonical schema (``crimeclass export``).
    out : str or Path
        The output Parquet folder (one file per partition), the columns of
        :data:`~crimeclass.models._score.OUTPUT_COLUMNS`.
    model_name : str, optional
        A model of the run; its best by default.
    history : str or Path, optional
        Parquet of earlier incidents the history features count too.
    master : str, default="local[*]"
        Where Spark runs when no ``session`` is given (``local[2]``, ``yarn`` ...).
    session : pyspark.sql.SparkSession, optional
    overwrite : bool, default=False

    Raises
    ------
    RunError, ModelFileError
        The run or its model cannot be loaded.
    EngineError
        An input or history without Parquet, or with a column missing or mistyped.
    PredictError
        No rows, duplicate keys, an output that exists.
    """
    t0 = time.perf_counter()
    out = str(out)
    _check_out(out, overwrite)
    model = open_run(run_dir).load_model(model_name)
    needed = required_columns(model.spec)
    with SparkEngine.from_input(incidents, required=needed, master=master,
                                session=session) as engine:
        if history is not None:
            read_incidents(engine.spark, history, required=needed
                           ).createOrReplaceTempView("_history")
        sql = scoring_sql(engine, model.spec, history=None if history is None else "_history")
        payload = engine.spark.sparkContext.broadcast(model_payload(run_dir, model))
        try:
            with warnings.catch_warnings():  # Arrow batches, never pandas, cross to Spark
                warnings.filterwarnings("ignore", category=FutureWarning,
                                        message="PySpark does not yet fully support pandas")
                scored = engine.frame(sql).mapInArrow(partial(score_batches, payload=payload),
                                                      spark_schema(OUTPUT_SCHEMA))
            scored.write.mode("overwrite" if overwrite else "errorifexists").option(
                "compression", "zstd").parquet(out)
            counts = engine.spark.read.parquet(out).selectExpr(
                "count(*) AS n", "count_if(label) AS positives",
                "count_if(NOT history_complete) AS incomplete").collect()[0]
        finally:
            payload.destroy()
        master = str(engine.spark.sparkContext.master)
    return SparkPredictResult(out=out, model_id=model.model_id, target=model.target,
                              threshold=model.threshold,
                              history="input" if history is None else "history",
                              scored=int(counts["n"]), positives=int(counts["positives"]),
                              history_incomplete=int(counts["incomplete"]), master=master,
                              seconds=round(time.perf_counter() - t0, 2))


