"""The BigQuery source against a real gRPC BigQuery Read server on loopback (the real sample)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from crimeclass.data import BigQuerySource, RowFilter, SourceError, Store
from crimeclass.data._schema import BIGQUERY_ARROW_SCHEMA, BIGQUERY_NAMES, BIGQUERY_TYPES
from crimeclass.data.sources import _bigquery, ingest_bigquery
from crimeclass.data.sources._bigquery import SELECTED_FIELDS, default_streams
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


@pytest.mark.parametrize(("cores", "streams"), [(1, 1), (2, 1), (3, 1), (8, 4)])
def test_the_streams_are_half_the_cores_unless_told(server, monkeypatch, cores, streams):
    monkeypatch.setattr(_bigquery.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert default_streams() == streams
    assert len(source(server).session.streams) == streams  # asked of the server
    assert len(source(server, streams=3).session.streams) == 3


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


# ------------------------------------------------------------ runs: incremental, resumable


def run(st: Store, server: BigQueryReadServer, **kwargs):
    return ingest_bigquery(st, project="billing-project", endpoint=server.endpoint,
                           plaintext=True, streams=3, commit_rows=500, **kwargs)


def state(path) -> tuple:
    with Store(path, read_only=True) as st:
        return st.con.execute("SELECT cursor, run_where, run_offsets FROM sync_state").fetchall()[0]


def newest(table: pa.Table) -> datetime:
    return pc.max(table.column("updated_on")).as_py().replace(tzinfo=None)


def updated(table: pa.Table, rows: list[int], when: datetime) -> pa.Table:
    """``table`` with ``rows`` updated at ``when``: a new description."""
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    mask_ = pa.array(mask)
    stamp = pa.scalar(when, pa.timestamp("us", tz="UTC"))
    table = table.set_column(table.schema.get_field_index("updated_on"), "updated_on",
                             pc.if_else(mask_, stamp, table.column("updated_on")))
    i = table.schema.get_field_index("description")
    return table.set_column(i, "description",
                            pc.if_else(mask_, pa.scalar("UPDATED"), table.column("description")))


def test_a_second_run_reads_only_the_rows_updated_since_the_first(server, file_store, tmp_path):
    path = tmp_path / "bq.duckdb"
    with Store(path) as st:
        first = run(st, server)
    assert (first.summary()["read"], first.summary()["inserted"], first.resumed) == (2000, 2000,
                                                                                     False)
    assert len(first.accounts) == 4  # committed 500 rows at a time
    assert incidents(path).equals(incidents(file_store))
    high = newest(server.table)
    assert first.cursor == high and state(path) == (high, None, None)

    later = high + timedelta(days=2)
    server.table = updated(server.table, [3, 700, 1999], later)
    with Store(path) as st:
        second = run(st, server).summary()
    restriction = server.sessions[-1].read_session.read_options.row_restriction
    assert restriction == f"updated_on > TIMESTAMP '{high:%Y-%m-%d %H:%M:%S.%f}'"
    assert (second["read"], second["updated"], second["inserted"]) == (3, 3, 0)
    assert second["cursor"] == later.isoformat()
    expected = incidents(file_store).column("description").to_pylist()
    for i in (3, 700, 1999):  # the loopback table is in the sample's order, not the key's
        key = server.table.column("unique_key")[i].as_py()
        with Store(path, read_only=True) as st:
            got = st.con.execute("SELECT description, updated_on FROM incidents WHERE key = ?",
                                 [key]).fetchall()
        assert got == [("UPDATED", later)]
    with Store(path, read_only=True) as st:
        assert st.count() == len(expected)

    with Store(path) as st:
        third = run(st, server).summary()
    assert (third["read"], third["cursor"]) == (0, later.isoformat())


def test_a_run_ends_checkpointed_with_the_vacuum_setting_as_it_was(server, tmp_path):
    # the run's last write (its cursor) goes into the database file at once; after a
    # run that only appended, that checkpoint skips the vacuum as each part's did
    path = tmp_path / "bq.duckdb"
    wal = tmp_path / "bq.duckdb.wal"
    with Store(path) as st:
        default = st.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchall()
        first = run(st, server)
        assert all(a.appended_only for a in first.accounts)
        assert not wal.exists() or wal.stat().st_size == 0
        assert st.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchall() == default
    server.table = updated(server.table, [5], newest(server.table) + timedelta(days=1))
    with Store(path) as st:
        second = run(st, server)
        assert not second.accounts[0].appended_only  # an update: its checkpoint vacuums
        assert not wal.exists() or wal.stat().st_size == 0
        assert st.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchall() == default


class Stop(Exception):
    pass


def interrupted(path, server) -> int:
    """A run stopped after its first part is stored; the rows it stored."""
    def stop(done: int, total: int) -> None:
        raise Stop

    with Store(path) as st, pytest.raises(Stop):
        run(st, server, on_progress=stop)
    with Store(path, read_only=True) as st:
        return st.count()


def test_an_interrupted_run_resumes_from_the_offsets_it_stored(server, file_store, tmp_path):
    path = tmp_path / "bq.duckdb"
    stored = interrupted(path, server)
    assert 500 <= stored < 2000
    cursor, where, offsets = state(path)
    assert cursor is None and where == ""
    rows = json.loads(offsets)["rows"]
    assert sum(rows.values()) == stored
    reads = len(server.reads)
    with Store(path) as st:
        resumed = run(st, server)
    summary = resumed.summary()
    assert (resumed.resumed, resumed.new_session) == (True, False)
    assert len(server.sessions) == 1  # the same session
    assert (summary["read"], summary["inserted"]) == (2000 - stored, 2000 - stored)
    again = dict(server.reads[reads:])
    assert all(again.get(s, 0) == n for s, n in rows.items() if n)  # from where it stopped
    assert incidents(path).equals(incidents(file_store))
    assert state(path) == (newest(server.table), None, None)


def test_a_run_resumed_after_its_session_expired_reads_it_again(server, file_store, tmp_path):
    path = tmp_path / "bq.duckdb"
    stored = interrupted(path, server)
    server.forget_sessions()  # BigQuery keeps a session 6 hours
    with Store(path) as st:
        resumed = run(st, server)
    summary = resumed.summary()
    assert (resumed.resumed, resumed.new_session) == (True, True)
    assert len(server.sessions) == 2
    assert (summary["read"], summary["inserted"], summary["unchanged"]) == (
        2000, 2000 - stored, stored)
    assert incidents(path).equals(incidents(file_store))
    assert state(path) == (newest(server.table), None, None)


class TextSource(BigQuerySource):
    """The source as it was: every column handed to validation as text."""

    def ingest_batches(self):
        return self.batches()


def test_typed_columns_are_judged_as_their_text_would_be(bq_table, tmp_path):
    def set_at(table: pa.Table, name: str, row: int, value) -> pa.Table:
        i = table.schema.get_field_index(name)
        values = table.column(name).to_pylist()
        values[row] = value
        return table.set_column(i, table.schema.field(i), pa.array(values, table.schema[i].type))

    table = set_at(bq_table, "x_coordinate", 10, float("nan"))  # not a number
    table = set_at(table, "date", 20, None)  # missing date
    table = set_at(table, "year", 30, 1999)  # year mismatch
    table = set_at(table, "latitude", 40, 45.0)  # outside Chicago: nulled and flagged
    table = set_at(table, "beat", 50, 99999)  # out of range: nulled and flagged
    stores = {}
    with BigQueryReadServer(table, batch_rows=250) as srv:
        for kind, cls in (("typed", BigQuerySource), ("text", TextSource)):
            stores[kind] = tmp_path / f"{kind}.duckdb"
            with Store(stores[kind]) as st:
                account = st.ingest(cls(project="p", endpoint=srv.endpoint, plaintext=True,
                                        streams=1))  # one stream: the same line numbers
                assert (account.read, account.quarantined) == (2000, 3)
    assert incidents(stores["typed"]).equals(incidents(stores["text"]))
    reasons = {}
    for kind, path in stores.items():
        with Store(path, read_only=True) as st:
            reasons[kind] = st.con.execute("SELECT line, reason, problems FROM quarantine "
                                           "ORDER BY line").fetchall()
            flags = st.con.execute("SELECT count(*) FROM incidents WHERE len(flags) > 0"
                                   ).fetchall()[0][0]
            assert flags >= 2
    assert reasons["typed"] == reasons["text"]
    assert {r for _, r, _ in reasons["typed"]} == {"not_a_number", "missing_date",
                                                   "year_mismatch"}
