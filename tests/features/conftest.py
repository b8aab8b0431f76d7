"""Fixtures of the feature tests: the sample store's incidents of 2012-2017 in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from crimeclass.engines import attach, connect


@pytest.fixture
def incidents_con(sample_store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB holding a copy of the sample's incidents (a table to change)."""
    con = connect()
    attach(con, sample_store, "s")
    con.execute("CREATE TABLE incidents AS SELECT * FROM s.incidents "
                "WHERE date >= TIMESTAMP '2012-01-01' AND date < TIMESTAMP '2018-01-01'")
    con.execute("DETACH s")
    yield con
    con.close()
