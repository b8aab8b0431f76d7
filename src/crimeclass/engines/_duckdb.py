"""The DuckDB engine: a connection, to a store or in memory, behind :class:`Engine`."""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb
import pyarrow as pa

from crimeclass.data import Store
from crimeclass.engines._settings import (
    DuckDBSettings,
    attach,
    connect,
    temporary_memory_limit,
)
from crimeclass.engines._sql import conform

__all__ = ["DuckDBEngine", "prepared"]


class DuckDBEngine:
    """Runs SQL with DuckDB on a connection.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection; left open by :meth:`close` unless ``owned``.
    source : str, default="incidents"
        The relation of incidents on ``con``.
    store_schema : str, optional
        The schema of the store's own tables (``ingests``, ``quarantine``) on ``con``,
        when ``con`` reaches a store.
    owned : bool, default=False
        Close ``con`` on :meth:`close`.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE incidents AS SELECT 2017 AS year")
    >>> DuckDBEngine(con).table("SELECT year FROM incidents").to_pydict()
    {'year': [2017]}
    """

    name = "duckdb"
    has_quarantine = True

    def __init__(self, con: duckdb.DuckDBPyConnection, *, source: str = "incidents",
                 store_schema: str | None = None, owned: bool = False,
                 detail: str | None = None) -> None:
        self.con = con
        self.source = source
        self.store_schema = store_schema
        self._owned = owned
        self.detail = detail or f"DuckDB {duckdb.__version__}"

    @classmethod
    def from_store(cls, store: Store) -> DuckDBEngine:
        """The engine on an open store's connection (the store keeps it: close the store)."""
        return cls(store.con, store_schema="main",
                   detail=f"DuckDB {duckdb.__version__} on the store {store.path}")

    @classmethod
    def open_store(cls, path: str | Path,
                   settings: DuckDBSettings | None = None) -> DuckDBEngine:
        """The store ``path`` attached read-only to a database in memory that holds the views.

        The store is never written, and several engines may read it at once.

        Raises
        ------
        crimeclass.data.EmptyStoreError
            If the store is missing or holds no incidents (the message names
            ``crimeclass ingest``).
        """
        path = Path(path)
        with Store(path, read_only=True) as st:  # checks that it is a non-empty store
            st.require_rows()
        con = connect(settings=settings or DuckDBSettings(progress_bar=False))
        try:
            attach(con, path, "store")
            con.execute("CREATE VIEW quarantine AS SELECT * FROM store.main.quarantine")
        except BaseException:
            con.close()
            raise
        return cls(con, source="store.main.incidents", store_schema="store.main", owned=True,
                   detail=f"DuckDB {duckdb.__version__} over the store {path}")

    def define(self, name: str, sql: str, *, materialize: bool = False) -> None:
        """Create or replace the view ``name`` (a table in memory if ``materialize``)."""
        kind = "TABLE" if materialize else "VIEW"
        for old in ("VIEW", "TABLE"):
            try:
                self.con.execute(f"DROP {old} IF EXISTS {name}")
            except duckdb.CatalogException:  # ``name`` exists as the other kind
                pass
        self.con.execute(f"CREATE {kind} {name} AS {sql}")

    def register(self, name: str, table: pa.Table) -> None:
        """Create or replace the view ``name`` over the Arrow ``table``."""
        self.con.register(f"_{name}", table)
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}")

    def table(self, sql: str) -> pa.Table:
        """Rows of ``sql`` as Arrow, :func:`conform`-ed."""
        return conform(self.con.sql(sql).to_arrow_table())

    def reader(self, sql: str, batch_rows: int = 1 << 20) -> pa.RecordBatchReader:
        """Rows of ``sql`` streamed ``batch_rows`` at a time, in DuckDB's Arrow types."""
        return self.con.sql(sql).to_arrow_reader(batch_rows)

    def memory_limit(self, limit: str | None) -> AbstractContextManager[None]:
        """DuckDB's memory limit ``limit`` for the block (:func:`temporary_memory_limit`)."""
        return temporary_memory_limit(self.con, limit)

    def close(self) -> None:
        """Close the connection if the engine opened it."""
        if self._owned:
            self.con.close()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepared(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """The result of ``sql`` from a statement DuckDB prepares once per connection.

    For a statement run many times over little data (a service's requests, each over
    tables it registers anew): DuckDB parses it once. DuckDB 2.0 still binds and
    optimizes it at every execution, so a statement of many expressions costs
    milliseconds however few its rows (``bench/serve_stages.py``; the service evaluates a
    request's features with Arrow instead: :func:`compile_expression`).
    """
    name = "_p" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    try:
        return con.sql(f"EXECUTE {name}")
    except duckdb.BinderException as e:
        if "does not exist" not in str(e):
            raise
    con.execute(f"PREPARE {name} AS {sql}")
    return con.sql(f"EXECUTE {name}")
