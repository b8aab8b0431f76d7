"""The DuckDB engine: the catalog over the store, in process (the default)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from crimeclass.data import Store
from crimeclass.explore._engine import conform
from crimeclass.explore._lookups import community_areas, police_districts

__all__ = ["DuckDBEngine", "store_sources"]


def _sources(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, object]]:
    rows = con.execute(f"""
        SELECT source, max_by(read, ingest_id), max_by(inserted + updated + unchanged,
               ingest_id), max(started_at)
        FROM {table} GROUP BY source ORDER BY source""").fetchall()
    return [{"source": s, "read": int(r or 0), "loaded": int(n or 0), "at": str(t)}
            for s, r, n, t in rows]


def store_sources(store: str | Path) -> list[dict[str, object]]:
    """The files loaded into a store (latest ingest of each): source, read, loaded, at."""
    with Store(store, read_only=True) as st:
        return _sources(st.con, "ingests")


class DuckDBEngine:
    """Runs the catalog on a crimeclass store with DuckDB.

    The store is attached read-only to an in-memory database that holds the
    views, so the store is never written and several reports can run at once.

    Parameters
    ----------
    store : str or pathlib.Path
        The store file.
    threads : int, optional
        DuckDB threads (default: all cores).
    memory_limit : str, optional
        DuckDB memory limit, e.g. ``"2GB"``.

    Raises
    ------
    crimeclass.data.EmptyStoreError
        If the store is missing or holds no incidents (the message names
        ``crimeclass ingest``).
    """

    name = "duckdb"
    source = "store.main.incidents"

    def __init__(self, store: str | Path, *, threads: int | None = None,
                 memory_limit: str | None = None) -> None:
        path = Path(store)
        with Store(path, read_only=True) as st:  # checks that it is a non-empty store
            st.require_rows()
        self.path = path
        self.con = duckdb.connect()
        try:
            self.con.execute("SET enable_progress_bar = false")
            if threads:
                self.con.execute(f"SET threads = {int(threads)}")
            if memory_limit:
                self.con.execute(f"SET memory_limit = '{memory_limit}'")
            quoted = str(path).replace("'", "''")
            self.con.execute(f"ATTACH '{quoted}' AS store (READ_ONLY)")
            self.con.execute("CREATE VIEW quarantine AS SELECT * FROM store.main.quarantine")
            for name, table in (("community_areas", community_areas()),
                                ("police_districts", police_districts())):
                self.con.register(f"_{name}", table)
                self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
        except BaseException:
            self.con.close()
            raise
        self.detail = f"DuckDB {duckdb.__version__} over the store {path}"

    def define(self, name: str, sql: str, *, materialize: bool = False) -> None:
        """Create or replace the view ``name`` (a table in memory if ``materialize``)."""
        kind = "TABLE" if materialize else "VIEW"
        self.con.execute(f"DROP VIEW IF EXISTS {name}")
        self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self.con.execute(f"CREATE {kind} {name} AS {sql}")

    def table(self, sql: str) -> pa.Table:
        """Rows of ``sql`` as Arrow."""
        return conform(self.con.sql(sql).to_arrow_table())

    def sources(self) -> list[dict[str, object]]:
        """The files loaded into the store (latest ingest of each): name, rows, when."""
        return _sources(self.con, "store.main.ingests")

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
