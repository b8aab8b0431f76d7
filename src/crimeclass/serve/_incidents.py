"""Incidents of a request, validated by the data layer exactly as ingest validates a file.

A request's incidents (JSON records with the portal's web API fields, or the raw rows
of an uploaded CSV) become a raw batch of the data layer (:func:`soda_batch` for JSON,
a :class:`CsvSource` for a CSV); the data layer's own statement (:func:`stage_sql`:
validation, labels, key material) types them. Good rows get their key as ingest gives
it (the ID, or a key derived from the row's content and its rank among the request's
rows with the same content). Bad rows get their fields and reasons, as the quarantine
says them.

The fields that define the label (``iucr``, ``primary_type``, ``description``,
``fbi_code``) and ``arrest`` (known only after the fact) are dropped before anything
reads them: a score never depends on them (:data:`IGNORED_FIELDS`). An incident of a
request is an incident of unknown label, also as history of the request's later ones.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimeclass.data import COLUMNS, Bounds, Reason
from crimeclass.data._ingest import stage_sql
from crimeclass.data._labels import iucr_table, lookup_sql
from crimeclass.data._reconcile import STORED, derived_key
from crimeclass.data._schema import DATE_FORMATS, RAW_SCHEMA
from crimeclass.data.sources import soda_batch
from crimeclass.engines import prepared

__all__ = ["IGNORED_FIELDS", "Rejected", "Validated", "blank_ignored", "close_connections",
           "connection", "raw_records", "validate_batch", "validate_batches",
           "validate_records", "validate_requests"]

#: Fields accepted in a request and never read: the label's and the arrest.
IGNORED_FIELDS = ("iucr", "primary_type", "description", "fbi_code", "arrest")


_NAMES = {c.portal: c.name for c in COLUMNS} | {c.name: c.name for c in COLUMNS}

_idle: queue.SimpleQueue[Any] = queue.SimpleQueue()  # connections not in use
_all: list[Any] = []
_all_lock = threading.Lock()


def _new_connection() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET threads = 1")  # one request's statements are small
    _batch = iucr_table()  # noqa: F841 - read by DuckDB's replacement scan
    for name, sql in lookup_sql("_batch").items():
        con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
    # the statement parsed once per connection: a view over the relation _batch, which
    # each request registers anew (its raw text, RAW_SCHEMA)
    con.register("_batch", RAW_SCHEMA.empty_table())
    con.execute(f"CREATE TEMP VIEW _validated AS {_statement()}")
    con.unregister("_batch")
    with _all_lock:
        _all.append(con)
    return con


@contextlib.contextmanager
def connection() -> Iterator[Any]:
    """A DuckDB connection (in memory) of the pool, with the label lookups ingest uses,
    for the calling thread alone while the block runs."""
    try:
        con = _idle.get_nowait()
    except queue.Empty:
        con = _new_connection()
    try:
        yield con
    finally:
        _idle.put(con)


def close_connections() -> None:
    """Close every connection of the pool (when the service stops)."""
    with _all_lock:
        while not _idle.empty():
            _idle.get_nowait()
        for con in _all:
            con.close()
        _all.clear()


@dataclass
class Rejected:
    """An incident that failed validation: its position, ID and problems."""

    index: int
    id: Any
    problems: list[dict[str, str]]


@dataclass
class Validated:
    """The request's good rows (the store's columns, with ``key``), and the bad ones."""

    rows: pa.Table
    positions: list[int]  # each good row's position in the request
    rejected: list[Rejected] = field(default_factory=list)


def _problems(text: str) -> list[dict[str, str]]:
    out = []
    for part in text.split(";"):
        name, _, reason = part.partition(":")
        out.append({"field": _NAMES.get(name, name) or "record", "reason": reason})
    return out


def blank_ignored(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The raw batch with the label's fields and the arrest as null text."""
    arrays = list(batch.columns)
    for name in IGNORED_FIELDS:
        i = batch.schema.get_field_index(name)
        arrays[i] = pa.nulls(batch.num_rows, batch.schema.field(i).type)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


_SQL: dict[str, str] = {}

#: ``_line`` of row ``i`` of request ``g`` in a validation of several: ``g * GROUP + i``.
GROUP = 1 << 32


