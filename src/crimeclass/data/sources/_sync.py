"""Runs of the portal source: ``ingest portal`` and incremental ``sync``, resumable.

The portal serves *Crimes - 2001 to Present* (dataset ``ijzp-q8t2``) as JSON
over SODA. A run reads one window page by page (:class:`PortalSource`, in
``:id`` order), and every page goes through the same validation, quarantine,
account and store as a file, in its own transaction.

How a run stays exact when it is interrupted, or the portal changes meanwhile
-----------------------------------------------------------------------------
Before the first page, the run fixes its window: it asks the server for
``max(updated_on)`` and ``count(*)`` of its filter, and from then on asks only
for rows with ``updated_on`` at most that maximum. A row the portal updates
while the run goes on leaves the window, and comes with the next sync; paging
by key, its leaving moves no other row. The window, the rows read and the last
``:id`` read (the source's cursor) are kept in the store's ``sync_state``
table, written in the same transaction as each page's rows: a run stopped at
any point (an error after the retries, a killed process) resumes after the
last page stored, with nothing lost and nothing read twice. This is dlt's
``Incremental`` idea: a cursor (``updated_on``) with the primary key to upsert by.

``crimeclass sync`` asks for the rows updated after its cursor: the window's
maximum of its last completed run, or, before the first, the newest
``updated_on`` in the store. The portal publishes no deletions: a row deleted
there stays in the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from crimeclass.data._account import IngestAccount, total
from crimeclass.data._rowfilter import RowFilter, soda_timestamp
from crimeclass.data.sources._base import BatchSource, Cursor
from crimeclass.data.sources._portal import PortalSource, and_
from crimeclass.data.sources._soda import Portal, SodaClient, _short

if TYPE_CHECKING:
    import duckdb

    from crimeclass.data._ingest import IngestOptions
    from crimeclass.data._store import Store

__all__ = ["PortalRun", "ingest_portal", "sync_portal"]

#: The count query that fixes a run's window.
STATS_SELECT = "max(updated_on) AS high, count(*) AS n"


@dataclass
class PortalRun:
    """What one ``ingest portal`` or ``sync`` did.

    Attributes
    ----------
    resource : str
        The SODA endpoint.
    scope : str
        ``"sync"``, or ``"ingest <filter>"``.
    where : str
        The run's ``$where`` (its window).
    window_rows : int
        Rows in the window when the run began.
    resumed_at : int or None
        Rows of the window already stored when an interrupted run was resumed.
    cursor : datetime or None
        The newest ``updated_on`` of the window: where the next sync starts.
    accounts : list of IngestAccount
        One per page stored by this call.
    requests, retries : int
        HTTP requests made, and how many of them were retries.
    """

    resource: str
    scope: str
    where: str = ""
    window_rows: int = 0
    resumed_at: int | None = None
    cursor: datetime | None = None
    accounts: list[IngestAccount] = field(default_factory=list)
    requests: int = 0
    retries: int = 0

    def summary(self) -> dict[str, Any]:
        """The summed account (the keys of a file ingest's) and the run's facts."""
        out = total(self.accounts)
        out.update(source=self.resource, scope=self.scope, where=self.where,
                   window_rows=self.window_rows, pages=len(self.accounts),
                   resumed_at=self.resumed_at,
                   cursor=self.cursor.isoformat() if self.cursor else None,
                   requests=self.requests, retries=self.retries)
        return out


def sync_portal(store: Store, portal: Portal, *, options: IngestOptions | None = None,
                restart: bool = False,
                on_progress: Callable[[int, int], None] | None = None) -> PortalRun:
    """Fetch and upsert the rows updated since the last sync (or the newest stored).

    Parameters
    ----------
    store : Store
        The store to update.
    portal : Portal
        The endpoint and how to read it.
    options : IngestOptions, optional
        As for a file ingest.
    restart : bool
        Drop an interrupted run instead of resuming it.
    on_progress : callable, optional
        ``on_progress(rows_done, rows_in_window)`` after each page.

    Returns
    -------
    PortalRun
        The accounts of the pages stored, and the new cursor.
    """
    return _run(store, portal, "sync", None, options, restart, on_progress)


def ingest_portal(store: Store, portal: Portal, row_filter: RowFilter | None = None, *,
                  options: IngestOptions | None = None, restart: bool = False,
                  on_progress: Callable[[int, int], None] | None = None) -> PortalRun:
    """Fetch and upsert the rows of ``row_filter`` (all rows by default).

    Run again with the same filter after an interruption, it resumes where it
    stopped (``restart=True`` starts afresh). See :func:`sync_portal`.
    """
    row_filter = row_filter or RowFilter()
    return _run(store, portal, f"ingest {row_filter.describe()}", row_filter, options,
                restart, on_progress)


# ------------------------------------------------------------------ state


@dataclass
class _State:
    cursor: datetime | None
    where: str | None
    high: datetime | None
    rows: int
    offset: int
    pages: int
    key: str | None

    @property
    def resumable(self) -> bool:
        """A run in progress that this version can resume (one begun by a version that
        paged by offset has no key to resume from, unless it stored nothing yet)."""
        return self.where is not None and (self.offset == 0 or self.key is not None)


def _ensure_key_column(con: duckdb.DuckDBPyConnection) -> None:
    """``sync_state.last_key``, for a store created before runs paged by key."""
    con.execute("ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS last_key VARCHAR")


def _load_state(con: duckdb.DuckDBPyConnection, url: str, scope: str) -> _State | None:
    rows = con.execute("SELECT cursor, run_where, run_high, run_rows, next_offset, pages, "
                       "last_key FROM sync_state WHERE url = ? AND scope = ?",
                       [url, scope]).fetchall()
    if not rows:
        return None
    cursor, where, high, n, offset, pages, key = rows[0]
    return _State(cursor, where, high, int(n or 0), int(offset or 0), int(pages or 0), key)


def _newest_stored(con: duckdb.DuckDBPyConnection) -> datetime | None:
    value = con.execute("SELECT max(updated_on) FROM incidents").fetchall()[0][0]
    return value if isinstance(value, datetime) else None


def _in_transaction(con: duckdb.DuckDBPyConnection, fn: Callable[[], object]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        fn()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _begin(con: duckdb.DuckDBPyConnection, url: str, scope: str, run: PortalRun) -> None:
    """Record a new run's window (its own small transaction)."""
    _in_transaction(con, lambda: con.execute("""
        INSERT INTO sync_state (url, scope, run_where, run_high, run_rows, next_offset,
                                pages, last_key, run_started, updated_at)
        VALUES (?, ?, ?, ?, ?, 0, 0, NULL, now()::TIMESTAMP, now()::TIMESTAMP)
        ON CONFLICT (url, scope) DO UPDATE SET run_where = excluded.run_where,
            run_high = excluded.run_high, run_rows = excluded.run_rows, next_offset = 0,
            pages = 0, last_key = NULL, run_started = excluded.run_started,
            updated_at = excluded.updated_at
        """, [url, scope, run.where, run.cursor, run.window_rows]))


def _advance(con: duckdb.DuckDBPyConnection, _account: IngestAccount, *, url: str,
             scope: str, cursor: Cursor, done: bool) -> None:
    """Move the run past a page (its cursor); when it is the last, close the run (inside
    the page's transaction)."""
    con.execute("UPDATE sync_state SET next_offset = ?, last_key = ?, pages = pages + 1, "
                "updated_at = now()::TIMESTAMP WHERE url = ? AND scope = ?",
                [cursor.rows, cursor.key, url, scope])
    if done:
        _finish(con, url, scope)


def _finish(con: duckdb.DuckDBPyConnection, url: str, scope: str) -> None:
    if scope == "sync":  # the window's top is the next sync's cursor
        con.execute("""
            UPDATE sync_state SET cursor = coalesce(run_high, cursor), run_where = NULL,
                run_high = NULL, run_rows = NULL, next_offset = NULL, pages = NULL,
                last_key = NULL, run_started = NULL, updated_at = now()::TIMESTAMP
            WHERE url = ? AND scope = ?""", [url, scope])
    else:  # a one-off ingest leaves no state once complete
        con.execute("DELETE FROM sync_state WHERE url = ? AND scope = ?", [url, scope])


# ------------------------------------------------------------------- runs


def _run(store: Store, portal: Portal, scope: str, row_filter: RowFilter | None,
         options: IngestOptions | None, restart: bool,
         on_progress: Callable[[int, int], None] | None) -> PortalRun:
    con = store.con
    url = portal.resource
    _ensure_key_column(con)
    with SodaClient(portal) as client:
        run = PortalRun(url, scope)
        state = _load_state(con, url, scope)
        if state and state.resumable and not restart:
            run.where, run.window_rows, run.resumed_at = state.where or "", state.rows, state.offset
            run.cursor = state.high
            source = PortalSource(client, run.where, run.window_rows,
                                  cursor=Cursor(state.offset, state.offset, state.key),
                                  first_page=state.pages + 1)
        elif _open_window(con, client, run, state, row_filter):
            _begin(con, url, scope, run)
            source = PortalSource(client, run.where, run.window_rows)
        else:  # nothing new: the cursor stays where it was
            run.cursor = (state.cursor if state and state.cursor
                          else None if row_filter is not None else _newest_stored(con))
            source = None
        if source is not None:
            _store_pages(store, source, run, options, on_progress)
        run.requests, run.retries = client.requests, client.retries
    return run


def _open_window(con: duckdb.DuckDBPyConnection, client: SodaClient, run: PortalRun,
                 state: _State | None, row_filter: RowFilter | None) -> bool:
    """Fix a new run's window (``run.where``, its rows and newest ``updated_on``);
    False if it holds no row."""
    if row_filter is not None:
        base = row_filter.where_soda()
    else:
        low = state.cursor if state and state.cursor else _newest_stored(con)
        base = f"updated_on > '{soda_timestamp(low)}'" if low else ""
    params = {"$select": STATS_SELECT}
    if base:
        params["$where"] = base
    run.window_rows, run.cursor = _window_stats(client, params)
    if run.window_rows == 0:
        return False
    assert run.cursor is not None
    high = f"updated_on <= '{soda_timestamp(run.cursor)}'"
    if "updated_on >" in base:
        run.where = and_(base, high)
    else:  # no lower bound: rows without updated_on belong too
        run.where = and_(base, f"{high} OR updated_on IS NULL")
    return True


def _window_stats(client: SodaClient, params: dict[str, str]) -> tuple[int, datetime | None]:
    """The count and the newest ``updated_on`` that the server answers to the count query.

    An answer without its count, or with rows but without their newest time, is an
    error: read as "nothing new", it would end the run with rows unread.
    """
    stats = client.get(params)
    row = stats[0] if stats and isinstance(stats[0], dict) else None
    if row is None:
        raise client.error(f"no answer to the count query {params}: check --url and --dataset")
    shown = _short(str(row), 80)
    if "n" not in row:
        raise client.error(f"the answer to the count query {params} has no count (n): "
                           f"{shown}; check --url and --dataset")
    try:
        n = int(row["n"])
        high = _parse_high(row.get("high"))
    except (TypeError, ValueError):
        raise client.error(f"the answer to {params} is not a count and a time ({shown}): "
                           "check --url") from None
    if n and high is None:
        raise client.error(f"the answer to the count query {params} counts {n:,} rows but "
                           f"has no newest updated_on (high): {shown}; check --url and "
                           "--dataset")
    return n, high


def _parse_high(value: Any) -> datetime | None:
    if not value:
        return None
    ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts.replace(tzinfo=None)


def _store_pages(store: Store, source: PortalSource, run: PortalRun,
                 options: IngestOptions | None,
                 on_progress: Callable[[int, int], None] | None) -> None:
    """Store each page of ``source`` in its own transaction, with the source's cursor."""
    url, scope = run.resource, run.scope
    done = False
    for batch in source.batches():
        cursor = source.cursor
        # The window only loses rows (to later updates), never gains any: once its
        # count is read, the run is complete; else it ends at the first empty page.
        done = cursor.rows >= run.window_rows
        page = BatchSource(batch, name=source.page_name(cursor.rows - batch.num_rows),
                           header=source.header, format=source.format)
        account = store.ingest(page, options, before_commit=partial(
            _advance, url=url, scope=scope, cursor=cursor, done=done))
        run.accounts.append(account)
        if on_progress:
            on_progress(cursor.rows, max(run.window_rows, cursor.rows))
    if not done:
        _in_transaction(store.con, lambda: _finish(store.con, url, scope))
