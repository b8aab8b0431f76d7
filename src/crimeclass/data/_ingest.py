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

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from crimeclass.data._account import IngestAccount
from crimeclass.data._labels import iucr_table, label_sql, lookup_sql
from crimeclass.data._reasons import Reason
from crimeclass.data._schema import COLUMN_NAMES, COLUMNS, DATE_FORMATS
from crimeclass.data._sources import Source
from crimeclass.data._validate import Bounds, raw_json_sql, validation_sql

__all__ = ["IngestOptions", "ingest", "stage_sql"]

STORED = [c for c in COLUMNS if c.kind != "derived"]  # location is computed
CONTENT = [c.name for c in STORED if c.name != "id"]
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


def hash62(expr: str) -> str:
    """A stable 62-bit hash (from MD5, the same on every DuckDB version), as BIGINT."""
    return f"CAST(md5_number({expr}) >> 66 AS BIGINT)"


#: What identifies an incident that has no ID (docs/data.md).
BASE_TEXT = (
    "concat_ws('|', coalesce(upper(case_number), ''), strftime(date, '%Y-%m-%d %H:%M:%S'), "
    "coalesce(iucr, upper(coalesce(primary_type, '')) || '/' || upper(coalesce(description, ''))), "
    "coalesce(upper(block), ''))"
)

def derived_key(base_key: str, ordinal: str) -> str:
    """SQL for the key of the ``ordinal``-th incident without ID of a base key (< 0)."""
    return f"(-{hash62(f'{base_key}::VARCHAR || chr(35) || {ordinal}::VARCHAR')} - 1)"


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


def _newer(n: str, o: str) -> str:
    """CASE: 'update', 'stale' or 'unchanged' for incoming ``n`` against stored ``o``."""
    return f"""CASE
        WHEN {n}.updated_on > {o}.updated_on
          OR ({o}.updated_on IS NULL AND {n}.updated_on IS NOT NULL) THEN 'update'
        WHEN {n}.updated_on < {o}.updated_on
          OR ({n}.updated_on IS NULL AND {o}.updated_on IS NOT NULL) THEN 'stale'
        WHEN {" OR ".join(f"{n}.{c} IS DISTINCT FROM {o}.{c}" for c in CONTENT)}
            THEN 'update'
        ELSE 'unchanged' END"""


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


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
          ) -> list[tuple[Any, ...]]:
    return con.execute(sql, params or []).fetchall()


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    return int(_rows(con, sql, params)[0][0] or 0)


def _add(counter: dict[str, int], rows: list[tuple[Any, ...]]) -> None:
    for key, n in rows:
        counter[str(key)] = counter.get(str(key), 0) + int(n)


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


