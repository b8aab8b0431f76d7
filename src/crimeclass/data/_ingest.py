"""Ingest: a source's rows into the store, in one transaction, with a full account.

How it works (``docs/data.md`` has the picture):

1. Each group of Arrow batches of the source is validated, labeled and keyed by
   one SQL statement (:func:`stage_sql`) into a small temporary table; its
   good rows are appended to ``incidents`` at once, its bad rows to
   ``quarantine``. Rows without an ID get a key derived from their Case Number,
   Date, IUCR (or descriptions) and Block, and their rank among this file's rows
   with the same such values (two victims of one homicide share them).
2. When the whole source is in, the new rows are reconciled with the rows that
   were there before, with narrow queries: an ID already stored keeps the row
   with the newest ``updated_on`` (an equal one: the incoming row if its content
   differs); a row with an ID takes over a stored row without ID that is the
   same incident; a row without ID pairs with the stored incident it repeats;
   duplicate IDs inside the file keep the newest row and quarantine the rest.

Appending first and reconciling after keeps the common case (new rows) to one
copy of each row, and memory bounded by the batch size.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from crimeclass.data._account import IngestAccount
from crimeclass.data._labels import iucr_table, label_sql, lookup_sql
from crimeclass.data._reconcile import (
    BASE_TEXT,
    STORED,
    add_counts,
    derived_key,
    hash62,
    reconcile,
    sql_int,
    sql_rows,
)
from crimeclass.data._schema import COLUMN_NAMES, DATE_FORMATS
from crimeclass.data._validate import Bounds, raw_json_sql, validation_sql
from crimeclass.data.sources._base import Source

__all__ = ["STORED", "IngestOptions", "ingest", "stage_sql"]

INSERT_COLUMNS = [c.name for c in STORED] + [
    "key", "base_key", "ordinal", "key_derived", "is_index", "label_source",
    "flags", "ingest_id", "source_line"]


@dataclass(frozen=True)
class IngestOptions:
    """How an ingest runs.

    Parameters
    ----------
    block_bytes : int
        Uncompressed bytes of CSV parsed at a time (the reader's memory bound).
    statement_rows : int
        Rows validated and appended by one SQL statement.
    memory_limit : str
        DuckDB's memory limit during the ingest; beyond it DuckDB spills to disk.
    threads : int or None
        DuckDB threads; None uses every core.
    bounds : Bounds
        Plausible ranges of coordinates and area codes.
    now : str or None
        Time of ingest as ISO text (dates after it are quarantined); None: the clock.
    """

    block_bytes: int = 16 << 20
    statement_rows: int = 500_000
    memory_limit: str = "1GB"
    threads: int | None = None
    bounds: Bounds = field(default_factory=Bounds)
    now: str | None = None


def stage_sql(formats: list[str], bounds: Bounds, now: str, relation: str = "_batch",
              typed: frozenset[str] = frozenset()) -> str:
    """Validation, label and key material of the raw rows of ``relation`` (the columns
    in ``typed`` arrive parsed)."""
    validated = validation_sql(relation, date_formats=formats, bounds=bounds, now=now,
                               typed=typed)
    return f"SELECT l.*, {hash62(BASE_TEXT)} AS base_key FROM ({label_sql(f'({validated})')}) AS l"


def typed_columns(schema: pa.Schema) -> frozenset[str]:
    """The canonical columns of a raw batch that arrive parsed (not as text)."""
    return frozenset(f.name for f in schema if f.name in COLUMN_NAMES
                     and not pa.types.is_string(f.type) and not pa.types.is_null(f.type))


def _grouped(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Batches gathered into tables of at least ``rows`` rows: one SQL statement each.

    A batch whose columns differ in type from the group's (typed or text) starts a new group.
    """
    group: list[pa.RecordBatch] = []
    n = 0
    for b in batches:
        if group and b.schema != group[0].schema:
            yield pa.Table.from_batches(group)
            group, n = [], 0
        group.append(b)
        n += b.num_rows
        if n >= rows:
            yield pa.Table.from_batches(group)
            group, n = [], 0
    if group:
        yield pa.Table.from_batches(group)


def _prefetch(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Produce items in a thread, so that parsing and loading overlap on two cores."""
    q: Queue[Any] = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=run, daemon=True, name="crimeclass-reader")
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock the reader if it waits on a full queue
            while not q.empty():
                q.get_nowait()
            t.join(timeout=0.05)


def run_on(con: duckdb.DuckDBPyConnection, table: pa.Table, sql: str,
           params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` with the relation ``_batch`` bound to the Arrow ``table``.

    DuckDB finds ``_batch`` among this frame's local variables (a replacement scan).
    ``con.register`` would create a catalog view instead, which a transaction keeps,
    with the Arrow data it points to, until it ends: inside one long ingest every
    batch would stay in memory. This way each batch is freed after its statement.
    """
    _batch = table  # noqa: F841 - read by DuckDB's replacement scan
    return con.execute(sql, params or []).fetchall()


def detect_date_format(con: duckdb.DuckDBPyConnection, batch: pa.Table,
                       formats: list[str]) -> str | None:
    """The first format that parses every one of the first 1,000 non-empty dates."""
    probe = batch.select(["date"]).slice(0, 5000)
    sample = "(SELECT date FROM _batch WHERE nullif(trim(date), '') IS NOT NULL LIMIT 1000)"
    n = int(run_on(con, probe, f"SELECT count(*) FROM {sample}")[0][0])
    for fmt in formats if n else []:
        ok = run_on(con, probe, f"SELECT count(try_strptime(trim(date), '{fmt}')) FROM {sample}")
        if ok[0][0] == n:
            return fmt
    return None


@contextmanager
def _noting_interrupts() -> Iterator[list[int]]:
    """Note each Ctrl-C (SIGINT) while the block runs, handling it as Python does.

    DuckDB reports a Ctrl-C that lands while it runs a statement as an error of its
    own (a stopped statement: ``RuntimeError('Query interrupted')``; one inside its
    scan of an Arrow batch: ``InvalidInputException``), which would hide it. Only in
    the main thread, and only where Python's own handler is installed.
    """
    seen: list[int] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def ingest(con: duckdb.DuckDBPyConnection, source: Source, ingest_id: int,
           options: IngestOptions, account: IngestAccount,
           on_progress: Callable[[int, int], None] | None = None) -> None:
    """Load ``source`` into the store behind ``con`` (inside the caller's transaction).

    A Ctrl-C raises KeyboardInterrupt, however DuckDB reports it; the caller's rollback
    then leaves the store as it was.
    """
    with _noting_interrupts() as interrupts:
        try:
            _ingest(con, source, ingest_id, options, account, on_progress)
        except Exception as e:
            if interrupts:
                raise KeyboardInterrupt(f"interrupted, nothing of {source.name} stored"
                                        ) from e
            raise
    if account.read == 0:
        account.warnings.append("no rows: the file holds a header and no record"
                                if source.format == "csv" else "no rows: the source holds none")


def _ingest(con: duckdb.DuckDBPyConnection, source: Source, ingest_id: int,
            options: IngestOptions, account: IngestAccount,
            on_progress: Callable[[int, int], None] | None) -> None:
    now = f"TIMESTAMP '{options.now}'" if options.now else "now()::TIMESTAMP"
    con.execute("DELETE FROM quarantine WHERE source = ?", [source.name])
    con.execute("CREATE OR REPLACE TEMP TABLE _seen (base_key BIGINT PRIMARY KEY, n BIGINT)")
    codes = iucr_table()
    for name, sql in lookup_sql("_batch").items():
        run_on(con, codes, f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    ids = _append(con, source, ingest_id, options, now, account, on_progress)
    # on failure the caller's rollback drops these (a statement in an aborted
    # transaction would fail, and hide the error)
    for t in ("_b", "_seen", "_rank", *lookup_sql()):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    reconcile(con, source.name, ingest_id, account, maybe_duplicates=ids.maybe_duplicates())


class _IdsSeen:
    """The IDs of a source's rows as they pass, to tell whether the file may repeat one.

    Kept while every ID arrives typed (an integer column, a few MB per million rows);
    a sorted copy then shows at once that no ID repeats, which spares the reconciliation
    its search of the appended rows. IDs that arrive as text leave the answer "maybe".
    """

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] | None = []

    def add(self, ids: pa.ChunkedArray) -> None:
        if self.chunks is None:
            return
        if not pa.types.is_integer(ids.type):
            self.chunks = None
            return
        self.chunks.append(ids.drop_null().to_numpy())

    def maybe_duplicates(self) -> bool:
        if self.chunks is None:
            return True
        ids = np.sort(np.concatenate(self.chunks)) if self.chunks else np.empty(0, np.int64)
        self.chunks = None
        return bool((ids[1:] == ids[:-1]).any())


def _append(con: duckdb.DuckDBPyConnection, source: Source, ingest_id: int,
            options: IngestOptions, now: str, account: IngestAccount,
            on_progress: Callable[[int, int], None] | None) -> _IdsSeen:
    """Step 1: validate each group of batches; append good rows, quarantine bad ones.

    Returns the IDs seen (every row's, bad rows' too: a superset of the appended ones).
    """
    ids = _IdsSeen()
    formats = list(DATE_FORMATS.values())
    sqls: dict[frozenset[str], str] = {}  # the statement for each set of typed columns
    typed_bad: list[int] = []  # lines of quarantined rows that arrived typed
    total = source.size()
    columns = ", ".join(INSERT_COLUMNS)
    canonical = ", ".join(c.name for c in STORED)
    valid = "(SELECT * FROM _b WHERE _problems = '')"
    insert_with_id = f"""
        INSERT INTO incidents ({columns})
        SELECT {canonical}, id, base_key, 1, false, is_index, label_source, _flags,
               {ingest_id}, _line
        FROM {{relation}} WHERE _problems = '' AND id IS NOT NULL"""
    # Most batches of a modern export have an ID on every row and no bad row: those go
    # straight into incidents (the bad rows, if any, are found by the count and staged
    # after). A batch with rows without ID is staged in _b first, to key them.
    detected = False
    for table in _prefetch(_grouped(source.ingest_batches(), options.statement_rows)):
        typed = typed_columns(table.schema)
        if not detected and "date" not in typed:  # the first dates tell their format
            detected = True
            account.date_format = detect_date_format(con, table, formats)
            if account.date_format:
                formats.remove(account.date_format)
                formats.insert(0, account.date_format)
        if typed not in sqls:
            sqls[typed] = stage_sql(formats, options.bounds, now, typed=typed)
        sql = sqls[typed]
        account.read += (rows := table.num_rows)
        ids.add(table.column("id"))
        if table.column("id").null_count == 0:
            done = int(run_on(con, table, insert_with_id.format(relation=f"({sql})"))[0][0])
            if done < rows:  # the rest once more, through _b
                run_on(con, table, f"CREATE OR REPLACE TEMP TABLE _b AS SELECT * FROM ({sql}) "
                                   "WHERE _problems <> '' OR id IS NULL")
        else:
            run_on(con, table, f"CREATE OR REPLACE TEMP TABLE _b AS {sql}")
            con.execute(insert_with_id.format(relation="_b"))
            done = sql_int(con, "SELECT count(*) FROM _b WHERE _problems = '' AND id IS NOT NULL")
        del table
        if done < rows:
            if typed:
                typed_bad += [line for (line,) in sql_rows(
                    con, "SELECT _line FROM _b WHERE _problems <> ''")]
            _append_staged(con, source.name, ingest_id, columns, canonical, valid)
        if on_progress:
            on_progress(source.position(), total)
    if typed_bad and (text := source.text_rows(typed_bad)) is not None:
        # the quarantine keeps a row's text as the file has it, not its parsed values
        run_on(con, pa.Table.from_batches([text]), f"""
            UPDATE quarantine SET raw = {raw_json_sql()} FROM _batch
            WHERE quarantine.ingest_id = {int(ingest_id)} AND quarantine.line = _batch._line""")
    rows = f"(SELECT * FROM incidents WHERE ingest_id = {int(ingest_id)})"
    add_counts(account.label_routes, sql_rows(con, f"SELECT label_source, count(*) FROM {rows} "
                                          "GROUP BY ALL ORDER BY 1"))
    add_counts(account.flags, sql_rows(con, f"SELECT f, count(*) FROM (SELECT unnest(flags) AS f "
                                   f"FROM {rows}) GROUP BY ALL ORDER BY 1"))
    return ids


def _append_staged(con: duckdb.DuckDBPyConnection, source: str, ingest_id: int,
                   columns: str, canonical: str, valid: str) -> None:
    """The rows of _b that are bad (to quarantine) or have no ID (keyed here)."""
    con.execute("""
        INSERT INTO quarantine
        SELECT ?, ?, _line, nullif(split_part(split_part(_problems, ';', 1), ':', 1), ''),
               split_part(split_part(_problems, ';', 1), ':', 2), _problems, _raw
        FROM _b WHERE _problems <> ''""", [ingest_id, source])
    # Rows without ID: by their derived key and their rank among this file's rows
    # with the same key material (counted across batches in _seen).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _rank AS
        SELECT b._line, coalesce(s.n, 0) + row_number() OVER (
                   PARTITION BY b.base_key ORDER BY b._line) AS ordinal
        FROM {valid} AS b LEFT JOIN _seen AS s USING (base_key)
        WHERE b.id IS NULL""")
    con.execute(f"""
        INSERT INTO incidents ({columns})
        SELECT {canonical}, {derived_key('base_key', 'r.ordinal')}, base_key, r.ordinal,
               true, is_index, label_source, _flags, {ingest_id}, _line
        FROM {valid} AS b JOIN _rank AS r USING (_line)""")
    con.execute(f"""
        INSERT INTO _seen SELECT base_key, count(*) FROM {valid}
        WHERE id IS NULL GROUP BY base_key
        ON CONFLICT (base_key) DO UPDATE SET n = n + excluded.n""")
