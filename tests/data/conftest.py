"""Fixtures of the live-source tests: the real rows they serve, and the file-ingest oracle."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from crimeclass.data import Store
from tests.data.loopback import bigquery_table, portal_sample_files, raw_rows, soda_records


@pytest.fixture(scope="session")
def portal_raw() -> pa.Table:
    """The real rows the servers hold: the sample's 22-column portal files, 2,000 IDs."""
    return raw_rows(portal_sample_files())


@pytest.fixture(scope="session")
def records(portal_raw: pa.Table) -> list[dict]:
    return soda_records(portal_raw)


@pytest.fixture(scope="session")
def bq_table(portal_raw: pa.Table) -> pa.Table:
    return bigquery_table(portal_raw)


@pytest.fixture(scope="session")
def file_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The oracle: the same files loaded by the file ingest (read it, do not write)."""
    path = tmp_path_factory.mktemp("files") / "files.duckdb"
    with Store(path) as st:
        for f in portal_sample_files():
            st.ingest_path(f).check()
    return path
