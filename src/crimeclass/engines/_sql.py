"""SQL text helpers shared by every engine: quoting, and one Arrow form of results."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

__all__ = ["conform", "sql_literal"]


def sql_literal(value: str | Path) -> str:
    """``value`` as a SQL string literal, quotes doubled (for DuckDB and Spark alike).

    Statements that cannot take a bound parameter (``SET``, ``ATTACH``, ``COPY ... TO``)
    paste paths and settings in with this.

    >>> sql_literal("/tmp/o'brien.duckdb")
    "'/tmp/o''brien.duckdb'"
    """
    return "'" + str(value).replace("'", "''") + "'"


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
