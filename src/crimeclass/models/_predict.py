"""Batch prediction: score CSV, Parquet or a store with a saved model, in bounded memory.

A thin wrapper around the scoring core (:mod:`crimeclass.models._score`) for
inputs larger than memory.

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
history was used. Those days run back through the input and the history
store together, up to a gap in the data (see :mod:`crimeclass.models._score`):
a history store that ends before the input begins does not complete it.

The output is written under a temporary name and renamed when complete; on
any error nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from crimeclass.data import (
    COLUMNS,
    IngestOptions,
    Store,
    expand_paths,
    is_duckdb_file,
    open_source,
)
from crimeclass.features import FeatureSpec
from crimeclass.models._errors import ModelOptionError, PredictError
from crimeclass.models._run import LoadedModel, open_run
from crimeclass.models._score import (
    OUTPUT_SCHEMA,
    Features,
    feature_query,
    required_columns,
    score_features,
    window_sql,
)

__all__ = ["PredictOptions", "PredictResult", "predict", "quarantine_path"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

#: ``on_event(kind, info)``: progress for a user interface.
EventHandler = Callable[[str, dict[str, Any]], None]


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
            raise ModelOptionError(f"chunk_rows must be positive, got {self.chunk_rows}",
                                   option="--chunk-rows", value=self.chunk_rows)


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


# ------------------------------------------------------------------ inputs


def _check_sources(paths: list[Path], spec: FeatureSpec) -> list[Any]:
    needed = required_columns(spec)
    portal = {c.name: c.portal for c in COLUMNS}
    sources = []
    for p in paths:
        src = open_source(p)  # unknown (extra) columns and a missing Date raise here
        missing = [c for c in needed if c not in src.header.columns]
        if missing:
            raise PredictError(f"{p}: missing column(s) "
                               f"{', '.join(portal[c] for c in missing)}; the model's "
                               "features are computed from them", path=p)
        sources.append(src)
    return sources


@dataclass
class _Plan:
    """What to score and against which history, checked before anything is written."""

    paths: list[Path]
    store_input: bool
    hist: Path | None
    sources: list[Any]

    @property
    def history(self) -> str:
        return "store" if self.hist is not None or self.store_input else "input"


def _plan(inputs: str | Path | Sequence[str | Path], history_store: str | Path | None,
          options: PredictOptions, spec: FeatureSpec) -> _Plan:
    paths = [Path(p) for p in ([inputs] if isinstance(inputs, str | Path) else inputs)]
    store_input = len(paths) == 1 and is_duckdb_file(paths[0])
    hist = Path(history_store) if history_store is not None else None
    if hist is not None and not hist.is_file():
        raise PredictError(f"no history store at {hist}", path=hist)
    if hist is not None:
        with Store(hist, read_only=True):  # a crimeclass store, or a clear StoreError
            pass
    if not store_input and (options.since or options.until):
        raise ModelOptionError("--since/--until select incidents of a store; a file is "
                               "scored whole", option="--since/--until")
    sources = [] if store_input else _check_sources(expand_paths(list[str | Path](paths)), spec)
    if store_input and hist is not None and hist.resolve() == paths[0].resolve():
        hist = None  # the input store is its own history
    return _Plan(paths=paths, store_input=store_input, hist=hist, sources=sources)


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


# ------------------------------------------------------------------ steps


@dataclass
class _Ingested:
    """The input as a store, and what its ingest read and quarantined."""

    db: Path
    read: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    quarantine: _Writer | None = None

    @property
    def quarantined(self) -> int:
        return sum(self.reasons.values())


def _ingest(plan: _Plan, work: Path, out: Path, options: PredictOptions,
            emit: EventHandler) -> _Ingested:
    """Ingest the input files into a scratch store (validated and quarantined as by ingest)."""
    if plan.store_input:
        with Store(plan.paths[0], read_only=True) as s:
            s.require_rows()
        return _Ingested(db=plan.paths[0])
    done = _Ingested(db=work / "input.duckdb")
    ingest_opts = IngestOptions(memory_limit=options.memory_limit, threads=options.threads)
    with Store(done.db) as s:
        s.con.execute("SET enable_progress_bar = false")  # ours is on stderr
        for src in plan.sources:
            emit("stage", {"text": f"reading {src.name}"})

            def step(done: int, total: int, name: str = src.name) -> None:
                emit("ingest", {"file": name, "done": done, "total": total})

            done.read += s.ingest(src, ingest_opts, step).read
        for r, n in s.con.execute("SELECT reason, count(*) FROM quarantine "
                                  "GROUP BY ALL ORDER BY 2 DESC").fetchall():
            done.reasons[str(r)] = int(n)
        if done.quarantined:
            qtable = s.con.sql("SELECT source AS file, line, field, reason, problems, raw "
                               "FROM quarantine ORDER BY source, line").to_arrow_table()
            done.quarantine = _Writer(quarantine_path(out), "csv", qtable.schema)
            try:
                for b in qtable.to_batches(max_chunksize=options.chunk_rows):
                    done.quarantine.write(b)
            except BaseException:
                done.quarantine.abort()
                raise
    return done


def _connect(work: Path, input_db: Path, hist: Path | None, options: PredictOptions) -> Any:
    """A scratch DuckDB under the memory limit, spilling to ``work``, with the stores attached."""
    from crimeclass.engines import DuckDBSettings, attach, connect

    con = connect(work / "work.duckdb", settings=DuckDBSettings(
        memory_limit=options.memory_limit, threads=options.threads or None,
        temp_directory=work / "spill", progress_bar=False))
    attach(con, input_db, "inp")
    if hist is not None:
        attach(con, hist, "hist")
    return con


def _history_text(plan: _Plan) -> str:
    if plan.hist is not None:
        return f" (history: {plan.hist.name} and the input)"
    if plan.store_input:
        return " (history: the input store)"
    return " (history: the input's own earlier rows only)"


@dataclass
class _Counts:
    total: int = 0
    done: int = 0
    positives: int = 0
    incomplete: int = 0


def _score_chunks(con: Any, sql: str, model: LoadedModel, writer: _Writer, counts: _Counts,
                  options: PredictOptions, emit: EventHandler) -> None:
    """Score the feature query chunk by chunk: never more than one chunk in Python."""
    import duckdb

    emit("score", {"done": 0, "total": counts.total})
    try:
        reader = con.sql(sql).to_arrow_reader(options.chunk_rows)
    except duckdb.OutOfMemoryException as e:
        raise ModelOptionError(
            f"DuckDB ran out of memory computing the features under the memory limit "
            f"{options.memory_limit} (--memory-limit); raise it: {str(e).splitlines()[0]}",
            option="--memory-limit", value=options.memory_limit) from e
    for batch in reader:
        scores = score_features(Features.from_arrow(batch, model.spec), model)
        for b in scores.to_arrow().to_batches():
            writer.write(b)
        counts.done += len(scores.features)
        counts.positives += int(scores.decision.sum())
        counts.incomplete += int((~scores.features.history_complete).sum())
        emit("score", {"done": counts.done, "total": counts.total})


def _score_into(plan: _Plan, ingested: _Ingested, work: Path, model: LoadedModel,
                writer_for: Callable[[], _Writer], options: PredictOptions,
                emit: EventHandler) -> tuple[_Writer, _Counts]:
    """Compute the features of the input against its history and score them into a writer."""
    con = _connect(work, ingested.db, plan.hist, options)
    try:
        emit("stage", {"text": "computing the features" + _history_text(plan)})
        window = window_sql(options.since, options.until) if plan.store_input else "true"
        sql, total = feature_query(con, model.spec, inputs="inp.incidents", window=window,
                                   history="hist.incidents" if plan.hist else None,
                                   history_is_input=plan.store_input)
        counts = _Counts(total=total)
        writer = writer_for()
        try:
            _score_chunks(con, sql, model, writer, counts, options, emit)
        except BaseException:
            writer.abort()
            raise
    finally:
        con.close()
    if counts.done != counts.total:  # pragma: no cover - the join keeps every input row
        writer.abort()
        raise PredictError(f"scored {counts.done:,} rows of {counts.total:,}: the input's "
                           "keys are not unique")
    return writer, counts


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
        An incomplete run folder, an unknown model.
    PredictError
        Input columns missing, no rows to score, an output of another format.
    ModelFileError
        A model file that does not match its recorded sha256.
    HeaderError, SourceError
        Input with unknown columns, or that cannot be read.
    """
    t0 = time.perf_counter()
    options = options or PredictOptions()
    emit: EventHandler = on_event or (lambda kind, info: None)
    out = Path(out)
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise PredictError(f"cannot tell the output format of {out.name}: use .csv or "
                           ".parquet", path=out)
    if not out.parent.is_dir():
        raise PredictError(f"the output folder {out.parent} does not exist", path=out)
    model = open_run(run_dir).load_model(model_name)
    plan = _plan(inputs, history_store, options, model.spec)
    metadata = {"crimeclass": json.dumps({
        "model_id": model.model_id, "target": model.target, "threshold": model.threshold,
        "history": plan.history, "run_dir": str(run_dir),
        "classes": model.manifest.get("classes"), "lookback_days": model.spec.lookback_days})}

    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    ingested: _Ingested | None = None
    try:
        ingested = _ingest(plan, work, out, options, emit)
        writer, counts = _score_into(
            plan, ingested, work, model, lambda: _Writer(out, fmt, OUTPUT_SCHEMA, metadata),
            options, emit)
        writer.commit()
        qfile = _commit_quarantine(ingested, out)
    except BaseException:
        if ingested is not None and ingested.quarantine is not None:
            ingested.quarantine.abort()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PredictResult(out=out, quarantine_file=qfile, model_id=model.model_id,
                         target=model.target, threshold=model.threshold, history=plan.history,
                         read=counts.total if plan.store_input else ingested.read,
                         scored=counts.done, quarantined=ingested.quarantined,
                         positives=counts.positives, history_incomplete=counts.incomplete,
                         seconds=round(time.perf_counter() - t0, 2),
                         quarantine_reasons=ingested.reasons)


def _commit_quarantine(ingested: _Ingested, out: Path) -> Path | None:
    if ingested.quarantine is None:
        quarantine_path(out).unlink(missing_ok=True)  # a stale one would mislead
        return None
    ingested.quarantine.commit()
    ingested.quarantine = None
    return quarantine_path(out)
