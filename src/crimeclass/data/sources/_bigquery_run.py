"""Runs of the BigQuery source: ``ingest bigquery``, incremental and resumable.

A run reads one read session (:class:`BigQuerySource`) and stores its rows in
parts of about ``commit_rows`` rows, each part in its own transaction, with where
the run stands, in the store's ``sync_state`` table (the row of the run's source
and filter):

* ``run_session``: the read session (its protobuf, base64), ``run_offsets``: the
  rows of each stream stored, and the streams read to their end (JSON);
* ``run_high``: the newest ``updated_on`` stored by the run;
* ``cursor``: once a run is complete, the newest ``updated_on`` it stored.

The next run asks BigQuery only for the rows updated after the cursor (pushed
down with the filter as the session's row restriction): a second run reads only
what changed. A run stopped at any point (an error, a killed process) is resumed
by the next one: it reads each stream of the same session from the offset
stored, so nothing is lost and nothing read twice. If the session has expired
(BigQuery keeps one 6 hours), the resumed run opens a new one over the same rows
(those updated after the cursor of the last complete run): the rows already
stored come again and are upserted unchanged (rows are upserted by ID, the newest
``updated_on`` winning), and the rest are stored. This is the portal's
``sync`` (:mod:`crimeclass.data.sources._sync`) with the session's stream
offsets for its key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from crimeclass.data._account import IngestAccount, total
from crimeclass.data._errors import SourceError
from crimeclass.data._rowfilter import RowFilter
from crimeclass.data.sources._base import Source
from crimeclass.data.sources._bigquery import BigQuerySource
from crimeclass.data.sources._sync import _in_transaction

if TYPE_CHECKING:
    import duckdb

    from crimeclass.data._ingest import IngestOptions
    from crimeclass.data._store import Store

__all__ = ["BigQueryRun", "ingest_bigquery"]

#: Rows stored per transaction: one SQL statement of the ingest (its ``statement_rows``).
COMMIT_ROWS = 500_000
_GOOGLE = "bigquerystorage.googleapis.com"


@dataclass
class BigQueryRun:
    """What one ``ingest bigquery`` did.

    Attributes
    ----------
    url, scope : str
        The run's row of ``sync_state``: the endpoint and table, and the filter.
    where : str
        The session's row restriction.
    streams : int
        Streams of the session.
    resumed : bool
        Whether an interrupted run was resumed; ``new_session``: whether its session
        had expired, so that a new one read its rows again.
    cursor : datetime or None
        The newest ``updated_on`` stored: where the next run starts.
    accounts : list of IngestAccount
        One per part stored by this call.
    """

    url: str
    scope: str
    where: str = ""
    streams: int = 0
    resumed: bool = False
    new_session: bool = False
    cursor: datetime | None = None
    accounts: list[IngestAccount] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The summed account (the keys of a file ingest's) and the run's facts."""
        out = total(self.accounts)
        out.update(source=self.url, scope=self.scope, where=self.where, streams=self.streams,
                   parts=len(self.accounts), resumed=self.resumed,
                   new_session=self.new_session,
                   cursor=self.cursor.isoformat() if self.cursor else None)
        return out


