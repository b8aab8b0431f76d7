"""Batch prediction: score CSV, Parquet or a store with a saved model, in bounded memory.

:func:`predict` reads the input through the data layer exactly as ingest does
(same sources, same validation, keys and labels, same quarantine): the rows
are ingested into a temporary store in a scratch folder beside the output,
bad rows are quarantined there with their file, line, field and reason. The
features are then computed by the run's own feature query (``features.sql``)
over the input's incidents together with the *history*: the earlier incidents
of a history store (``history_store``, e.g. the store the model was trained
on) and the input's own earlier rows. DuckDB computes them under a memory
limit, spilling to the scratch folder; the result is read back in chunks of
``chunk_rows``, each chunk scored by the saved model and appended to the
output. Python never holds more than one chunk.

Without a history store, the history features (incidents in the same place
in the days before) are counted from the input's own earlier rows only: for
rows less than the longest window (``lookback``, 1,095 days by default) after
the input's first incident they are too low. Every output row says how many
days of earlier data its features could read (``history_days``) and whether
that covers the whole lookback (``history_complete``); the result says which
history was used.

The output is written under a temporary name and renamed when complete; on
any error nothing is left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crimeclass.data import (
    COLUMNS,
    CrimeclassError,
    IngestOptions,
    Store,
    expand_paths,
    open_source,
)
from crimeclass.features import FeatureSpec, feature_catalog, feature_frame, feature_sql
from crimeclass.models._persist import load_model

__all__ = ["OUTPUT_COLUMNS", "PredictOptions", "PredictResult", "RunError", "load_run_model",
           "predict", "quarantine_path", "required_columns"]

#: Columns of a prediction file, in order.
OUTPUT_COLUMNS = ("id", "key", "date", "probability", "label", "model_id", "target",
                  "history_days", "history_complete")

_OUT_SCHEMA = pa.schema([
    ("id", pa.int64()), ("key", pa.int64()), ("date", pa.timestamp("us")),
    ("probability", pa.float64()), ("label", pa.bool_()), ("model_id", pa.string()),
    ("target", pa.string()), ("history_days", pa.float32()), ("history_complete", pa.bool_()),
])
_QUARANTINE_COLUMNS = ("file", "line", "field", "reason", "problems", "raw")
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_DUCKDB_MAGIC = b"DUCK"

#: ``on_event(kind, info)``: progress for a user interface.
EventHandler = Callable[[str, dict[str, Any]], None]


class RunError(CrimeclassError, ValueError):
    """A run folder cannot be used: incomplete, or without the model asked for."""


@dataclass(frozen=True)
class PredictOptions:
    """How a batch prediction runs.

    Parameters
    ----------
    chunk_rows : int, default=100000
        Rows scored and written at a time (Python's memory bound).
    memory_limit : str, default="1GB"
        DuckDB's memory limit while ingesting and computing the features;
        beyond it DuckDB spills to the scratch folder.
    threads : int, optional
        DuckDB threads (all cores by default).
    since, until : str, optional
        Only for a store as input: the window of incidents to score (ISO dates,
        ``until`` excluded).
    """

    chunk_rows: int = 100_000
    memory_limit: str = "1GB"
    threads: int | None = None
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be positive, got {self.chunk_rows}")


@dataclass
class PredictResult:
    """What a batch prediction wrote."""

    out: Path
    quarantine_file: Path | None
    model_id: str
    target: str
    threshold: float
    history: str
    read: int
    scored: int
    quarantined: int
    positives: int
    history_incomplete: int
    seconds: float
    quarantine_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


# ------------------------------------------------------------------ the run


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"the run folder is incomplete: cannot read {path.name} ({e})") from e


def load_run_model(run_dir: str | Path, name: str | None = None
                   ) -> tuple[Any, dict[str, Any], FeatureSpec]:
    """The saved model ``name`` of a run (its best by default), its manifest and feature spec.

    Raises
    ------
    RunError
        The folder is not a complete run, or has no model ``name``.
    ModelFileError
        A model file is missing, altered (sha256) or holds an untrusted type.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"no run folder at {run}")
    missing = [f for f in ("config.json", "metrics.json", "models") if not (run / f).exists()]
    if missing:
        raise RunError(f"the run folder {run} is incomplete: {', '.join(missing)} missing "
                       "(an interrupted run leaves a hidden .tmp folder, never a run folder)")
    metrics = _read_json(run / "metrics.json")
    config = _read_json(run / "config.json")
    names = [m["name"] for m in metrics.get("models", [])]
    name = name or metrics.get("best_model")
    if name is None:
        raise RunError(f"the run {run} names no best model; pass a model name")
    if name not in names:
        raise RunError(f"the run {run.name} has no model {name!r}; its models are: "
                       f"{', '.join(names)}")
    model, manifest = load_model(run / "models" / name)
    spec = FeatureSpec.from_dict(manifest.get("feature_spec") or config["features"])
    expected = [f.name for f in feature_catalog(spec)]
    if list(manifest.get("features", [])) != expected:
        raise RunError(f"the manifest of {name!r} lists other features than its feature spec "
                       "computes: the run folder was edited")
    return model, manifest, spec


