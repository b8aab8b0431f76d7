"""The BigQuery source against a real gRPC BigQuery Read server on loopback (the real sample)."""

from __future__ import annotations

from datetime import datetime

import grpc
import pyarrow as pa
import pytest

from crimeclass.data import BigQuerySource, RowFilter, SourceError, Store
from crimeclass.data._schema import BIGQUERY_ARROW_SCHEMA, BIGQUERY_NAMES, BIGQUERY_TYPES
from crimeclass.data.sources._bigquery import SELECTED_FIELDS
from tests.data.loopback import TABLE_PATH, BigQueryReadServer, incidents


@pytest.fixture
def server(bq_table):
    with BigQueryReadServer(bq_table, batch_rows=250) as srv:
        yield srv


def source(server: BigQueryReadServer, **kwargs) -> BigQuerySource:
    return BigQuerySource(project="billing-project", endpoint=server.endpoint, plaintext=True,
                          **kwargs)


def test_the_bigquery_schema_maps_onto_the_canonical_one(bq_table):
    assert (BIGQUERY_TYPES["unique_key"], BIGQUERY_TYPES["date"], BIGQUERY_TYPES["beat"],
            BIGQUERY_TYPES["x_coordinate"], BIGQUERY_TYPES["arrest"]) == (
        "INTEGER", "TIMESTAMP", "INTEGER", "FLOAT", "BOOLEAN")
    assert BIGQUERY_NAMES["unique_key"] == "id"
    assert bq_table.schema == BIGQUERY_ARROW_SCHEMA
    assert BIGQUERY_ARROW_SCHEMA.field("date").type == pa.timestamp("us", tz="UTC")


def test_full_load_over_parallel_streams_equals_the_file_ingest(server, file_store, tmp_path):
    server.break_stream = (1, 2)  # stream 1 drops after two batches; the client reconnects
    src = source(server, streams=3)
    assert len(src.session.streams) == 3
    path = tmp_path / "bq.duckdb"
    with Store(path) as st:
        account = st.ingest(src)
    assert (account.read, account.inserted, account.quarantined) == (2000, 2000, 0)
    assert incidents(path).equals(incidents(file_store))
    resumed = [(s.rsplit("/", 1)[1], offset) for s, offset in server.reads if offset]
    assert resumed == [("1", 500)]  # picked up at the row where it broke, nothing twice
    request = server.sessions[0]
    assert request.parent == "projects/billing-project"
    assert request.max_stream_count == 3
    assert request.read_session.table == TABLE_PATH
    assert list(request.read_session.read_options.selected_fields) == list(SELECTED_FIELDS)


def test_the_row_restriction_is_pushed_down(server, file_store, tmp_path):
    row_filter = RowFilter(2015, 2024, updated_since=datetime(2020, 1, 1, 12, 30))
    path = tmp_path / "bq.duckdb"
    with Store(path) as st:
        account = st.ingest(source(server, row_filter=row_filter))
    restriction = server.sessions[0].read_session.read_options.row_restriction
    assert restriction == ("year >= 2015 AND year <= 2024 AND "
                           "updated_on > TIMESTAMP '2020-01-01 12:30:00.000000'")
    expected = incidents(file_store, "year BETWEEN 2015 AND 2024 AND "
                                     "updated_on > TIMESTAMP '2020-01-01 12:30:00'")
    assert 0 < account.read == expected.num_rows < 2000
    assert incidents(path).equals(expected)


@pytest.mark.parametrize(("failure", "match"), [
    pytest.param((grpc.StatusCode.PERMISSION_DENIED, "bigquery.readsessions.create denied"),
                 r"permission denied .*billing project 'billing-project'.*Read Session User",
                 id="403"),
    pytest.param((grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication"),
                 r"credentials refused .*may be expired.*gcloud auth application-default login",
                 id="expired-credentials"),
    pytest.param("garbage", r"not an Arrow record batch", id="garbage"),
])
def test_server_errors_name_the_source_and_change_nothing(
        server, file_store, tmp_path, failure, match):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(file_store.read_bytes())
    before = incidents(path)
    if failure == "garbage":
        server.garbage = True
    else:
        server.session_error = failure
    with Store(path) as st, pytest.raises(SourceError, match=match) as err:
        st.ingest(source(server))
    assert err.value.source == "bigquery:bigquery-public-data.chicago_crime.crime"
    assert incidents(path).equals(before)


def test_a_wrong_table_is_named(server):
    with pytest.raises(SourceError, match=r"not found .*check --table"):
        source(server, table="bigquery-public-data.chicago_crime.crimes")
    with pytest.raises(ValueError, match="project.dataset.table"):
        source(server, table="crime")