def _statement() -> str:
    """The data layer's statement over ``_batch``, with each good row's key."""
    if "sql" not in _SQL:
        staged = stage_sql(list(DATE_FORMATS.values()), Bounds(), "now()::TIMESTAMP")
        canonical = ", ".join(c.name for c in STORED)
        # rows of several requests are validated together: _line is the request's number
        # times GROUP plus the row's position, and each request ranks its own rows
        ordinal = f"row_number() OVER (PARTITION BY base_key, _line // {GROUP} ORDER BY _line)"
        _SQL["sql"] = f"""
            SELECT {canonical}, is_index, label_source, _line, _problems,
                   CASE WHEN _problems <> '' THEN NULL WHEN id IS NOT NULL THEN id
                        ELSE {derived_key('base_key', ordinal)} END AS key
            FROM ({staged}) ORDER BY _line"""
    return _SQL["sql"]


def validate_batch(batch: pa.RecordBatch | pa.Table) -> Validated:
    """Validate a raw batch (``_line``: each row's position) as ingest does.

    A second row with the ID of an earlier one is rejected (``duplicate_id``).
    """
    return validate_batches([batch])[0]


def _split(out: pa.Table, n: int) -> list[Validated]:
    """The validated rows of ``n`` requests, each its own :class:`Validated`."""
    lines = out.column("_line").to_numpy()
    groups, positions = lines // GROUP, (lines % GROUP).tolist()
    problems = out.column("_problems").to_pylist()
    ids = out.column("id").to_pylist()
    good: list[list[int]] = [[] for _ in range(n)]
    done = [Validated(rows=out.slice(0, 0), positions=[]) for _ in range(n)]
    seen: list[set[Any]] = [set() for _ in range(n)]
    for i, g in enumerate(groups.tolist()):
        v, text, id_ = done[g], problems[i], ids[i]
        if text:
            v.rejected.append(Rejected(positions[i], id_, _problems(text)))
        elif id_ is not None and id_ in seen[g]:
            v.rejected.append(Rejected(positions[i], id_, [
                {"field": "id", "reason": str(Reason.DUPLICATE_ID)}]))
        else:
            seen[g].add(id_)
            good[g].append(i)
            v.positions.append(positions[i])
    kept = out.drop_columns(["_line", "_problems"])
    for v, rows in zip(done, good, strict=True):
        if rows and rows[-1] - rows[0] + 1 == len(rows):  # one stretch: a view, no copy
            v.rows = kept.slice(rows[0], len(rows))
        else:
            v.rows = kept.take(pa.array(rows, pa.int64()))
    return done


def validate_batches(batches: list[pa.RecordBatch | pa.Table]) -> list[Validated]:
    """Validate the raw batches of several requests in one statement, each on its own."""
    tables = []
    for g, b in enumerate(batches):
        t = pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b
        i = t.schema.get_field_index("_line")
        tables.append(t.set_column(i, "_line", pc.add(
            t.column(i).cast(pa.int64()), pa.scalar(g * GROUP, pa.int64()))))
    return _validated(pa.concat_tables(tables), len(batches))


def validate_requests(requests: list[list[dict[str, Any]]]) -> list[Validated]:
    """Validate the JSON records of several requests (as :func:`validate_records` each),
    made one raw batch and validated in one statement, each request on its own."""
    batch = raw_records([r for records in requests for r in records])
    lines = np.concatenate([g * GROUP + np.arange(len(records), dtype=np.int64)
                            for g, records in enumerate(requests)])
    i = batch.schema.get_field_index("_line")
    table = pa.Table.from_batches([batch])
    return _validated(table.set_column(i, "_line", pa.array(lines, pa.int64())),
                      len(requests))


def _validated(table: pa.Table, n: int) -> list[Validated]:
    """The data layer's statement over the raw rows of ``n`` requests (``_line``: the
    request's number times GROUP plus the row's position)."""
    with connection() as con:
        con.register("_batch", table)
        try:
            out = prepared(con, "SELECT * FROM _validated").to_arrow_table()
        finally:
            con.unregister("_batch")
    return _split(out, n)


def raw_records(records: Iterable[dict[str, Any]]) -> pa.RecordBatch:
    """JSON records as the raw batch validation reads (the ignored fields dropped)."""
    records = [{k: v for k, v in r.items() if k not in IGNORED_FIELDS} for r in records]
    # a score needs neither an ID nor an updated_on: an incident not yet recorded has neither
    return blank_ignored(soda_batch(records, first_offset=0, page=0, required=()))


def validate_records(records: Iterable[dict[str, Any]]) -> Validated:
    """Validate JSON records (the portal's web API fields) as ingest does."""
    return validate_batch(raw_records(records))
