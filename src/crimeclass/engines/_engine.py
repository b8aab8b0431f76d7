"""What an engine does: runs SQL written in DuckDB's dialect and returns Arrow."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import pyarrow as pa

__all__ = ["Engine"]


class Engine(Protocol):
    """Runs SQL in DuckDB's dialect on one engine (:class:`DuckDBEngine`, :class:`SparkEngine`).

    Attributes
    ----------
    name : str
        ``"duckdb"`` or ``"spark"``.
    source : str
        The relation holding the stored incidents (the store's columns and labels).
    detail : str
        What runs, for reports (engine version, master, input).
    has_quarantine : bool
        Whether the ``quarantine`` relation holds the store's quarantine (else it is empty).
    """

    name: str
    source: str
    detail: str
    has_quarantine: bool

    def define(self, name: str, sql: str, *, materialize: bool = False) -> None:
        """Create or replace the view ``name`` as ``sql`` (computed once if ``materialize``)."""

    def register(self, name: str, table: pa.Table) -> None:
        """Create or replace the view ``name`` holding the rows of ``table``."""

    def table(self, sql: str) -> pa.Table:
        """Run ``sql`` and return its rows, in order, as :func:`conform`-ed Arrow."""

    def reader(self, sql: str, batch_rows: int = 1 << 20) -> pa.RecordBatchReader:
        """Run ``sql`` and stream its rows, in order, with the engine's own Arrow types."""

    def memory_limit(self, limit: str | None) -> AbstractContextManager[None]:
        """A block that runs with the memory limit ``limit`` (None: as configured)."""

    def close(self) -> None:
        """Release what the engine holds (a session it started, a connection it opened)."""
