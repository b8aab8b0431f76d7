"""The portal's dataset as a source: one run's window, read page by page in key order.

A run reads the rows of its window (its ``$where``) in the order of the portal's
row identifier ``:id``, each page asking for the rows after the last ``:id`` it
has read (keyset pagination: ``$where=<window> AND :id > '<last>'``,
``$order=:id``). Paging by ``$offset`` instead loses rows while the portal
changes: a row already read that is updated or deleted leaves the window, every
later row moves down one place, and the row that crosses the page boundary is
never read. By key, a row leaving or entering the window moves nothing else.

Each page is one batch of :func:`~crimeclass.data.sources._soda_records.soda_batch`;
the source's cursor then holds the rows read and the last ``:id``, which the
run stores with the page (see :mod:`crimeclass.data.sources._sync`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from crimeclass.data._schema import SODA_NAMES, HeaderMapping
from crimeclass.data.sources._base import Cursor, Source
from crimeclass.data.sources._soda import SodaClient
from crimeclass.data.sources._soda_records import soda_batch

__all__ = ["PortalSource", "key_clause"]

#: ``$select`` of a page: the records, with the row identifier that pages are keyed by.
PAGE_SELECT = ":id, *"


def key_clause(key: str) -> str:
    """SoQL for the rows after ``key`` in ``:id`` order.

    >>> key_clause("row-ab12~cd34.ef56")
    ":id > 'row-ab12~cd34.ef56'"
    """
    return ":id > '" + key.replace("'", "''") + "'"


def and_(*terms: str) -> str:
    """SoQL conjunction of the non-empty ``terms`` (a disjunction in parentheses)."""
    kept = tuple(t for t in terms if t)
    return " AND ".join(f"({t})" if " OR " in t else t for t in kept)


class PortalSource(Source):
    """The rows of a run's window, a page (one batch) at a time, in ``:id`` order.

    Parameters
    ----------
    client : SodaClient
        The endpoint to ask.
    where : str
        The window's ``$where``.
    window_rows : int
        Rows the window held when the run began: once that many are read, the run
        is complete (the window only loses rows while it runs, to updates and
        deletions, and those come with the next sync).
    cursor : Cursor or None
        Where a resumed run stands (rows read, last ``:id``); None: a new run.
    first_page : int
        Number of the first page read by this source (pages count from 1).
    """

    format = "soda"

    def __init__(self, client: SodaClient, where: str, window_rows: int, *,
                 cursor: Cursor | None = None, first_page: int = 1) -> None:
        self.client = client
        self.where = where
        self.window_rows = window_rows
        self.cursor = cursor or Cursor()
        self.page = first_page - 1  # the page last handed over
        self.header = HeaderMapping(dict(SODA_NAMES), (), "soda_json")

    @property
    def name(self) -> str:
        return self.client.portal.resource

    def page_name(self, offset: int) -> str:
        """Where the page last handed over came from, for the quarantine and the log."""
        return (f"{self.name} page {self.page} (offset {offset}"
                + (f", where {self.where})" if self.where else ")"))

    def size(self) -> int:
        return self.window_rows

    def batches(self) -> Iterator[pa.RecordBatch]:
        """One raw batch per page (``_line``: the row's place in the run, from 0); the next
        page downloads while this one is stored."""
        pending = _Fetch(self._fetch, self.cursor.key)
        while True:
            records = pending.result()
            if not records:
                return
            key = self._key(records[-1])
            offset = self.cursor.rows
            complete = offset + len(records) >= self.window_rows
            if not complete:
                pending = _Fetch(self._fetch, key)
            self.page += 1
            self._advance(len(records), key=key)
            yield soda_batch(records, offset, self.page)
            if complete:
                return

    def _fetch(self, after: str | None) -> list[Any]:
        params = {"$select": PAGE_SELECT, "$order": ":id",
                  "$limit": str(self.client.portal.page_rows)}
        where = and_(self.where, key_clause(after) if after is not None else "")
        if where:
            params["$where"] = where
        return self.client.get(params)

    def _key(self, record: Any) -> str:
        key = record.get(":id") if isinstance(record, dict) else None
        if not isinstance(key, str) or not key:
            raise self.client.error(
                "a record of the answer has no row identifier (:id) although the query "
                f"selected it ($select={PAGE_SELECT}); the run pages by it: check --url, "
                "which should be a Socrata portal")
        return key


class _Fetch:
    """``fn(arg)`` in a daemon thread: the next page downloads while this one is stored."""

    def __init__(self, fn: Callable[[str | None], list[Any]], arg: str | None) -> None:
        self._result: list[Any] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, arg), daemon=True,
                                        name="crimeclass-soda")
        self._thread.start()

    def _run(self, fn: Callable[[str | None], list[Any]], arg: str | None) -> None:
        try:
            self._result = fn(arg)
        except BaseException as e:  # handed to result()
            self._error = e

    def result(self) -> list[Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result
