"""The Data Portal's web API (SODA) as a source, and incremental sync.

The portal serves *Crimes - 2001 to Present* (dataset ``ijzp-q8t2``) as JSON
over SODA: ``GET {url}/resource/{dataset}.json`` with ``$where``, ``$order``,
``$limit`` and ``$offset``. A run reads one query page by page (``$order=:id``,
``$limit`` up to 50,000 rows, ``$offset`` advancing), and every page goes
through the same validation, quarantine, account and store as a file, in its
own transaction.

How a run stays exact when it is interrupted
--------------------------------------------
Before the first page, the run fixes its window: it asks the server for
``max(updated_on)`` and ``count(*)`` of its filter, and from then on asks only
for rows with ``updated_on`` at most that maximum. Rows the portal updates
while the run goes on move past the window (and into the next sync) instead of
shifting the pages. The window and the offset of the first row not yet stored
are kept in the store's ``sync_state`` table, written in the same transaction
as each page's rows: a run stopped at any point (an error after the retries,
a killed process) resumes at the first page not stored, with nothing lost and
nothing read twice. This is dlt's ``Incremental`` idea: a cursor
(``updated_on``) with the primary key (``id``) to upsert by.

``crimeclass sync`` asks for the rows updated after its cursor: the window's
maximum of its last completed run, or, before the first, the newest
``updated_on`` in the store.

Transient failures (HTTP 429 and 5xx, a dropped or cut connection) are retried
with exponential backoff, honouring ``Retry-After``. A failure that retrying
cannot mend (403, an expired token, an answer that is not SODA JSON) raises a
:class:`~crimeclass.data.SourceError` that names the URL and what to check; it
comes before the page's transaction, so the store keeps what it had.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from crimeclass.data._account import IngestAccount, total
from crimeclass.data._errors import SourceError
from crimeclass.data._reasons import Reason
from crimeclass.data._rowfilter import RowFilter, soda_timestamp
from crimeclass.data._schema import (
    COLUMN_NAMES,
    COLUMNS,
    RAW_SCHEMA,
    SODA_JSON_TYPES,
    SODA_NAMES,
    SODA_REQUIRED,
    HeaderMapping,
    soda_field_ignored,
)
from crimeclass.data._sources import Source

if TYPE_CHECKING:
    import duckdb
    import requests

    from crimeclass.data._ingest import IngestOptions
    from crimeclass.data._store import Store

__all__ = [
    "APP_TOKEN_ENV",
    "DEFAULT_DATASET",
    "DEFAULT_URL",
    "Portal",
    "PortalPage",
    "PortalRun",
    "RetryPolicy",
    "SodaClient",
    "ingest_portal",
    "soda_batch",
    "sync_portal",
]

DEFAULT_URL = "https://data.cityofchicago.org"
DEFAULT_DATASET = "ijzp-q8t2"
#: Environment variable holding the optional Socrata app token (higher rate limits).
APP_TOKEN_ENV = "SODA_APP_TOKEN"
#: The most rows a SODA 2.0 endpoint returns per request.
MAX_PAGE_ROWS = 50_000


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures (429, 5xx, dropped connections) are retried.

    Parameters
    ----------
    attempts : int
        Tries per request, the first included.
    backoff : float
        Seconds before the first retry; doubled before each next one.
    max_wait : float
        The longest single wait, ``Retry-After`` included.
    """

    attempts: int = 6
    backoff: float = 1.0
    max_wait: float = 60.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based)."""
        wait = self.backoff * 2 ** attempt if retry_after is None else retry_after
        return max(0.0, min(wait, self.max_wait))


@dataclass(frozen=True)
class Portal:
    """Where a SODA dataset is and how to read it.

    Parameters
    ----------
    url : str
        The portal's address.
    dataset : str
        The dataset id (``ijzp-q8t2``: *Crimes - 2001 to Present*).
    app_token : str or None
        Socrata app token, sent as ``X-App-Token``; None reads without one (lower
        rate limits). :meth:`from_env` takes it from ``$SODA_APP_TOKEN``.
    page_rows : int
        Rows per request (``$limit``), at most 50,000.
    timeout : float
        Seconds to wait for the server to connect or to send more data.
    retry : RetryPolicy
        Retries of transient failures.
    """

    url: str = DEFAULT_URL
    dataset: str = DEFAULT_DATASET
    app_token: str | None = field(default=None, repr=False)
    page_rows: int = MAX_PAGE_ROWS
    timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.page_rows <= MAX_PAGE_ROWS:
            raise ValueError(f"page_rows must be 1 to {MAX_PAGE_ROWS:,}, not {self.page_rows}")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the portal URL {self.url!r} must start with https:// (or http://)")

    @classmethod
    def from_env(cls, **kwargs: Any) -> Portal:
        """A portal whose app token is ``$SODA_APP_TOKEN`` (if set and not empty)."""
        return cls(app_token=os.environ.get(APP_TOKEN_ENV) or None, **kwargs)

    @property
    def resource(self) -> str:
        """The dataset's SODA endpoint."""
        return f"{self.url.rstrip('/')}/resource/{self.dataset}.json"


