"""The service's history: the online index of a store, kept current, and the store itself.

DuckDB lets one process write a database file, and no other process open it meanwhile.
The service therefore never keeps the store open: it reads it once at start (the index
and the days it covers), then opens it only for a moment, under one lock:

* read-write, to store incidents posted to ``/v1/incidents`` (ingested exactly as
  ``crimeclass ingest`` ingests a portal page);
* read-only, to follow what another process (``crimeclass sync``) wrote: the incidents
  of ingests newer than the last one the index holds;
* read-only, to score a request holding an incident the store holds already (the batch
  query, which counts such an incident once).

While another process writes the store, these moments fail to open it: a follow is
tried again later, a post is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from crimeclass.data import IngestAccount, Store, StoreError
from crimeclass.features import FeatureSpec, HistoryIndex
from crimeclass.models import DayCover
from crimeclass.serve._errors import ServeError

__all__ = ["History"]

T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1)


def _last_ingest(s: Store) -> int:
    return int(s.con.execute("SELECT coalesce(max(ingest_id), 0) FROM ingests").fetchall()[0][0])


class History:
    """The online index and the day cover of a store, for one feature spec.

    Parameters
    ----------
    store : Path
        The store (a crimeclass DuckDB file).
    spec : FeatureSpec
        The features of the model served: which places the index holds.
    """

    def __init__(self, store: Path, spec: FeatureSpec) -> None:
        self.store = Path(store)
        self.spec = spec
        self.lock = threading.Lock()
        t0 = time.perf_counter()
        with self._open(read_only=True) as s:
            s.require_rows()
            self.index = HistoryIndex.from_connection(s.con, spec)
            self.cover = DayCover.from_connection(s.con)
            self.last_ingest = _last_ingest(s)
            self.places = [str(p) for (p,) in s.con.execute(
                "SELECT location_description FROM incidents WHERE location_description "
                "IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 200").fetchall()]
        self.seconds = time.perf_counter() - t0
        self.followed_at = time.time()

    def _open(self, *, read_only: bool) -> Store:
        try:
            return Store(self.store, read_only=read_only)
        except StoreError as e:
            raise ServeError(f"the store is busy or cannot be opened: {e}", status=503,
                             retry_after=5) from e
        except Exception as e:  # duckdb.IOException: another process holds the lock
            raise ServeError("the store is busy (another process writes it)", status=503,
                             retry_after=5) from e

    def with_store(self, fn: Callable[[Store], T], *, read_only: bool = True) -> T:
        """Run ``fn`` on the store, opened for the moment under the lock."""
        with self.lock, self._open(read_only=read_only) as s:
            return fn(s)

    @property
    def newest(self) -> dt.datetime | None:
        """The newest incident the history holds."""
        return self.index.newest

    def age_seconds(self, now: dt.datetime | None = None) -> float | None:
        """Seconds from the newest incident held to now (local clock, as the store's)."""
        newest = self.newest
        if newest is None:
            return None
        return ((now or dt.datetime.now()) - newest).total_seconds()

    def _take(self, con: Any, where: str) -> int:
        """Add the store's incidents matching ``where`` to the index and the cover."""
        table = f"(SELECT * FROM incidents WHERE {where})"
        rows = self.index.rows(con, table=table)
        for r in rows:
            self.index.add(r)
        if rows:
            us = np.asarray([r["_us"] for r in rows], dtype=np.int64)
            self.cover = self.cover.added(us)  # a new object: readers see one or the other
        return len(rows)

    def add(self, batch: pa.RecordBatch, source: Any) -> IngestAccount:
        """Ingest a raw batch into the store (as ingest does) and take its incidents in."""
        def run(s: Store) -> IngestAccount:
            account = s.ingest(source)
            self._take(s.con, f"ingest_id = {int(account.ingest_id or 0)}")
            self.last_ingest = max(self.last_ingest, int(account.ingest_id or 0))
            return account

        return self.with_store(run, read_only=False)

    def follow(self) -> int:
        """Take in the incidents of ingests newer than the last one held (another process's
        sync); 0 while the store is busy."""
        def run(s: Store) -> int:
            new = _last_ingest(s)
            taken = self._take(s.con, f"ingest_id > {self.last_ingest}") \
                if new > self.last_ingest else 0
            self.last_ingest = new
            return taken

        try:
            taken = self.with_store(run)
        except ServeError:
            return 0
        self.followed_at = time.time()
        return taken

    def info(self) -> dict[str, Any]:
        newest = self.newest
        return {"incidents": len(self.index),
                "newest": None if newest is None else newest.isoformat(),
                "age_seconds": self.age_seconds(), "last_ingest": self.last_ingest,
                "built_seconds": round(self.seconds, 3)}
