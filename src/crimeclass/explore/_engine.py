"""What an engine does for the catalog, and the table form both engines return."""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

__all__ = ["Engine", "conform"]


class Engine(Protocol):
    """Runs the catalog's SQL (DuckDB dialect) on one engine.

    Attributes
    ----------
    name : str
        ``"duckdb"`` or ``"spark"``.
    source : str
        The relation holding the stored incidents (the 22 canonical columns and
        the label), that :func:`crimeclass.explore.relations` selects from.
    detail : str
        What runs, for the report (engine version, master, input).
    """

    name: str
    source: str
    detail: str

    def define(self, name: str, sql: str, *, materialize: bool = False) -> None:
        """Create or replace the view ``name`` as ``sql`` (computed once if ``materialize``)."""

    def table(self, sql: str) -> pa.Table:
        """Run ``sql`` and return its rows, in order, as :func:`conform`-ed Arrow."""

    def close(self) -> None:
        """Release what the engine holds (a session it started, a connection)."""


def _conform_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def conform(table: pa.Table) -> pa.Table:
    """One Arrow type per kind of value, whatever the engine: int64, float64, string,
    bool, date32; every field nullable.

    >>> conform(pa.table({"n": pa.array([1], pa.int32())})).schema.field("n").type
    DataType(int64)
    """
    schema = pa.schema([pa.field(f.name, _conform_type(f.type), nullable=True)
                        for f in table.schema])
    return table.cast(schema)