# ------------------------------------------------------------------ client


class SodaClient:
    """GET requests to one SODA endpoint, with retries and clear errors.

    requests (with urllib3's connection pool) does the HTTP; the retry loop is
    our own because urllib3's ``Retry`` does not cover a body cut off after
    the headers, which is what a dropped connection mid-page looks like.

    Parameters
    ----------
    portal : Portal
        The endpoint, token, timeout and retry policy.
    sleep : callable
        Waits between tries (``time.sleep``).
    """

    def __init__(self, portal: Portal, *, sleep: Callable[[float], None] = time.sleep) -> None:
        import requests

        self.portal = portal
        self.requests = 0
        self.retries = 0
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json",
                                      "User-Agent": "crimeclass (+sources)"})
        if portal.app_token:
            self._session.headers["X-App-Token"] = portal.app_token

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SodaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, message: str) -> SourceError:
        return SourceError(self.portal.resource, None, None, message)

    def get(self, params: dict[str, str]) -> list[Any]:
        """The JSON array that the endpoint answers to ``params``.

        Raises
        ------
        SourceError
            When access is refused, the answer is not SODA JSON, or the server
            keeps failing after the retries.
        """
        import requests

        policy = self.portal.retry
        problem = ""
        for attempt in range(policy.attempts):
            if attempt:
                self.retries += 1
            retry_after = None
            try:
                self.requests += 1
                r = self._session.get(self.portal.resource, params=params,
                                      timeout=self.portal.timeout)
                status = r.status_code
                if status == 429 or status >= 500:
                    problem = f"HTTP {status} {r.reason}"
                    retry_after = _retry_after(r.headers.get("Retry-After"))
                else:
                    return self._parse(r, params)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                problem = f"connection failed: {type(e).__name__}: {_short(str(e))}"
            except _Truncated as e:
                problem = str(e)
            if attempt + 1 < policy.attempts:
                self._sleep(policy.wait(attempt, retry_after))
        hint = ("" if self.portal.app_token else
                f"; an app token in ${APP_TOKEN_ENV} raises the portal's rate limit")
        raise self._error(
            f"gave up after {policy.attempts} tries ({problem}): the portal is down or "
            f"limiting requests; try again later (a sync resumes where it stopped){hint}")

    def _parse(self, r: requests.Response, params: dict[str, str]) -> list[Any]:
        status = r.status_code
        message = _server_message(r)
        if status in (401, 403):
            token = (f"the app token in ${APP_TOKEN_ENV} (it may be expired, revoked or "
                     "mistyped; unset it to read without one)" if self.portal.app_token
                     else "whether the dataset needs an app token or a login "
                     f"(set ${APP_TOKEN_ENV})")
            raise self._error(f"access refused (HTTP {status}{message}): check {token}, "
                              f"and that --url and --dataset name a public dataset")
        if status == 404:
            raise self._error(f"not found (HTTP 404{message}): check --url "
                              f"({self.portal.url}) and --dataset ({self.portal.dataset})")
        if status >= 400:
            raise self._error(f"the server rejected the query (HTTP {status}{message}); "
                              f"query: {params}")
        try:
            data = json.loads(r.content)
        except ValueError:
            kind = r.headers.get("Content-Type", "no content type")
            if "json" in kind and r.content.lstrip()[:1] == b"[":
                # a JSON array cut short: the connection dropped without a length to tell
                raise _Truncated(f"the JSON answer ends early ({len(r.content):,} bytes)"
                                 ) from None
            raise self._error(
                f"the answer is not SODA JSON (HTTP {status}, {kind}: "
                f"{_short(r.text, 80)!r}): check --url, which should be the portal's "
                f"address (e.g. {DEFAULT_URL}), and any proxy in between") from None
        if isinstance(data, dict) and data.get("error"):
            raise self._error(f"the server answered an error: {_short(str(data))}")
        if not isinstance(data, list):
            raise self._error(f"the answer is JSON but not a list of records "
                              f"({_short(json.dumps(data), 80)}): check --url and --dataset")
        return data