def ingest(con: duckdb.DuckDBPyConnection, source: Source, ingest_id: int,
           options: IngestOptions, account: IngestAccount,
           on_progress: Callable[[int, int], None] | None = None) -> None:
    """Load ``source`` into the store behind ``con`` (inside the caller's transaction)."""
    now = f"TIMESTAMP '{options.now}'" if options.now else "now()::TIMESTAMP"
    con.execute("DELETE FROM quarantine WHERE source = ?", [source.name])
    con.execute("CREATE OR REPLACE TEMP TABLE _seen (base_key BIGINT PRIMARY KEY, n BIGINT)")
    codes = iucr_table()
    for name, sql in lookup_sql("_batch").items():
        run_on(con, codes, f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    try:
        ids = _append(con, source, ingest_id, options, now, account, on_progress)
    finally:
        for t in ("_b", "_seen", "_rank", *lookup_sql()):
            con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    _reconcile(con, source.name, ingest_id, account, maybe_duplicates=ids.maybe_duplicates())


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
            done = _one(con, "SELECT count(*) FROM _b WHERE _problems = '' AND id IS NOT NULL")
        del table
        if done < rows:
            if typed:
                typed_bad += [line for (line,) in _rows(
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
    _add(account.label_routes, _rows(con, f"SELECT label_source, count(*) FROM {rows} "
                                          "GROUP BY ALL ORDER BY 1"))
    _add(account.flags, _rows(con, f"SELECT f, count(*) FROM (SELECT unnest(flags) AS f "
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


def _reconcile(con: duckdb.DuckDBPyConnection, source: str, ingest_id: int,
               account: IngestAccount, *, maybe_duplicates: bool = True) -> None:
    """Step 2: settle the new rows against each other and against the stored ones.

    ``maybe_duplicates`` False: the file repeats no ID (see :class:`_IdsSeen`).
    """
    cur = int(ingest_id)
    new = f"(SELECT * FROM incidents WHERE ingest_id = {cur})"

    if maybe_duplicates:
        _drop_duplicate_ids(con, source, cur)
    if _one(con, f"SELECT count(*) FROM (SELECT 1 FROM incidents WHERE ingest_id <> {cur} "
                 "LIMIT 1)"):
        counts, upgraded = _reconcile_stored(con, cur)
    else:  # the store held nothing before: every new row is new
        counts, upgraded = {}, 0

    problems = _rows(con, f"SELECT reason, count(*) FROM quarantine WHERE ingest_id = {cur} "
                          "GROUP BY ALL ORDER BY 2 DESC")
    account.quarantine_reasons = {str(r): int(n) for r, n in problems}
    account.quarantined = sum(account.quarantine_reasons.values())
    account.derived_keys = _one(con, f"SELECT count(*) FROM {new} WHERE key_derived")
    account.updated = counts.get("update", 0) + upgraded
    account.stale = counts.get("stale", 0)
    account.matched_by_derived_key = counts.get("matched", 0)
    account.unchanged = counts.get("unchanged", 0) + account.stale + account.matched_by_derived_key
    stored_now = _one(con, f"SELECT count(*) FROM {new}")
    account.inserted = stored_now - account.updated


def _drop_duplicate_ids(con: duckdb.DuckDBPyConnection, source: str, cur: int) -> None:
    """Rows of the file that repeat an ID: the newest (then the last line) stays, the
    others are quarantined."""
    new = f"(SELECT * FROM incidents WHERE ingest_id = {cur})"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dup AS
        SELECT key, source_line, first(source_line ORDER BY updated_on DESC NULLS LAST,
                                       source_line DESC) OVER (PARTITION BY key) AS winner
        FROM {new} WHERE NOT key_derived AND key IN (
            SELECT key FROM {new} WHERE NOT key_derived GROUP BY key HAVING count(*) > 1)""")
    con.execute(f"""
        INSERT INTO quarantine
        SELECT {cur}, ?, i.source_line, 'ID', '{Reason.DUPLICATE_ID}',
               'ID:{Reason.DUPLICATE_ID}',
               to_json({{'superseded_by_line': d.winner, 'row': {{{", ".join(
                   f"'{c.portal}': i.{c.name}" for c in STORED)}}}}})
        FROM incidents AS i JOIN _dup AS d USING (key, source_line)
        WHERE i.ingest_id = {cur} AND d.source_line <> d.winner""", [source])
    con.execute(f"""
        DELETE FROM incidents USING _dup
        WHERE incidents.ingest_id = {cur} AND incidents.key = _dup.key
          AND incidents.source_line = _dup.source_line AND _dup.source_line <> _dup.winner""")
    con.execute("DROP TABLE IF EXISTS temp._dup")


def _reconcile_stored(con: duckdb.DuckDBPyConnection, cur: int) -> tuple[dict[str, int], int]:
    """The new rows against the stored ones: the counts of each action, and the stored
    incidents without ID that new rows with an ID took over."""
    new = f"(SELECT * FROM incidents WHERE ingest_id = {cur})"
    old = f"(SELECT * FROM incidents WHERE ingest_id <> {cur})"
    counts: dict[str, int] = {}
    # An ID already stored: the newer row stays. Which IDs are stored already is
    # found on the key column alone; whole rows are compared only for those.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _known AS
        SELECT key FROM {new} WHERE NOT key_derived
        INTERSECT SELECT key FROM {old} WHERE NOT key_derived""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _act AS
        SELECT n.key, {_newer('n', 'o')} AS action
        FROM {new} AS n JOIN {old} AS o USING (key)
        WHERE n.key IN (SELECT key FROM _known) AND o.key IN (SELECT key FROM _known)
          AND NOT n.key_derived""" if _one(con, "SELECT count(*) FROM _known") else
                "CREATE OR REPLACE TEMP TABLE _act (key BIGINT, action VARCHAR)")
    _add(counts, _rows(con, "SELECT action, count(*) FROM _act GROUP BY ALL"))
    con.execute(f"DELETE FROM incidents WHERE ingest_id <> {cur} AND key IN "
                "(SELECT key FROM _act WHERE action = 'update')")
    con.execute(f"DELETE FROM incidents WHERE ingest_id = {cur} AND key IN "
                "(SELECT key FROM _act WHERE action <> 'update')")

    # A new ID that is a stored incident without ID (same derived key material):
    # it takes that incident over. Pair the k-th of each base key with the k-th.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _up AS
        WITH cand AS (
            SELECT key, base_key, row_number() OVER (PARTITION BY base_key ORDER BY key) AS rk
            FROM {new} WHERE NOT key_derived AND key NOT IN (SELECT key FROM _act)
              AND base_key IN (SELECT base_key FROM {old} WHERE key_derived)
        ), st AS (
            SELECT key, base_key, row_number() OVER (PARTITION BY base_key
                                                     ORDER BY ordinal, key) AS rk
            FROM {old} WHERE key_derived AND base_key IN (SELECT base_key FROM cand)
        )
        SELECT cand.key AS new_key, st.key AS old_key FROM cand JOIN st USING (base_key, rk)""")
    upgraded = _one(con, "SELECT count(*) FROM _up")
    con.execute(f"DELETE FROM incidents WHERE ingest_id <> {cur} AND key IN "
                "(SELECT old_key FROM _up)")

    # New rows without ID: the k-th of a base key pairs with the k-th stored
    # incident of that base key (rows of this file excluded).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pair AS
        WITH st AS (
            SELECT *, row_number() OVER (PARTITION BY base_key
                                      ORDER BY ordinal, key_derived, key) AS rk
            FROM {old} WHERE base_key IN (SELECT base_key FROM {new} WHERE key_derived)
        )
        SELECT n.key AS new_key, o.key AS old_key, o.ordinal AS old_ordinal,
               CASE WHEN NOT o.key_derived THEN 'matched' ELSE {_newer('n', 'o')} END AS action
        FROM {new} AS n JOIN st AS o ON o.base_key = n.base_key AND o.rk = n.ordinal
        WHERE n.key_derived""")
    _add(counts, _rows(con, "SELECT action, count(*) FROM _pair GROUP BY ALL"))
    con.execute(f"DELETE FROM incidents WHERE ingest_id <> {cur} AND key IN "
                "(SELECT old_key FROM _pair WHERE action = 'update')")
    con.execute(f"DELETE FROM incidents WHERE ingest_id = {cur} AND key IN "
                "(SELECT new_key FROM _pair WHERE action <> 'update')")
    # an updated incident keeps its key; so does a stored one whose key a new row took
    con.execute(f"""
        UPDATE incidents SET key = p.old_key, ordinal = p.old_ordinal
        FROM _pair AS p WHERE incidents.ingest_id = {cur} AND incidents.key = p.new_key
          AND p.action = 'update'""")
    _rekey_collisions(con, cur)
    for t in ("_known", "_act", "_up", "_pair"):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    return counts, upgraded


def _rekey_collisions(con: duckdb.DuckDBPyConnection, cur: int) -> None:
    """Give a new row without ID a fresh ordinal if its key is taken by a stored row.

    Happens only when stored incidents of a base key were taken over (by rows with
    an ID) so that ordinals have gaps; the new row moves past the largest ordinal.
    """
    ordinal = "m.top + row_number() OVER (PARTITION BY n.base_key ORDER BY n.key)"
    while True:
        clash = _one(con, f"""
            SELECT count(*) FROM incidents AS n JOIN incidents AS o USING (key)
            WHERE n.ingest_id = {cur} AND o.ingest_id <> {cur}""")
        if not clash:
            return
        con.execute(f"""
            UPDATE incidents SET ordinal = f.ordinal, key = f.key
            FROM (
                SELECT n.key AS old, n.base_key, {ordinal} AS ordinal,
                       {derived_key('n.base_key', ordinal)} AS key
                FROM incidents AS n JOIN incidents AS o USING (key)
                JOIN (SELECT base_key, max(ordinal) AS top FROM incidents GROUP BY ALL) AS m
                  ON m.base_key = n.base_key
                WHERE n.ingest_id = {cur} AND o.ingest_id <> {cur}
            ) AS f
            WHERE incidents.ingest_id = {cur} AND incidents.key = f.old""")
