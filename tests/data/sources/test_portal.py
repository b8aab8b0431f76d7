"""The portal's web API source against a real SODA server on loopback, serving the real sample."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import requests

from crimeclass.data import (
    Portal,
    RetryPolicy,
    RowFilter,
    SourceError,
    Store,
    ingest_portal,
    sync_portal,
)
from crimeclass.data._rowfilter import soda_timestamp
from crimeclass.data.sources import SodaClient, soda_batch
from crimeclass.data.sources._soda import _retry_after
from tests.data.loopback import SodaServer, _row_id, incidents

PAGE = 400  # 2,000 rows: 5 pages
FAST = RetryPolicy(attempts=3, backoff=0.001, max_wait=0.01)


@pytest.fixture
def server(records):
    with SodaServer(records) as srv:
        yield srv


def portal(server: SodaServer, **kwargs) -> Portal:
    return Portal(url=server.url, page_rows=PAGE, retry=FAST, **kwargs)


def page_requests(server: SodaServer) -> list[dict]:
    return [r for r in server.requests if "$order" in r]


def page_keys(server: SodaServer) -> list[str | None]:
    """The ``:id`` after which each page request asks for rows (None: from the start)."""
    keys = []
    for r in page_requests(server):
        found = re.search(r":id > '([^']*)'$", r.get("$where", ""))
        keys.append(found.group(1) if found else None)
    return keys


def first_keys(records: list[dict], start: int = 0) -> list[str | None]:
    """The keys of the page requests of a run over ``records`` that starts at ``start``."""
    ids = sorted(_row_id(r["id"]) for r in records)
    return [ids[i - 1] if i else None for i in range(start, len(ids), PAGE)]


def state(path: Path) -> list[tuple]:
    with Store(path, read_only=True) as st:
        return st.con.execute("SELECT scope, cursor, next_offset, pages FROM sync_state"
                              ).fetchall()


# ------------------------------------------------------------- full load


def test_full_load_equals_the_file_ingest_of_the_same_rows(server, file_store, tmp_path):
    path = tmp_path / "portal.duckdb"
    with Store(path) as st:
        run = ingest_portal(st, portal(server))
    summary = run.summary()
    assert (summary["read"], summary["inserted"], summary["pages"]) == (2000, 2000, 5)
    assert all(a.balanced for a in run.accounts)
    assert incidents(path).equals(incidents(file_store))
    pages = page_requests(server)
    assert page_keys(server) == first_keys(server.records)  # each page after the last :id
    assert {(r["$select"], r["$order"], r["$limit"]) for r in pages} == {
        (":id, *", ":id", "400")}
    assert state(path) == []  # a completed one-off ingest leaves no run behind


def test_filters_are_pushed_into_where(server, file_store, tmp_path):
    since = datetime(2025, 3, 1)
    path = tmp_path / "portal.duckdb"
    with Store(path) as st:
        run = ingest_portal(st, portal(server), RowFilter(2023, 2025, since))
    where = page_requests(server)[0]["$where"]
    assert where.startswith("year >= 2023 AND year <= 2025 AND updated_on > "
                            "'2025-03-01T00:00:00.000' AND updated_on <= '")
    expected = incidents(file_store, "year BETWEEN 2023 AND 2025 "
                                     "AND updated_on > TIMESTAMP '2025-03-01'")
    assert 0 < run.summary()["read"] == expected.num_rows < 2000
    assert incidents(path).equals(expected)


# ------------------------------------------------------------ incremental


def test_sync_upserts_exactly_the_rows_that_changed(records, tmp_path):
    # Yesterday the portal held all but three records. Today those three are
    # published and seven others are updated (an arrest recorded).
    today = "2025-11-02T15:40:00.000"
    later = [dict(r) for r in records]
    changed = set()
    for r in later[10:1400:200]:
        r["arrest"], r["updated_on"] = not r["arrest"], today
        changed.add(r["id"])
    for r in later[:3]:
        r["updated_on"] = today
    published = {r["id"] for r in later[:3]}
    path = tmp_path / "sync.duckdb"
    with SodaServer(records[3:]) as srv:
        with Store(path) as st:
            first = sync_portal(st, portal(srv))  # an empty store: every row
            newest = st.con.execute("SELECT max(updated_on) FROM incidents").fetchall()[0][0]
        assert (first.summary()["read"], first.cursor) == (1997, newest)
        srv.replace(later)
        srv.requests.clear()
        with Store(path) as st:
            run = sync_portal(st, portal(srv))
        s = run.summary()
        assert (s["read"], s["updated"], s["inserted"], s["unchanged"], s["quarantined"]) == (
            10, 7, 3, 0, 0)
        since = f"updated_on > '{soda_timestamp(newest)}'"
        assert srv.requests[0]["$where"] == since
        assert page_requests(srv)[0]["$where"] == (
            f"{since} AND updated_on <= '{today}'")
        with Store(path, read_only=True) as st:
            now = dict(st.con.execute("SELECT id::VARCHAR, arrest FROM incidents WHERE "
                                      "updated_on = TIMESTAMP '2025-11-02 15:40:00'").fetchall())
        assert set(now) == changed | published
        assert all(now[r["id"]] == r["arrest"] for r in later if r["id"] in now)
        with Store(path) as st:  # nothing new since
            again = sync_portal(st, portal(srv)).summary()
        assert (again["read"], again["pages"]) == (0, 0)
    # the store holds what a fresh full load of today's portal holds
    with SodaServer(later) as srv, Store(tmp_path / "fresh.duckdb") as st:
        ingest_portal(st, portal(srv))
    assert incidents(path).equals(incidents(tmp_path / "fresh.duckdb"))


def test_a_sync_after_a_file_ingest_asks_for_newer_rows_only(server, file_store, tmp_path):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(file_store.read_bytes())
    with Store(path) as st:
        run = sync_portal(st, portal(server))
    assert run.summary()["read"] == 0
    assert server.requests == [{"$select": "max(updated_on) AS high, count(*) AS n",
                                "$where": "updated_on > '2025-10-08T15:45:03.000'"}]


# -------------------------------------------------------- interrupt, resume


@pytest.mark.parametrize(("page", "kind"), [
    pytest.param(1, "503", id="page1-503"),
    pytest.param(2, "cut", id="page2-cut-connection"),
    pytest.param(3, "garbage", id="page3-garbage"),
    pytest.param(4, "429", id="page4-429"),
    pytest.param(5, "ctrl-c", id="page5-ctrl-c"),
])
def test_an_interrupted_sync_resumes_losing_and_repeating_nothing(
        server, file_store, tmp_path, page, kind):
    path = tmp_path / "sync.duckdb"
    offset = (page - 1) * PAGE

    def interrupt(done, total):
        if kind == "ctrl-c" and done == offset:
            raise KeyboardInterrupt

    if kind != "ctrl-c":
        server.fail(kind, offset=offset, times=99, retry_after="0")
    with Store(path) as st, pytest.raises((SourceError, KeyboardInterrupt)):
        sync_portal(st, portal(server), on_progress=interrupt)
    assert state(path) == [("sync", None, offset, page - 1)]
    with Store(path, read_only=True) as st:
        assert st.count() == offset
    server.heal()
    server.requests.clear()
    with Store(path) as st:
        run = sync_portal(st, portal(server))
    s = run.summary()
    assert run.resumed_at == offset
    assert (s["read"], s["inserted"], s["unchanged"], s["updated"]) == (2000 - offset,) * 2 + (
        0, 0)
    assert page_keys(server) == first_keys(server.records, offset)
    assert incidents(path).equals(incidents(file_store))
    assert state(path)[0][1:] == (run.cursor, None, None)
    with Store(path, read_only=True) as st:  # every page once in the log, in order
        lines = st.con.execute("SELECT source FROM ingests ORDER BY ingest_id").fetchall()
    assert [int(s.split(" page ")[1].split()[0]) for (s,) in lines] == [1, 2, 3, 4, 5]


def test_transient_failures_are_retried_within_the_run(server, file_store, tmp_path):
    server.fail("500", offset=0)
    server.fail("429", offset=400, retry_after="0")
    server.fail("cut", offset=800)
    server.fail("503", offset=1200, times=2)
    server.fail("cut-unsized", offset=1600)
    path = tmp_path / "portal.duckdb"
    with Store(path) as st:
        run = ingest_portal(st, portal(server))
    assert (run.retries, run.summary()["read"]) == (6, 2000)
    assert incidents(path).equals(incidents(file_store))


def test_backoff_doubles_and_honours_retry_after():
    policy = RetryPolicy(attempts=6, backoff=0.5, max_wait=3)
    assert [policy.wait(a) for a in range(5)] == [0.5, 1, 2, 3, 3]
    assert policy.wait(0, retry_after=2.5) == 2.5
    assert policy.wait(0, retry_after=3600) == 3600  # whatever its size
    assert _retry_after("7") == 7
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") < 0
    assert _retry_after(None) is None


# -------------------------------------------------------------- bad input


def test_bad_records_are_quarantined_with_page_and_offset(records, file_store, tmp_path):
    bad = [dict(r) for r in records]
    bad[5]["beat"] = {"value": bad[5]["beat"]}  # wrong JSON type
    del bad[417]["id"]  # missing field
    bad[901]["colour"] = "red"  # unknown field
    bad[1999]["arrest"] = "maybe"  # right type, bad value: validation's verdict
    bad[3][":@computed_region_awaf_s7ux"] = "24"  # known extras are fine
    with SodaServer(bad) as srv:
        path = tmp_path / "portal.duckdb"
        with Store(path) as st:
            run = ingest_portal(st, portal(srv))
            q = st.quarantine().to_pylist()
        # the records in the order the run saw them
        served = requests.get(portal(srv).resource, timeout=10, params={
            "$select": ":id, *", "$order": ":id", "$limit": "50000",
            "$where": run.where}).json()
    s = run.summary()
    assert (s["read"], s["inserted"], s["quarantined"]) == (2000, 1996, 4)
    assert s["quarantine_reasons"] == {"wrong_type": 1, "missing_field": 1,
                                       "unknown_field": 1, "bad_boolean": 1}
    offsets = {json.dumps(r, sort_keys=True): i for i, r in enumerate(served)}
    where = {}
    for row in q:
        page = int(row["source"].split(" page ")[1].split()[0])
        assert row["line"] // PAGE + 1 == page
        where[row["reason"]] = (page, row["line"], row["field"])
        if row["reason"] != "bad_boolean":
            raw = json.loads(row["raw"])
            assert (raw["page"], raw["offset"]) == (page, row["line"])
            assert offsets[json.dumps(raw["record"], sort_keys=True)] == row["line"]
    assert where["wrong_type"][2] == "beat"
    assert where["missing_field"][2] == "id"
    assert where["unknown_field"][2] == "colour"
    assert where["bad_boolean"][2] == "Arrest"
    good = {r["id"] for i, r in enumerate(bad) if i not in (5, 417, 901, 1999)}
    with Store(path, read_only=True) as st:
        stored = {str(i) for (i,) in st.con.execute("SELECT id FROM incidents").fetchall()}
    assert stored == good


@pytest.mark.parametrize(("setup", "token", "match"), [
    pytest.param("tokens", "expired-token", r"access refused \(HTTP 403.*check the app token "
                 r"in \$SODA_APP_TOKEN \(it may be expired", id="expired-token"),
    pytest.param("tokens", None, r"HTTP 403.*set \$SODA_APP_TOKEN", id="no-token"),
    pytest.param("garbage", None, r"not SODA JSON \(HTTP 200, text/html.*check --url",
                 id="garbage"),
    pytest.param("403", None, r"access refused \(HTTP 403", id="403"),
    pytest.param("dataset", None, r"not found \(HTTP 404.*check --url .*--dataset \(abcd-1234\)",
                 id="wrong-dataset"),
    pytest.param("down", None, r"gave up after 3 tries \(HTTP 503", id="server-down"),
])
def test_server_errors_name_the_source_and_change_nothing(
        records, file_store, tmp_path, setup, token, match):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(file_store.read_bytes())
    before = incidents(path)
    with SodaServer(records, app_tokens={"good"} if setup == "tokens" else None) as srv:
        if setup in ("garbage", "403"):
            srv.fail(setup, times=99)
        if setup == "down":
            srv.fail("503", times=99)
        dataset = "abcd-1234" if setup == "dataset" else "ijzp-q8t2"
        with Store(path) as st, pytest.raises(SourceError, match=match) as err:
            sync_portal(st, portal(srv, dataset=dataset, app_token=token))
        assert err.value.source == f"{srv.url}/resource/{dataset}.json"
    assert incidents(path).equals(before)
    assert state(path) == []


def test_the_app_token_is_sent(records, tmp_path):
    with SodaServer(records, app_tokens={"tok"}) as srv, Store(tmp_path / "s.duckdb") as st:
        run = ingest_portal(st, portal(srv, app_token="tok"), RowFilter(2015, 2016))
        assert run.summary()["read"] > 0
        assert {h.get("X-App-Token") for h in srv.headers} == {"tok"}


def test_a_page_becomes_raw_text_as_validation_wants():
    b = soda_batch([{"id": "13868345", "date": "2025-01-01T00:00:00.000", "beat": 1834,
                     "x_coordinate": 1179279.5, "domestic": False, "updated_on": "x",
                     "location": {"latitude": "41.9"}}], first_offset=7, page=2)
    row = b.to_pylist()[0]
    assert (row["beat"], row["x_coordinate"], row["domestic"], row["location"]) == (
        "1834", "1179279.5", "false", None)
    assert (row["_line"], row["_reject"]) == (7, None)


def test_a_record_without_the_required_fields_is_rejected_unless_none_are_required():
    records = [{"date": "2025-01-01T00:00:00.000", "beat": "1834"}]
    required = soda_batch(records, first_offset=0, page=0).to_pylist()[0]
    assert required["_reject"] == "id:missing_field;updated_on:missing_field"
    assert required["_raw"] is not None
    scored = soda_batch(records, first_offset=0, page=0, required=()).to_pylist()[0]
    assert (scored["_reject"], scored["_raw"], scored["beat"]) == (None, None, "1834")


# ------------------------------------------------- the portal changes meanwhile


def _by_row_id(records: list[dict]) -> list[dict]:
    """The records in the order the portal serves them (``$order=:id``)."""
    return sorted(records, key=lambda r: _row_id(r["id"]))


@pytest.mark.parametrize("when", ["between-pages", "before-resume"])
def test_rows_changed_during_a_run_are_neither_lost_nor_missed_by_the_next_sync(
        records, tmp_path, when):
    # While a sync reads the portal, the portal updates a row already read and one not yet
    # read, publishes a new row, and deletes a row already read and one not yet read.
    today = "2025-11-02T15:40:00.000"
    served = _by_row_id(records)
    read_early, read_late = served[100], served[1500]
    gone_read, gone_unread = served[200]["id"], served[1700]["id"]
    new = dict(served[5], id="99999999", case_number="JZ999999", updated_on=today)

    def change(srv: SodaServer) -> None:
        later = []
        for r in records:
            if r["id"] in (gone_read, gone_unread):
                continue
            if r["id"] in (read_early["id"], read_late["id"]):
                r = dict(r, arrest=not r["arrest"], updated_on=today)
            later.append(r)
        srv.replace([*later, new])

    path = tmp_path / "sync.duckdb"
    with SodaServer(records) as srv:
        if when == "between-pages":
            pages = []

            def on_request(params):
                if "$order" in params:
                    pages.append(params)
                    if len(pages) == 3:  # two pages read: the third comes from the new data
                        change(srv)

            srv.before_request = on_request
            with Store(path) as st:
                sync_portal(st, portal(srv))
            srv.before_request = None
        else:
            srv.fail("503", offset=2 * PAGE, times=99)
            with Store(path) as st, pytest.raises(SourceError):
                sync_portal(st, portal(srv))
            change(srv)
            srv.heal()
            with Store(path) as st:
                assert sync_portal(st, portal(srv)).resumed_at == 2 * PAGE
        with Store(path, read_only=True) as st:
            stored = {str(i) for (i,) in st.con.execute("SELECT id FROM incidents").fetchall()}
        # every row of the run's window is stored, but those that left it before being read
        assert stored == {r["id"] for r in records} - {read_late["id"], gone_unread}
        with Store(path) as st:  # the next sync brings exactly the changes
            s = sync_portal(st, portal(srv)).summary()
        assert (s["read"], s["updated"], s["inserted"], s["unchanged"]) == (3, 1, 2, 0)
        fresh = tmp_path / "fresh.duckdb"
        with Store(fresh) as st:
            ingest_portal(st, portal(srv))
    # the store holds the portal as it is now, and the deleted row it had read (the
    # portal publishes no deletions)
    assert incidents(path, f"id <> {gone_read}").equals(incidents(fresh))
    assert incidents(path, f"id = {gone_read}").num_rows == 1


# ------------------------------------------------------ retries, count answers


def test_a_retry_after_of_any_size_is_honoured_within_the_deadline(server):
    server.fail("429", retry_after="3600")  # an hour
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, backoff=0.001, max_wait=0.01, deadline=7200)
    with SodaClient(Portal(url=server.url, retry=policy), sleep=slept.append) as client:
        answer = client.get({"$select": "count(*) AS n"})
    assert (slept, answer, client.retries) == ([3600], [{"n": "2000"}], 1)


def test_a_retry_after_past_the_deadline_gives_up_at_once_and_says_why(server):
    server.fail("429", retry_after="3600", times=99)
    slept: list[float] = []
    policy = RetryPolicy(attempts=6, deadline=600)
    with SodaClient(Portal(url=server.url, retry=policy), sleep=slept.append) as client, \
            pytest.raises(SourceError, match=r"gave up after 1 try \(HTTP 429 .*past the 600 s "
                                             r"deadline \(--retry-deadline\)") as err:
        client.get({"$select": "count(*) AS n"})
    assert (slept, client.requests) == ([], 1)
    assert err.value.source == f"{server.url}/resource/ijzp-q8t2.json"


@pytest.mark.parametrize(("field", "match"), [
    pytest.param("n", r"the answer to the count query .* has no count \(n\)", id="no-count"),
    pytest.param("high", r"counts 2,000 rows but has no newest updated_on \(high\)",
                 id="no-newest"),
])
def test_a_count_answer_without_its_count_or_newest_time_is_an_error(
        server, tmp_path, field, match):
    server.fail(f"without-{field}")
    path = tmp_path / "s.duckdb"
    with Store(path) as st, pytest.raises(SourceError, match=match) as err:
        sync_portal(st, portal(server))
    assert err.value.source == f"{server.url}/resource/ijzp-q8t2.json"
    assert state(path) == []
    with Store(path, read_only=True) as st:
        assert st.count() == 0
