"""The store: one DuckDB file holding the incidents, the quarantine and the ingest log.

Tables
------
``incidents``
    One row per incident, keyed by ``key``: the portal's ID, or for a source
    that publishes none, a key derived from Case Number, Date, IUCR (or the
    offense descriptions) and Block (``key_derived``; negative, so it never
    meets an ID). The 22 canonical columns (``location`` is computed), the
    label (``is_index``, ``label_source``), and lineage (``ingest_id``,
    ``source_line``, ``flags``).
``quarantine``
    The rows of the latest ingest of each source that were not loaded: line,
    field, reason and the row's text.
``ingests``
    The account of every ingest.
``sync_state``
    Where each incremental sync from a web API stands: the newest ``updated_on``
    stored (the cursor) and, while a run is in progress, its query and the
    offset of the first row not yet stored (``crimeclass sync`` resumes there).

Every ingest runs in one transaction: killed or failed midway, it leaves the
store exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from crimeclass.data._account import IngestAccount
from crimeclass.data._errors import EmptyStoreError, StoreError
from crimeclass.data._ingest import STORED, IngestOptions, ingest
from crimeclass.data._schema import COLUMNS
from crimeclass.data.sources._base import Source
from crimeclass.data.sources._files import open_source

__all__ = ["DEFAULT_STORE", "IngestOptions", "Store", "default_store_path", "is_duckdb_file"]

SCHEMA_VERSION = "1"
DEFAULT_STORE = "crimeclass.duckdb"
_SQL_TYPES = {
    "id": "BIGINT", "timestamp": "TIMESTAMP", "bool": "BOOLEAN", "int": "INTEGER",
    "year": "INTEGER", "float": "DOUBLE", "text": "VARCHAR", "code": "VARCHAR",
    "fbi": "VARCHAR",
}
_LOCATION_SQL = (
    "CASE WHEN latitude IS NOT NULL AND longitude IS NOT NULL "
    "THEN '(' || latitude || ', ' || longitude || ')' END"
)


def default_store_path() -> Path:
    """``$CRIMECLASS_STORE`` if set, else ``crimeclass.duckdb`` in the working folder."""
    return Path(os.environ.get("CRIMECLASS_STORE") or DEFAULT_STORE)


def _ddl() -> list[str]:
    cols = ",\n    ".join(f"{c.name} {_SQL_TYPES[c.kind]}"
                          + (" NOT NULL" if c.name == "date" else "") for c in STORED)
    return [
        "CREATE TABLE IF NOT EXISTS crimeclass_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        f"""CREATE TABLE IF NOT EXISTS incidents (
    {cols},
    location VARCHAR GENERATED ALWAYS AS ({_LOCATION_SQL}) VIRTUAL,
    key BIGINT NOT NULL,
    base_key BIGINT NOT NULL,
    ordinal INTEGER NOT NULL,
    key_derived BOOLEAN NOT NULL,
    is_index BOOLEAN,
    label_source VARCHAR NOT NULL,
    flags VARCHAR[],
    ingest_id INTEGER NOT NULL,
    source_line BIGINT NOT NULL
)""",
        """CREATE TABLE IF NOT EXISTS quarantine (
    ingest_id INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    problems VARCHAR NOT NULL,
    raw VARCHAR
)""",
        """CREATE TABLE IF NOT EXISTS ingests (
    ingest_id INTEGER PRIMARY KEY,
    source VARCHAR NOT NULL,
    format VARCHAR,
    variant VARCHAR,
    started_at TIMESTAMP NOT NULL,
    seconds DOUBLE,
    read BIGINT, inserted BIGINT, updated BIGINT, unchanged BIGINT, quarantined BIGINT,
    account JSON
)""",
        # where an incremental sync of a web API dataset stands (docs/sources.md):
        # the cursor of the last completed run, and the run in progress, if any
        """CREATE TABLE IF NOT EXISTS sync_state (
    url VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    cursor TIMESTAMP,
    run_where VARCHAR,
    run_high TIMESTAMP,
    run_rows BIGINT,
    next_offset BIGINT,
    pages INTEGER,
    run_started TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (url, scope)
)""",
    ]


class Store:
    """A DuckDB file of incidents.

    Parameters
    ----------
    path : str or pathlib.Path
        The DuckDB file; created when missing (unless ``read_only``).
    read_only : bool
        Open without write access (several readers may share the file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from crimeclass.data import Store, sample_files
    >>> with tempfile.TemporaryDirectory() as d, Store(pathlib.Path(d) / "s.duckdb") as store:
    ...     account = store.ingest_path(sample_files()[-1])
    ...     account.balanced
    True
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise EmptyStoreError(str(self.path))
        if not read_only and not self.path.parent.exists():
            raise StoreError(f"cannot create the store {self.path}: the folder "
                             f"{self.path.parent} does not exist")
        _refuse_other_files(self.path)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            raise StoreError(f"cannot open the store {self.path}: {e}") from e
        except duckdb.Error as e:
            raise StoreError(f"{self.path} is not a crimeclass store: {e}") from e
        self.read_only = read_only
        try:
            self._check_backed_by_file()
            self._check_kind()
            if not read_only:
                self._migrate()
        except BaseException:
            self.con.close()
            raise

    # ------------------------------------------------------------- basics

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def checkpoint(self, *, vacuum: bool = True) -> None:
        """Write what was committed into the database file (DuckDB's ``CHECKPOINT``).

        ``vacuum=False`` skips the vacuum, which reclaims deleted rows but also merges
        the partly filled row groups that each statement leaves, rewriting them (1.2-2
        CPU s on 1.7M rows): after a write that deleted nothing there is nothing to
        reclaim, and the merge is left to a later checkpoint. Another connection being
        busy is no error: DuckDB then checkpoints later.
        """
        con = self.con
        if not vacuum:
            con.execute("SET max_vacuum_tasks = 0")
        try:
            con.execute("CHECKPOINT")
        except duckdb.Error:
            pass
        finally:
            if not vacuum:
                con.execute("RESET max_vacuum_tasks")

    def _scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def _has_table(self, name: str) -> bool:
        return bool(self._scalar("SELECT count(*) FROM duckdb_tables() "
                                 "WHERE table_name = ? AND NOT temporary", [name]))

    def _check_backed_by_file(self) -> None:
        # DuckDB opens a CSV, Parquet or JSON path as an in-memory database with views
        # over the file (duckdb/duckdb#17415): whatever was written there would vanish
        # on close, so a store must be the database file itself
        backing = self._scalar("SELECT path FROM duckdb_databases() "
                               "WHERE database_name = current_database()")
        if not backing:
            raise StoreError(f"{self.path} is not a crimeclass store: DuckDB opened it as a "
                             "data file, not as a database file")

    def _check_kind(self) -> None:
        """Refuse a DuckDB database that is not a store of this version."""
        if self._has_table("crimeclass_meta"):
            version = self._scalar(
                "SELECT value FROM crimeclass_meta WHERE key = 'schema_version'")
            if version != SCHEMA_VERSION:
                raise StoreError(f"{self.path} has store schema version {version}; this "
                                 f"crimeclass reads version {SCHEMA_VERSION}")
            if not self._has_table("incidents"):
                raise StoreError(f"{self.path} is not a crimeclass store: no incidents table")
            return
        names = [r[0] for r in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary UNION ALL "
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary "
            "ORDER BY 1").fetchall()]
        if names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise StoreError(f"{self.path} is a DuckDB database but not a crimeclass store "
                             f"(it holds {shown} and no crimeclass_meta table); not changed")
        if self.read_only:  # an empty database: nothing to read
            raise StoreError(f"{self.path} is not a crimeclass store: no incidents table")

    def _migrate(self) -> None:
        """Create the tables of a new store (a store of this version is left as it is)."""
        self.con.execute("BEGIN")
        for stmt in _ddl():
            self.con.execute(stmt)
        self.con.execute("INSERT OR REPLACE INTO crimeclass_meta VALUES ('schema_version', ?)",
                         [SCHEMA_VERSION])
        self.con.execute("COMMIT")

    def count(self) -> int:
        """Number of incidents stored."""
        return int(self._scalar("SELECT count(*) FROM incidents"))

    def require_rows(self) -> None:
        """Raise :class:`EmptyStoreError` if the store holds no incidents."""
        if self.count() == 0:
            raise EmptyStoreError(str(self.path))

    # ------------------------------------------------------------- ingest

    def ingest_path(self, path: str | Path, options: IngestOptions | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> IngestAccount:
        """Open ``path`` as a source and :meth:`ingest` it."""
        options = options or IngestOptions()
        return self.ingest(open_source(path, block_bytes=options.block_bytes), options,
                           on_progress)

    def ingest(self, source: Source, options: IngestOptions | None = None,
               on_progress: Callable[[int, int], None] | None = None, *,
               before_commit: Callable[[duckdb.DuckDBPyConnection, IngestAccount], None]
               | None = None) -> IngestAccount:
        """Validate, label and upsert every row of ``source``, in one transaction.

        Parameters
        ----------
        source : Source
            Where the rows come from.
        options : IngestOptions, optional
            Memory limit, block size, bounds.
        on_progress : callable, optional
            Called as ``on_progress(done, total)`` in the source's units (bytes or rows).
        before_commit : callable, optional
            Called as ``before_commit(con, account)`` inside the ingest's transaction,
            just before it commits: what it writes (e.g. a sync's cursor) is committed
            with the rows, or not at all.

            .. versionadded:: 0.1

        Returns
        -------
        IngestAccount
            read = inserted + updated + unchanged + quarantined.
        """
        if self.read_only:
            raise StoreError(f"the store {self.path} is open read-only")
        options = options or IngestOptions()
        t0 = time.perf_counter()
        con = self.con
        con.execute(f"SET memory_limit = '{options.memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
        if options.threads:
            con.execute(f"SET threads = {int(options.threads)}")
        account = IngestAccount(source=source.name, format=source.format,
                                variant=source.header.variant)
        con.execute("BEGIN TRANSACTION")
        try:
            ingest_id = int(self._scalar("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingests"))
            account.ingest_id = ingest_id
            ingest(con, source, ingest_id, options, account, on_progress)
            account.seconds = time.perf_counter() - t0
            account.check()
            con.execute(
                "INSERT INTO ingests VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?)",
                [ingest_id, source.name, source.format, source.header.variant, account.seconds,
                 account.read, account.inserted, account.updated, account.unchanged,
                 account.quarantined, json.dumps(account.to_dict())])
            if before_commit is not None:
                before_commit(con, account)
            if account.appended_only:  # a checkpoint at the commit skips the vacuum too
                con.execute("SET max_vacuum_tasks = 0")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if account.appended_only:
            self.checkpoint(vacuum=False)
        return account

    # --------------------------------------------------------------- read

    def info(self) -> dict[str, Any]:
        """Rows, date range, years, index share, label routes and quarantine, as a dict."""
        con = self.con
        n, lo, hi, share, labeled, derived = con.execute("""
            SELECT count(*), min(date), max(date), avg(is_index::INTEGER),
                   count(is_index), count(*) FILTER (WHERE key_derived)
            FROM incidents""").fetchall()[0]
        years = con.execute("SELECT year, count(*) FROM incidents GROUP BY ALL ORDER BY 1"
                            ).fetchall()
        routes = con.execute("SELECT label_source, count(*) FROM incidents GROUP BY ALL "
                             "ORDER BY 2 DESC").fetchall()
        reasons = con.execute("SELECT reason, count(*) FROM quarantine GROUP BY ALL "
                              "ORDER BY 2 DESC").fetchall()
        n_ingests, last, sources = con.execute(
            "SELECT count(*), max(started_at), count(DISTINCT source) FROM ingests"
        ).fetchall()[0]
        return {
            "store": str(self.path),
            "rows": int(n),
            "min_date": lo.isoformat() if lo else None,
            "max_date": hi.isoformat() if hi else None,
            "years": {int(y): int(c) for y, c in years},
            "index_share": round(float(share), 6) if share is not None else None,
            "labeled": int(labeled),
            "label_routes": {r: int(c) for r, c in routes},
            "derived_keys": int(derived),
            "quarantined": sum(int(c) for _, c in reasons),
            "quarantine_reasons": {r: int(c) for r, c in reasons},
            "sources": int(sources),
            "ingests": int(n_ingests),
            "last_ingest": last.isoformat() if last else None,
        }

    def quarantine(self, *, reason: str | None = None, source: str | None = None,
                   limit: int | None = None) -> pa.Table:
        """The quarantined rows: source, line, field, reason, problems, raw text."""
        where, params = [], []
        if reason:
            where.append("reason = ?")
            params.append(reason)
        if source:
            where.append("source LIKE ?")
            params.append(f"%{source}%")
        sql = ("SELECT source, line, field, reason, problems, raw, ingest_id FROM quarantine"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY source, line" + (f" LIMIT {int(limit)}" if limit else ""))
        return self.con.sql(sql, params=params).to_arrow_table()

    def canonical_sql(self, *, extra: tuple[str, ...] = ("is_index", "label_source")) -> str:
        """SELECT of the 22 canonical columns (and ``extra``) of every incident."""
        cols = [c.name for c in COLUMNS] + list(extra)
        return f"SELECT {', '.join(cols)} FROM incidents"

    def export_parquet(self, out: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
        """Write the incidents as Parquet partitioned by year (``out/year=2015/...``),
        with their label and their ``key`` (the ID, or the key ingest gave an incident
        without one), so that Spark reads every incident (ingest ignores both).

        The files are written to a temporary folder beside ``out`` and renamed
        into place, so ``out`` is never half-written.
        """
        self.require_rows()
        out = Path(out)
        if out.exists() and not overwrite:
            raise StoreError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            self.con.execute(
                f"COPY ({self.canonical_sql(extra=('is_index', 'label_source', 'key'))} "
                f"ORDER BY date, key) TO '{_sql_str(str(tmp))}' "
                "(FORMAT parquet, PARTITION_BY (year), COMPRESSION zstd, ROW_GROUP_SIZE 122880)")
            old = None
            if out.exists():
                old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
                out.rename(old)
            tmp.rename(out)
            if old is not None:
                shutil.rmtree(old)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        files = sorted(out.rglob("*.parquet"))
        return {"out": str(out), "files": len(files), "rows": self.count(),
                "bytes": sum(f.stat().st_size for f in files)}


#: Bytes 8 to 12 of every DuckDB database file.
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_KINDS = ((b"PAR1", "a Parquet file"), (b"\x1f\x8b", "a gzip-compressed file"),
                (b"PK\x03\x04", "a zip file"), (b"SQLite format 3", "an SQLite database"))


def is_duckdb_file(path: Path) -> bool:
    """Whether ``path`` is a file named ``.duckdb``/``.db`` or holding a DuckDB database
    (its bytes 8 to 12): given where data is expected, it is read as a store."""
    if not path.is_file():
        return False
    if path.suffix in (".duckdb", ".db"):
        return True
    try:
        with path.open("rb") as f:
            return f.read(12)[8:12] == _DUCKDB_MAGIC
    except OSError:
        return False


def _describe(head: bytes) -> str:
    """What a file that is not a DuckDB database looks like, from its first bytes."""
    if not head:
        return "an empty file"
    for magic, kind in _MAGIC_KINDS:
        if head.startswith(magic):
            return kind
    if b"\0" in head:
        return "a binary file"
    # the first 4 KiB may end inside a character: replace what does not decode
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text[:1] in ("{", "["):
        return "a JSON file"
    if "," in text.split("\n", 1)[0]:
        return "a CSV file"
    return "a text file"


def _refuse_other_files(path: Path) -> None:
    """Raise :class:`StoreError` if ``path`` exists and is not a DuckDB database file."""
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a crimeclass store")
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return  # a new store
    except OSError as e:
        raise StoreError(f"cannot open the store {path}: {e}") from e
    if head[8:12] != _DUCKDB_MAGIC:
        raise StoreError(f"{path} is not a crimeclass store: it is {_describe(head)}, not a "
                         "DuckDB database; not changed (give --store a new file name, "
                         "e.g. crimeclass.duckdb)")


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