class _Truncated(Exception):
    """A JSON answer cut off: retried like a dropped connection."""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when - datetime.now(when.tzinfo)).total_seconds()


def _server_message(r: requests.Response) -> str:
    """``': message'`` from a SODA error body, or ``''``."""
    try:
        body = r.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body.get("code")
        if msg:
            return f": {_short(str(msg))}"
    return ""


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------- records


_BOOL_TEXT = {True: "true", False: "false"}


def _text(value: Any) -> str:
    """A JSON scalar of an accepted type as text: ``True`` -> ``'true'``, ``8`` -> ``'8'``."""
    if type(value) is bool:
        return _BOOL_TEXT[value]
    return value if type(value) is str else repr(value)


def _text_column(name: str, values: list[Any], problems: dict[int, list[str]]) -> pa.Array:
    """One column of a page as text; a value of a type the column does not take is nulled
    and its record noted as ``wrong_type``."""
    if name == "location":  # derived from latitude and longitude: only its type matters
        for i, v in enumerate(values):
            if v is not None and type(v) not in SODA_JSON_TYPES[name]:
                problems.setdefault(i, []).append(f"{name}:{Reason.WRONG_TYPE}")
        return pa.nulls(len(values), pa.string())
    try:  # the common cases at C speed: all text (numbers, dates), or all booleans
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    if bool in SODA_JSON_TYPES[name]:
        try:
            return pa.array(values, pa.bool_()).cast(pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
    accepted = SODA_JSON_TYPES[name]
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif type(v) in accepted:
            out.append(_text(v))
        else:
            problems.setdefault(i, []).append(f"{name}:{Reason.WRONG_TYPE}")
            out.append(None)
    return pa.array(out, pa.string())


#: A SODA record as Arrow expects it in the common case (numbers and dates as text,
#: the two flags as booleans); Location is derived, so it is not converted.
_SODA_STRUCT = pa.struct([pa.field(c.name, pa.bool_() if c.kind == "bool" else pa.string())
                          for c in COLUMNS if c.kind != "derived"])


def soda_batch(records: list[Any], first_offset: int, page: int) -> pa.RecordBatch:
    """One page of SODA JSON records as a raw batch (:data:`RAW_SCHEMA`).

    ``_line`` is each record's ``$offset``. A record with a field of the wrong
    JSON type (that field nulled), without ``id`` or ``updated_on``, or with a
    field the dataset does not have, carries ``'field:reason;...'`` in
    ``_reject`` and, in ``_raw``, its page, offset and JSON: validation
    quarantines it, and the rest of the page loads.

    >>> b = soda_batch([{"id": "1", "date": "2025-01-01T00:00:00.000",
    ...                  "updated_on": "2025-01-02T00:00:00.000", "arrest": True},
    ...                 {"id": {"x": 1}, "color": "red"}], first_offset=100, page=3)
    >>> b.column("arrest").to_pylist(), b.column("_line").to_pylist()
    (['true', None], [100, 101])
    >>> b.column("_reject").to_pylist()
    [None, 'color:unknown_field;id:wrong_type;updated_on:missing_field']
    >>> json.loads(b.column("_raw")[1].as_py())["offset"]
    101
    """
    n = len(records)
    problems: dict[int, list[str]] = {}
    dicts = records
    if not all(type(r) is dict for r in records):
        dicts = []
        for i, r in enumerate(records):
            if type(r) is dict:
                dicts.append(r)
            else:
                problems[i] = [f"record:{Reason.WRONG_TYPE}"]
                dicts.append({})
    keys: set[str] = set().union(*dicts) if dicts else set()
    unknown = {k for k in keys if k not in SODA_NAMES and not soda_field_ignored(k)}
    if unknown:
        for i, r in enumerate(dicts):
            for k in sorted(unknown.intersection(r)):
                problems.setdefault(i, []).append(f"{k}:{Reason.UNKNOWN_FIELD}")
    try:  # the common case at C speed: every value of the JSON type its column takes
        struct = pa.array(dicts, _SODA_STRUCT)
        arrays = [pa.nulls(n, pa.string()) if name == "location"
                  else struct.field(name).cast(pa.string()) for name in COLUMN_NAMES]
        missing = {name: struct.field(name).null_count for name in SODA_REQUIRED}
        _text_column("location", [r.get("location") for r in dicts], problems)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # some value is not: find it, column by column
        arrays = []
        for name in COLUMN_NAMES:
            values = [r.get(name) for r in dicts]
            arrays.append(_text_column(name, values, problems))
        missing = dict.fromkeys(SODA_REQUIRED, 1)
    for name, count in missing.items():
        if count:
            for i, r in enumerate(dicts):
                if r.get(name) is None and r:
                    problems.setdefault(i, []).append(f"{name}:{Reason.MISSING_FIELD}")
    rejects: list[str | None] = [None] * n
    raws: list[str | None] = [None] * n
    for i, found in problems.items():
        rejects[i] = ";".join(sorted(found))
        raws[i] = json.dumps({"page": page, "offset": first_offset + i, "record": records[i]},
                             default=str)
    arrays += [pa.array(np.arange(first_offset, first_offset + n, dtype=np.int64)),
               pa.array(rejects, pa.string()), pa.array(raws, pa.string())]
    return pa.RecordBatch.from_arrays(arrays, schema=RAW_SCHEMA)


class PortalPage(Source):
    """One page of a SODA query, already fetched, as a source of one raw batch.

    Its name says the endpoint, page (from 1), offset and the run's filter, so
    the quarantine tells where each record came from.
    """

    format = "soda"

    def __init__(self, records: list[Any], *, resource: str, page: int, offset: int,
                 where: str) -> None:
        self.records = records
        self.page = page
        self.offset = offset
        self.header = HeaderMapping(dict(SODA_NAMES), (), "soda_json")
        self._name = (f"{resource} page {page} (offset {offset}"
                      + (f", where {where})" if where else ")"))
        self._position = 0

    @property
    def name(self) -> str:
        return self._name

    def size(self) -> int:
        return len(self.records)

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield soda_batch(self.records, self.offset, self.page)
        self._position = len(self.records)


# ------------------------------------------------------------------- runs


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
        Offset at which an interrupted run was resumed.
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


@dataclass
class _State:
    cursor: datetime | None
    where: str | None
    high: datetime | None
    rows: int
    offset: int
    pages: int


def _load_state(con: duckdb.DuckDBPyConnection, url: str, scope: str) -> _State | None:
    rows = con.execute("SELECT cursor, run_where, run_high, run_rows, next_offset, pages "
                       "FROM sync_state WHERE url = ? AND scope = ?", [url, scope]).fetchall()
    if not rows:
        return None
    cursor, where, high, n, offset, pages = rows[0]
    return _State(cursor, where, high, int(n or 0), int(offset or 0), int(pages or 0))


def _newest_stored(con: duckdb.DuckDBPyConnection) -> datetime | None:
    value = con.execute("SELECT max(updated_on) FROM incidents").fetchall()[0][0]
    return value if isinstance(value, datetime) else None


def _and(*terms: str) -> str:
    terms = tuple(t for t in terms if t)
    return " AND ".join(f"({t})" if " OR " in t else t for t in terms)


def _parse_high(value: Any) -> datetime | None:
    if not value:
        return None
    ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts.replace(tzinfo=None)


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


def _run(store: Store, portal: Portal, scope: str, row_filter: RowFilter | None,
         options: IngestOptions | None, restart: bool,
         on_progress: Callable[[int, int], None] | None) -> PortalRun:
    con = store.con
    url = portal.resource
    with SodaClient(portal) as client:
        run = PortalRun(url, scope)
        state = _load_state(con, url, scope)
        if state and state.where is not None and not restart:
            run.where, run.window_rows, run.resumed_at = state.where, state.rows, state.offset
            run.cursor = state.high
            offset, page = state.offset, state.pages + 1
        else:
            if row_filter is not None:
                base = row_filter.where_soda()
            else:
                low = state.cursor if state and state.cursor else _newest_stored(con)
                base = f"updated_on > '{soda_timestamp(low)}'" if low else ""
            params = {"$select": "max(updated_on) AS high, count(*) AS n"}
            if base:
                params["$where"] = base
            stats = client.get(params)
            if not stats or not isinstance(stats[0], dict):
                raise client._error(f"no answer to {params}: check --url and --dataset")
            try:
                run.window_rows = int(stats[0].get("n") or 0)
                run.cursor = _parse_high(stats[0].get("high"))
            except (TypeError, ValueError):
                raise client._error(f"the answer to {params} is not a count and a time "
                                    f"({_short(str(stats[0]), 80)}): check --url") from None
            if run.window_rows == 0:  # nothing new: the cursor stays where it was
                run.cursor = (state.cursor if state and state.cursor
                              else None if row_filter is not None else _newest_stored(con))
                run.requests, run.retries = client.requests, client.retries
                return run
            if run.cursor is None:
                run.where = base
            elif "updated_on >" in base:
                run.where = _and(base, f"updated_on <= '{soda_timestamp(run.cursor)}'")
            else:  # no lower bound: rows without updated_on belong too
                run.where = _and(base, f"updated_on <= '{soda_timestamp(run.cursor)}' "
                                       "OR updated_on IS NULL")
            offset, page = 0, 1
            _begin(con, url, scope, run)
        _pages(store, client, portal, run, scope, offset, page, options, on_progress)
        run.requests, run.retries = client.requests, client.retries
    return run


def _begin(con: duckdb.DuckDBPyConnection, url: str, scope: str, run: PortalRun) -> None:
    """Record a new run's window (its own small transaction)."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("""
            INSERT INTO sync_state (url, scope, run_where, run_high, run_rows, next_offset,
                                    pages, run_started, updated_at)
            VALUES (?, ?, ?, ?, ?, 0, 0, now()::TIMESTAMP, now()::TIMESTAMP)
            ON CONFLICT (url, scope) DO UPDATE SET run_where = excluded.run_where,
                run_high = excluded.run_high, run_rows = excluded.run_rows, next_offset = 0,
                pages = 0, run_started = excluded.run_started, updated_at = excluded.updated_at
            """, [url, scope, run.where, run.cursor, run.window_rows])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _advance(con: duckdb.DuckDBPyConnection, _account: IngestAccount, *, url: str,
             scope: str, next_offset: int, done: bool) -> None:
    """Move the run past a page; when it is the last, close the run (inside the page's
    transaction)."""
    con.execute("UPDATE sync_state SET next_offset = ?, pages = pages + 1, "
                "updated_at = now()::TIMESTAMP WHERE url = ? AND scope = ?",
                [next_offset, url, scope])
    if done:
        _finish(con, url, scope)


def _finish(con: duckdb.DuckDBPyConnection, url: str, scope: str) -> None:
    if scope == "sync":  # the window's top is the next sync's cursor
        con.execute("""
            UPDATE sync_state SET cursor = coalesce(run_high, cursor), run_where = NULL,
                run_high = NULL, run_rows = NULL, next_offset = NULL, pages = NULL,
                run_started = NULL,
                updated_at = now()::TIMESTAMP
            WHERE url = ? AND scope = ?""", [url, scope])
    else:  # a one-off ingest leaves no state once complete
        con.execute("DELETE FROM sync_state WHERE url = ? AND scope = ?", [url, scope])


class _Fetch:
    """``fn(arg)`` in a daemon thread: the next page downloads while this one is stored."""

    def __init__(self, fn: Callable[[int], list[Any]], arg: int) -> None:
        self._result: list[Any] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, arg), daemon=True,
                                        name="crimeclass-soda")
        self._thread.start()

    def _run(self, fn: Callable[[int], list[Any]], arg: int) -> None:
        try:
            self._result = fn(arg)
        except BaseException as e:  # handed to result()
            self._error = e

    def result(self) -> list[Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def _pages(store: Store, client: SodaClient, portal: Portal, run: PortalRun, scope: str,
           offset: int, page: int, options: IngestOptions | None,
           on_progress: Callable[[int, int], None] | None) -> None:
    """Fetch page after page (the next one while the current one loads) and store each."""
    url = portal.resource
    limit = portal.page_rows

    def fetch(at: int) -> list[Any]:
        params = {"$order": ":id", "$limit": str(limit), "$offset": str(at)}
        if run.where:
            params["$where"] = run.where
        return client.get(params)

    pending = _Fetch(fetch, offset)
    while True:
        records = pending.result()
        if not records:
            store.con.execute("BEGIN TRANSACTION")
            try:
                _finish(store.con, url, scope)
                store.con.execute("COMMIT")
            except BaseException:
                store.con.execute("ROLLBACK")
                raise
            return
        end = offset + len(records)
        # The window only loses rows (to later updates), never gains any: once
        # its count is read, the run is complete. A short page before that
        # (rows left the window, or the host pages in less than $limit) asks on.
        last = end >= run.window_rows
        if not last:
            pending = _Fetch(fetch, end)
        source = PortalPage(records, resource=url, page=page, offset=offset,
                            where=run.where)
        account = store.ingest(source, options,
                               before_commit=partial(_advance, url=url, scope=scope,
                                                     next_offset=end, done=last))
        run.accounts.append(account)
        offset, page = end, page + 1
        if on_progress:
            on_progress(offset, max(run.window_rows, offset))
        if last:
            return