def ingest_bigquery(store: Store, row_filter: RowFilter | None = None, *,
                    options: IngestOptions | None = None, restart: bool = False,
                    commit_rows: int = COMMIT_ROWS,
                    on_progress: Callable[[int, int], None] | None = None,
                    **source: Any) -> BigQueryRun:
    """Read and upsert the rows of ``row_filter`` updated since the last run, in parts.

    Parameters
    ----------
    store : Store
        The store to update.
    row_filter : RowFilter, optional
        Rows to read (all by default); the cursor of the last complete run with the
        same filter raises its ``updated_since``.
    options : IngestOptions, optional
        As for a file ingest.
    restart : bool
        Drop an interrupted run, and the cursor: read every row of the filter.
    commit_rows : int
        Rows stored per transaction (at least; a part ends with a batch).
    on_progress : callable, optional
        ``on_progress(rows_done, rows_in_session)`` after each part.
    **source
        :class:`BigQuerySource`'s parameters (``project``, ``table``, ``streams``,
        ``endpoint``, ``plaintext``, ``client``).
    """
    row_filter = row_filter or RowFilter()
    table = source.get("table") or BigQuerySource.table
    run = BigQueryRun(f"bigquery://{source.get('endpoint') or _GOOGLE}/{table}",
                      f"ingest {row_filter.describe()}")
    con = store.con
    _ensure_columns(con)
    if restart:
        _in_transaction(con, lambda: con.execute(
            "DELETE FROM sync_state WHERE url = ? AND scope = ?", [run.url, run.scope]))
    state = _load(con, run.url, run.scope)
    low = state.cursor if state else None
    reader = _open(store, run, state, row_filter, low, source)
    while True:
        try:
            _store_parts(store, reader, run, options, commit_rows, on_progress)
            break
        except SourceError:
            if not (run.resumed and not run.new_session and reader.session_gone):
                raise
            run.new_session = True  # expired meanwhile: read the run's rows again
            reader = _new_session(store, run, row_filter, low, source)
    high = max((t for t in (low, state.high if state else None, reader.high) if t),
               default=None)
    run.cursor = high
    _in_transaction(con, lambda: _finish(con, run.url, run.scope, high))
    # the parts were checkpointed as they were stored; this writes the cursor, and skips
    # the vacuum as their checkpoints did when no part deleted a row
    store.checkpoint(vacuum=not all(a.appended_only for a in run.accounts))
    return run


# ------------------------------------------------------------------ state


@dataclass
class _State:
    cursor: datetime | None
    where: str | None
    high: datetime | None
    session: str | None
    offsets: str | None


def _ensure_columns(con: duckdb.DuckDBPyConnection) -> None:
    """``sync_state``'s columns of a BigQuery run, for a store created before them."""
    for name in ("run_session", "run_offsets"):
        con.execute(f"ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS {name} VARCHAR")


def _load(con: duckdb.DuckDBPyConnection, url: str, scope: str) -> _State | None:
    rows = con.execute("SELECT cursor, run_where, run_high, run_session, run_offsets "
                       "FROM sync_state WHERE url = ? AND scope = ?", [url, scope]).fetchall()
    return _State(*rows[0]) if rows else None


def _begin(con: duckdb.DuckDBPyConnection, run: BigQueryRun, session: str) -> None:
    """Record a new run's session (its own small transaction)."""
    _in_transaction(con, lambda: con.execute("""
        INSERT INTO sync_state (url, scope, run_where, run_high, run_rows, next_offset, pages,
                                run_session, run_offsets, run_started, updated_at)
        VALUES (?, ?, ?, NULL, 0, 0, 0, ?, '{}', now()::TIMESTAMP, now()::TIMESTAMP)
        ON CONFLICT (url, scope) DO UPDATE SET run_where = excluded.run_where,
            run_rows = 0, next_offset = 0, pages = 0,
            run_session = excluded.run_session, run_offsets = '{}',
            run_started = excluded.run_started, updated_at = excluded.updated_at
        """, [run.url, run.scope, run.where, session]))


def _advance(con: duckdb.DuckDBPyConnection, _account: IngestAccount, *, url: str,
             scope: str, reader: BigQuerySource) -> None:
    """Move the run past a part: the rows of each stream stored, the streams read to their
    end, the newest ``updated_on`` (inside the part's transaction)."""
    offsets = json.dumps({"rows": reader.offsets, "finished": sorted(reader.finished)})
    con.execute("""
        UPDATE sync_state SET next_offset = ?, run_offsets = ?, pages = pages + 1,
            run_high = greatest(run_high, ?::TIMESTAMP), updated_at = now()::TIMESTAMP
        WHERE url = ? AND scope = ?""", [reader.cursor.rows, offsets, reader.high, url, scope])