# ------------------------------------------------------------------ inputs


def _is_store(path: Path) -> bool:
    if path.suffix == ".duckdb":
        return True
    try:
        with path.open("rb") as f:
            return f.read(12)[8:12] == _DUCKDB_MAGIC
    except OSError:
        return False


def required_columns(spec: FeatureSpec) -> list[str]:
    """The canonical input columns the features of ``spec`` are computed from."""
    uses = {c for f in feature_catalog(spec) for c in f.uses}
    if "is_index" in uses:  # the label of earlier incidents comes from the IUCR code
        uses = (uses - {"is_index"}) | {"iucr"}
    uses.add("date")
    return [c.name for c in COLUMNS if c.name in uses]


def _check_sources(paths: list[Path], spec: FeatureSpec) -> list[Any]:
    needed = required_columns(spec)
    portal = {c.name: c.portal for c in COLUMNS}
    sources = []
    for p in paths:
        src = open_source(p)  # unknown (extra) columns and a missing Date raise here
        missing = [c for c in needed if c not in src.header.columns]
        if missing:
            raise RunError(f"{p}: missing column(s) {', '.join(portal[c] for c in missing)}; "
                           "the model's features are computed from them")
        sources.append(src)
    return sources


# --------------------------------------------------------------- the query

_ROW_COLUMNS = ("key", "id", "date", "is_index", "arrest", "block", "location_description",
                "domestic", "beat", "district", "ward", "community_area", "x_coordinate",
                "y_coordinate", "primary_type", "description", "iucr", "fbi_code")


def _window_sql(since: str | None, until: str | None) -> str:
    cond = ["true"]
    if since:
        cond.append(f"date >= TIMESTAMP '{dt.datetime.fromisoformat(since).isoformat(' ')}'")
    if until:
        cond.append(f"date < TIMESTAMP '{dt.datetime.fromisoformat(until).isoformat(' ')}'")
    return " AND ".join(cond)


def _scored_sql(con: Any, spec: FeatureSpec, *, window: str, history: bool,
                history_is_input: bool) -> tuple[str, int]:
    """The statement returning the features of the input's incidents, and their count."""
    cols = ", ".join(_ROW_COLUMNS)
    n, lo, hi = con.execute(f"SELECT count(*), min(date), max(date) FROM inp.incidents "
                            f"WHERE {window}").fetchall()[0]
    if not n:
        raise RunError("no incidents to score: the input holds no valid rows"
                       + ("" if window == "true" else " in the window"))
    start = lo - dt.timedelta(days=spec.lookback_days)
    span = (f"date >= TIMESTAMP '{start.isoformat(' ')}' "
            f"AND date <= TIMESTAMP '{hi.isoformat(' ')}'")
    if history_is_input:  # a store as input is its own history
        rows = (f"SELECT {cols}, ({window}) AS _target, ingest_id AS _ingest, "
                f"source_line AS _line FROM inp.incidents WHERE {span}")
    else:
        rows = (f"SELECT {cols}, true AS _target, ingest_id AS _ingest, source_line AS _line "
                f"FROM inp.incidents WHERE {window}")
    if history:  # an incident in both counts once, as the input's
        taken = span if history_is_input else window
        rows += (f"\nUNION ALL\nSELECT {cols}, false, NULL, NULL FROM hist.incidents "
                 f"WHERE {span} AND key NOT IN (SELECT key FROM inp.incidents WHERE {taken})")
    con.execute(f"CREATE OR REPLACE TABLE _rows AS {rows}")  # on disk: DuckDB may spill
    features = feature_sql(spec, years=range(start.year, hi.year + 2), labeled_only=False,
                           table="_rows")
    names = [f.name for f in feature_catalog(spec)]
    # days of earlier data the history features could read (at most the lookback): not a
    # feature (it only grows with the calendar), but each output row reports it
    days = (f"CAST(least({float(spec.lookback_days)}, date_diff('day', "
            "(SELECT min(date) FROM _rows), f.date)) AS FLOAT) AS history_days")
    sql = (f"WITH f AS ({features})\n"
           f"SELECT r.id, f.key, f.date, {', '.join('f.' + n for n in names)}, {days}\n"
           "FROM f JOIN (SELECT key, id, _ingest, _line FROM _rows WHERE _target) AS r "
           "USING (key)\nORDER BY r._ingest, r._line, f.date, f.key")
    return sql, int(n)


# ------------------------------------------------------------------ writers


class _Writer:
    """Arrow batches to a CSV or Parquet file under a temporary name."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema,
                 metadata: dict[str, str] | None = None) -> None:
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.path = path
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._w: Any = pq.ParquetWriter(str(self.tmp), schema.with_metadata(metadata or {}),
                                            compression="zstd")
        else:
            import pyarrow.csv as pcsv

            self._w = pcsv.CSVWriter(str(self.tmp), schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._w.write_batch(batch)

    def commit(self) -> None:
        self._w.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._w.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def quarantine_path(out: Path) -> Path:
    """Where the quarantine of ``out`` is written: ``FILE.quarantine.csv`` beside it."""
    return out.with_name(out.name + ".quarantine.csv")


# ------------------------------------------------------------------ predict


def predict(run_dir: str | Path, inputs: str | Path | Sequence[str | Path], out: str | Path, *,
            model_name: str | None = None, history_store: str | Path | None = None,
            options: PredictOptions | None = None,
            on_event: EventHandler | None = None) -> PredictResult:
    """Score every incident of ``inputs`` with a saved model of a run; write ``out``.

    Parameters
    ----------
    run_dir : str or Path
        A run folder written by :func:`crimeclass.models.train`.
    inputs : path or sequence of paths
        CSV, CSV.gz or Parquet files or folders (any export that ingest reads),
        or one store (a ``.duckdb`` file), whose incidents are scored.
    out : str or Path
        ``.csv`` or ``.parquet``: one row per valid input row (see
        :data:`OUTPUT_COLUMNS`). Bad rows go to ``out.quarantine.csv``.
    model_name : str, optional
        A model of the run; its best model by default.
    history_store : str or Path, optional
        A store whose earlier incidents the history features count (besides
        the input's own earlier rows). Without it, the history of the first
        ``lookback`` days of the input is incomplete (marked in the output).
    options : PredictOptions, optional
    on_event : callable, optional
        ``on_event(kind, info)``: ``stage`` (``text``), ``ingest`` (``file``,
        ``done``, ``total`` bytes or rows), ``score`` (``done``, ``total`` rows).

    Returns
    -------
    PredictResult

    Raises
    ------
    RunError
        An incomplete run folder, an unknown model, input columns missing, no
        rows to score, an output of another format.
    ModelFileError
        A model file that does not match its recorded sha256.
    HeaderError, SourceError
        Input with unknown columns, or that cannot be read.
    """
    import duckdb

    t0 = time.perf_counter()
    options = options or PredictOptions()
    emit: EventHandler = on_event or (lambda kind, info: None)
    out = Path(out)
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise RunError(f"cannot tell the output format of {out.name}: use .csv or .parquet")
    if not out.parent.is_dir():
        raise RunError(f"the output folder {out.parent} does not exist")
    model, manifest, spec = load_run_model(run_dir, model_name)
    target = manifest.get("target", "index")
    threshold = float(manifest["threshold"])
    model_id = f"{manifest.get('run_id', Path(run_dir).name)}/{manifest['name']}"
    # the model's own columns: a model saved before history_days left the catalog still
    # reads it (computed for every row below)
    names = list(manifest.get("features") or [f.name for f in feature_catalog(spec)])

    paths = [Path(p) for p in ([inputs] if isinstance(inputs, str | Path) else inputs)]
    store_input = len(paths) == 1 and paths[0].is_file() and _is_store(paths[0])
    hist = Path(history_store) if history_store is not None else None
    if hist is not None and not hist.is_file():
        raise RunError(f"no history store at {hist}")
    if not store_input and (options.since or options.until):
        raise RunError("--since/--until select incidents of a store; a file is scored whole")
    sources = [] if store_input else _check_sources(expand_paths(list[str | Path](paths)), spec)
    if store_input and hist is not None and hist.resolve() == paths[0].resolve():
        hist = None  # the input store is its own history
    history = ("store" if hist is not None or store_input else "input")

    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    writer: _Writer | None = None
    qwriter: _Writer | None = None
    try:
        read = quarantined = 0
        reasons: dict[str, int] = {}
        if store_input:
            input_db = paths[0]
            with Store(input_db, read_only=True) as s:
                s.require_rows()
        else:
            input_db = work / "input.duckdb"
            ingest_opts = IngestOptions(memory_limit=options.memory_limit,
                                        threads=options.threads)
            with Store(input_db) as s:
                s.con.execute("SET enable_progress_bar = false")  # ours is on stderr
                for src in sources:
                    emit("stage", {"text": f"reading {src.name}"})

                    def step(done: int, total: int, name: str = src.name) -> None:
                        emit("ingest", {"file": name, "done": done, "total": total})

                    account = s.ingest(src, ingest_opts, step)
                    read += account.read
                for r, n in s.con.execute("SELECT reason, count(*) FROM quarantine "
                                          "GROUP BY ALL ORDER BY 2 DESC").fetchall():
                    reasons[str(r)] = int(n)
                quarantined = sum(reasons.values())
                if quarantined:
                    qtable = s.con.sql(
                        "SELECT source AS file, line, field, reason, problems, raw "
                        "FROM quarantine ORDER BY source, line").to_arrow_table()
                    qwriter = _Writer(quarantine_path(out), "csv", qtable.schema)
                    for b in qtable.to_batches(max_chunksize=options.chunk_rows):
                        qwriter.write(b)
                    del qtable

        con = duckdb.connect(str(work / "work.duckdb"))
        try:
            con.execute(f"SET memory_limit = '{options.memory_limit}'")
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET temp_directory = '{work / 'spill'}'")
            if options.threads:
                con.execute(f"SET threads = {int(options.threads)}")
            con.execute(f"ATTACH '{input_db}' AS inp (READ_ONLY)")
            if hist is not None:
                con.execute(f"ATTACH '{hist}' AS hist (READ_ONLY)")
            emit("stage", {"text": "computing the features"
                                   + (f" (history: {hist.name} and the input)" if hist
                                      else " (history: the input store)" if store_input
                                      else " (history: the input's own earlier rows only)")})
            window = _window_sql(options.since, options.until) if store_input else "true"
            sql, total = _scored_sql(con, spec, window=window, history=hist is not None,
                                     history_is_input=store_input)
            if store_input:
                read = total
            metadata = {"crimeclass": json.dumps({
                "model_id": model_id, "target": target, "threshold": threshold,
                "history": history, "run_dir": str(run_dir), "classes": manifest.get("classes"),
                "lookback_days": spec.lookback_days})}
            writer = _Writer(out, fmt, _OUT_SCHEMA, metadata)
            done = positives = incomplete = 0
            emit("score", {"done": 0, "total": total})
            try:
                reader = con.sql(sql).to_arrow_reader(options.chunk_rows)
            except duckdb.OutOfMemoryException as e:
                raise RunError(f"DuckDB ran out of memory computing the features under the "
                               f"memory limit {options.memory_limit} (--memory-limit); "
                               f"raise it: {str(e).splitlines()[0]}") from e
            for batch in reader:
                frame = feature_frame(batch, spec)
                p = model.predict_proba(frame[["date", *names]])[:, 1].astype(np.float64)
                label = p >= threshold
                hdays = frame["history_days"].to_numpy(np.float32)
                complete = hdays >= spec.lookback_days
                n = len(frame)
                writer.write(pa.RecordBatch.from_arrays([
                    batch.column("id").cast(pa.int64()), batch.column("key").cast(pa.int64()),
                    batch.column("date").cast(pa.timestamp("us")), pa.array(p),
                    pa.array(label), pa.array([model_id] * n, pa.string()),
                    pa.array([target] * n, pa.string()), pa.array(hdays),
                    pa.array(complete)], schema=_OUT_SCHEMA))
                done += n
                positives += int(label.sum())
                incomplete += int((~complete).sum())
                emit("score", {"done": done, "total": total})
        finally:
            con.close()
        if done != total:  # pragma: no cover - the join keeps every input row
            raise RunError(f"scored {done:,} rows of {total:,}: the input's keys are not unique")
        writer.commit()
        writer = None
        qfile = None
        if qwriter is not None:
            qwriter.commit()
            qfile, qwriter = quarantine_path(out), None
        else:
            quarantine_path(out).unlink(missing_ok=True)  # a stale one would mislead
    except BaseException:
        for w in (writer, qwriter):
            if w is not None:
                w.abort()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PredictResult(out=out, quarantine_file=qfile, model_id=model_id, target=target,
                         threshold=threshold, history=history, read=read, scored=done,
                         quarantined=quarantined, positives=positives,
                         history_incomplete=incomplete,
                         seconds=round(time.perf_counter() - t0, 2),
                         quarantine_reasons=reasons)