def _finish(con: duckdb.DuckDBPyConnection, url: str, scope: str,
            cursor: datetime | None) -> None:
    con.execute("""
        UPDATE sync_state SET cursor = ?, run_where = NULL, run_high = NULL, run_rows = NULL,
            next_offset = NULL, pages = NULL, run_session = NULL, run_offsets = NULL,
            run_started = NULL, updated_at = now()::TIMESTAMP
        WHERE url = ? AND scope = ?""", [cursor, url, scope])


# ------------------------------------------------------------------ reading


def _open(store: Store, run: BigQueryRun, state: _State | None, row_filter: RowFilter,
          low: datetime | None, source: dict[str, Any]) -> BigQuerySource:
    """The source of the run: the interrupted run's session, resumed, or a new one."""
    if state and state.session and state.where is not None:
        from google.cloud.bigquery_storage_v1 import types

        session = types.ReadSession.deserialize(base64.b64decode(state.session))
        offsets = json.loads(state.offsets or "{}")
        run.resumed, run.where = True, state.where
        if not _expired(session):
            reader = BigQuerySource(row_filter=_window(row_filter, low), session=session,
                                    offsets=dict(offsets.get("rows", {})),
                                    finished=set(offsets.get("finished", [])), **source)
            run.streams = len(reader.session.streams)
            return reader
        run.new_session = True
    return _new_session(store, run, row_filter, low, source)


def _new_session(store: Store, run: BigQueryRun, row_filter: RowFilter, low: datetime | None,
                 source: dict[str, Any]) -> BigQuerySource:
    """A new session over the rows updated after ``low`` (the last complete run's cursor),
    recorded as the run's."""
    from google.cloud.bigquery_storage_v1 import types

    reader = BigQuerySource(row_filter=_window(row_filter, low), **source)
    run.where, run.streams = reader.row_filter.where_bigquery(), len(reader.session.streams)
    session = base64.b64encode(types.ReadSession.serialize(reader.session)).decode()
    _begin(store.con, run, session)
    return reader


def _window(row_filter: RowFilter, low: datetime | None) -> RowFilter:
    """``row_filter`` with its ``updated_since`` raised to ``low``."""
    since = row_filter.updated_since
    if low is not None and (since is None or low > since):
        return replace(row_filter, updated_since=low)
    return row_filter


def _expired(session: Any) -> bool:
    expires = session.expire_time
    if expires is None or not expires.timestamp():
        return False  # a server that sets no expiry
    return bool(expires <= datetime.now(UTC))


class _Part(Source):
    """A part of a run: ``first``, then the source's next batches up to ``rows`` rows."""

    def __init__(self, source: BigQuerySource, first: pa.RecordBatch,
                 batches: Iterator[pa.RecordBatch], rows: int, number: int) -> None:
        self.source, self._first, self._batches = source, first, batches
        self.rows, self.number = rows, number
        self.header, self.format = source.header, source.format
        self.cursor = source.cursor

    @property
    def name(self) -> str:
        return f"{self.source.name} part {self.number}"

    def size(self) -> int:
        return self.source.size()

    def position(self) -> int:
        return self.source.cursor.rows

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield self._first
        n = self._first.num_rows
        while n < self.rows and (batch := next(self._batches, None)) is not None:
            n += batch.num_rows
            yield batch


def _store_parts(store: Store, reader: BigQuerySource, run: BigQueryRun,
                 options: IngestOptions | None, commit_rows: int,
                 on_progress: Callable[[int, int], None] | None) -> None:
    """Store the reader's rows a part at a time, each with where the run then stands."""
    batches = reader.ingest_batches()
    try:
        while (first := next(batches, None)) is not None:
            part = _Part(reader, first, batches, commit_rows, len(run.accounts) + 1)
            run.accounts.append(store.ingest(part, options, before_commit=partial(
                _advance, url=run.url, scope=run.scope, reader=reader)))
            if on_progress:
                on_progress(reader.cursor.rows, max(reader.size(), reader.cursor.rows))
    finally:
        batches.close()  # type: ignore[attr-defined]
