"""The store: upserts, keys for rows without ID, transactions, export."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimeclass.data import (
    HeaderError,
    IngestOptions,
    Reason,
    SourceError,
    Store,
    StoreError,
)

from .helpers import FIELD, fields, with_fields, write_csv

MODERN = 22_000  # first 2012 row of the main sample


def fingerprint(path: Path) -> tuple:
    """Everything stored, as one comparable value."""
    tables = ("incidents", "quarantine", "ingests")
    with Store(path, read_only=True) as s:
        return tuple(s.con.execute(f"""
            SELECT (SELECT count(*) FROM {t}),
                   (SELECT md5(string_agg(to_json(x)::VARCHAR, '|' ORDER BY to_json(x)::VARCHAR))
                    FROM {t} AS x)""").fetchall()[0] for t in tables)


def rows(store: Store, sql: str = "SELECT key, id, case_number FROM incidents ORDER BY key"):
    return store.con.execute(sql).fetchall()


def test_ingesting_the_same_files_twice_adds_nothing(sample_store_copy, sample):
    before = fingerprint(sample_store_copy)
    with Store(sample_store_copy) as s:
        accounts = [s.ingest_path(f) for f in sample]
    assert all(a.unchanged == a.read and a.inserted == a.updated == 0 for a in accounts)
    after = fingerprint(sample_store_copy)
    assert after[0] == before[0]  # incidents: exactly the same rows


def test_an_append_only_ingest_is_checkpointed_and_leaves_the_vacuum_setting_as_it_was(
        tmp_path, store, main_sample):
    def vacuum_tasks() -> str:
        return rows(store, "SELECT current_setting('max_vacuum_tasks')")[0][0]

    default = vacuum_tasks()
    store.ingest_path(main_sample)  # only appends: its checkpoint skips the vacuum
    assert vacuum_tasks() == default
    wal = Path(str(store.path) + ".wal")
    assert not wal.exists() or wal.stat().st_size < 1 << 20  # the rows are in the file
    store.ingest_path(main_sample)  # every row again: deletes, so the vacuum runs
    assert vacuum_tasks() == default


def test_a_newer_export_updates_by_id_and_an_older_one_does_not(tmp_path, store, sample_lines):
    header, lines = sample_lines
    base = lines[MODERN:MODERN + 10]
    store.ingest_path(write_csv(tmp_path / "v1.csv", header, base))
    newer = list(base)
    newer[3] = with_fields(base[3], Updated_On="01/01/2026 10:00:00 AM", Arrest="true")
    account = store.ingest_path(write_csv(tmp_path / "v2.csv", header, newer))
    assert (account.updated, account.unchanged, account.inserted) == (1, 9, 0)
    older = list(base)
    older[3] = with_fields(base[3], Updated_On="01/01/2012 10:00:00 AM", Arrest="false")
    account = store.ingest_path(write_csv(tmp_path / "v3.csv", header, older))
    assert (account.updated, account.unchanged, account.stale) == (0, 10, 1)
    case = fields(base[3])[1]
    got = rows(store, f"SELECT arrest, updated_on::VARCHAR FROM incidents "
                      f"WHERE case_number = '{case}'")
    assert got == [(True, "2026-01-01 10:00:00")]


def test_same_updated_on_but_different_content_counts_as_an_update(tmp_path, store, sample_lines):
    header, lines = sample_lines
    base = lines[MODERN:MODERN + 3]
    store.ingest_path(write_csv(tmp_path / "a.csv", header, base))
    changed = [with_fields(base[0], Block="001XX N CHANGED ST")] + list(base[1:])
    account = store.ingest_path(write_csv(tmp_path / "b.csv", header, changed))
    assert (account.updated, account.unchanged) == (1, 2)


def test_duplicate_ids_in_one_file_keep_the_newest_and_quarantine_the_rest(
        tmp_path, store, sample_lines):
    header, lines = sample_lines
    a = lines[MODERN]
    dup_old = with_fields(a, Updated_On="01/01/2013 10:00:00 AM", Block="OLD")
    dup_new = with_fields(a, Updated_On="01/01/2020 10:00:00 AM", Block="NEW")
    path = write_csv(tmp_path / "d.csv", header, [dup_new, lines[MODERN + 1], dup_old, a])
    account = store.ingest_path(path)
    assert (account.read, account.inserted, account.quarantined) == (4, 2, 2)
    assert account.quarantine_reasons == {Reason.DUPLICATE_ID: 2}
    assert rows(store, f"SELECT block FROM incidents WHERE id = {fields(a)[0]}") == [("NEW",)]
    q = store.quarantine().to_pylist()
    assert sorted(r["line"] for r in q) == [4, 5]
    assert all('"superseded_by_line":2' in r["raw"] for r in q)


@pytest.mark.parametrize("text_id", [False, True], ids=["typed_ids", "a_text_id"])
def test_duplicate_ids_are_found_across_statements(tmp_path, store, sample_lines, text_id):
    """A repeated ID in another block and statement than its first row is found, whether
    the IDs arrive typed or (a block with a bad ID) as text."""
    header, lines = sample_lines
    a = lines[MODERN]
    old = with_fields(a, Updated_On="01/01/2013 10:00:00 AM", Block="OLD")
    rest = list(lines[MODERN + 1:MODERN + 400])
    if text_id:  # the repeat shares a block with a bad ID: that block's IDs stay text
        rest[200] = with_fields(rest[200], ID="12x")
    path = write_csv(tmp_path / "d.csv", header, [a, *rest[:201], old, *rest[201:]])
    account = store.ingest_path(path, IngestOptions(statement_rows=50, block_bytes=1 << 13))
    assert account.quarantine_reasons == {Reason.DUPLICATE_ID: 1} | (
        {Reason.NOT_A_NUMBER: 1} if text_id else {})
    assert rows(store, f"SELECT block FROM incidents WHERE id = {fields(a)[0]}") == [
        (fields(a)[3],)]
    assert account.inserted == account.read - account.quarantined == 400 - text_id


def test_rows_without_id_get_stable_derived_keys(tmp_path, sample):
    slim = [f for f in sample if "slim" in f.name][0]
    keys = []
    for i in range(2):
        with Store(tmp_path / f"s{i}.duckdb") as s:
            first = s.ingest_path(slim)
            again = s.ingest_path(slim)
            assert first.inserted == first.read == first.derived_keys == 1000
            assert again.unchanged == again.read and again.inserted == 0
            keys.append(rows(s, "SELECT key FROM incidents ORDER BY key"))
            assert all(k < 0 for (k,) in keys[-1])
    assert keys[0] == keys[1]


def test_two_victims_without_id_stay_two_incidents(tmp_path, store, sample_lines):
    header, lines = sample_lines
    victim = with_fields(lines[0], ID="")
    path = write_csv(tmp_path / "v.csv", header, [victim, victim, lines[1]])
    first = store.ingest_path(path)
    again = store.ingest_path(path)
    assert first.inserted == 3 and again.unchanged == 3 and store.count() == 3


def test_a_row_without_id_does_not_twin_a_stored_incident(tmp_path, store, sample_lines):
    header, lines = sample_lines
    with_id = lines[MODERN:MODERN + 20]
    store.ingest_path(write_csv(tmp_path / "ids.csv", header, with_id))
    without = [with_fields(line, ID="") for line in with_id]
    account = store.ingest_path(write_csv(tmp_path / "noids.csv", header, without))
    assert account.matched_by_derived_key == 20 and account.inserted == 0
    assert store.count() == 20


def test_a_row_with_id_takes_over_the_stored_incident_without_id(tmp_path, store, sample_lines):
    header, lines = sample_lines
    with_id = lines[MODERN:MODERN + 20]
    without = [with_fields(line, ID="") for line in with_id]
    store.ingest_path(write_csv(tmp_path / "noids.csv", header, without))
    account = store.ingest_path(write_csv(tmp_path / "ids.csv", header, with_id))
    assert (account.updated, account.inserted) == (20, 0)
    assert rows(store, "SELECT count(*), count(id), bool_or(key_derived) FROM incidents") == [
        (20, 20, False)]
    again = store.ingest_path(write_csv(tmp_path / "noids2.csv", header, without))
    assert again.matched_by_derived_key == 20 and store.count() == 20


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_account_always_adds_up(tmp_path_factory, sample_lines, data):
    header, lines = sample_lines
    pool = lines[MODERN - 30:MODERN + 30]  # rows without and with ID
    store_path = tmp_path_factory.mktemp("acct") / "s.duckdb"
    expected_total = set()
    with Store(store_path) as s:
        for k in range(data.draw(st.integers(1, 3), label="files")):
            picks = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=25))
            out = []
            for i in picks:
                line = pool[i]
                action = data.draw(st.sampled_from(["keep", "noid", "newer", "bad", "dup"]))
                if action == "noid":
                    line = with_fields(line, ID="")
                elif action == "newer":
                    line = with_fields(line, Updated_On="06/01/2024 01:00:00 PM")
                elif action == "bad":
                    line = with_fields(line, Beat="?")
                elif action == "dup":
                    out.append(line)
                out.append(line)
            a = s.ingest_path(write_csv(tmp_path_factory.mktemp("f") / f"{k}.csv", header, out))
            assert a.read == len(out) == a.inserted + a.updated + a.unchanged + a.quarantined
            expected_total.add(k)
        stored = s.count()
        assert stored == rows(s, "SELECT count(DISTINCT key) FROM incidents")[0][0]


KILLER = textwrap.dedent("""
    import os, signal, sys, threading, time
    from crimeclass.data import IngestOptions, Store
    # Ctrl-C as in a terminal: a pytest-xdist worker's children inherit SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    store, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    waited = []
    def progress(done, total):
        if done > 2_000_000 and not waited:  # rows are being written
            waited.append(True)
            if mode == "in-statement":  # Ctrl-C while DuckDB runs the next statements
                threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
                return
            print("midway", flush=True)  # wait for the signal here, so that a busy
            time.sleep(60)  # machine cannot finish the ingest first
    try:
        with Store(store) as s:
            s.ingest_path(path, IngestOptions(statement_rows=2_000, block_bytes=1 << 18),
                          on_progress=progress)
    except KeyboardInterrupt as e:
        print(f"KeyboardInterrupt: {e}", flush=True)
        sys.exit(130)
    print("finished", flush=True)
""")


@pytest.mark.parametrize(("sig", "mode"), [
    pytest.param(signal.SIGKILL, "wait", id="SIGKILL"),
    pytest.param(signal.SIGINT, "wait", id="SIGINT"),
    pytest.param(signal.SIGINT, "in-statement", id="SIGINT-in-a-statement"),
])
def test_an_ingest_killed_midway_leaves_the_store_as_it_was(
        tmp_path, sample_store_copy, shared_data, sig, mode):
    # Ctrl-C reaches the caller as KeyboardInterrupt, also when it stops a DuckDB
    # statement (which DuckDB reports as a plain RuntimeError)
    before = fingerprint(sample_store_copy)
    script = tmp_path / "ingest.py"
    script.write_text(KILLER)
    with subprocess.Popen(
        [sys.executable, str(script), str(sample_store_copy),
         str(shared_data / "chicago_crimes_datastore_2016.csv.gz"), mode],
        stdout=subprocess.PIPE, text=True, env={**os.environ},
    ) as proc:
        assert proc.stdout is not None
        if mode == "wait":
            for line in proc.stdout:  # wait until rows are being written
                if line.startswith("midway"):
                    break
            proc.send_signal(sig)
        rest = proc.stdout.read()
        proc.wait(timeout=60)
    assert proc.returncode != 0 and "finished" not in rest
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "KeyboardInterrupt" in rest
    assert fingerprint(sample_store_copy) == before


def test_a_header_only_file_loads_nothing_and_says_so(tmp_path, sample_store_copy):
    before = fingerprint(sample_store_copy)[0]
    path = write_csv(tmp_path / "empty.csv", ",".join(FIELD) + "\n", [])
    with Store(sample_store_copy) as s:
        account = s.ingest_path(path)
    assert (account.read, account.inserted) == (0, 0)
    assert account.warnings == ["no rows: the file holds a header and no record"]
    assert fingerprint(sample_store_copy)[0] == before


def test_a_file_cut_off_midway_changes_nothing(tmp_path, sample_store_copy, main_sample):
    before = fingerprint(sample_store_copy)
    data = main_sample.read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with Store(sample_store_copy) as s, pytest.raises(SourceError, match="cut off"):
        s.ingest_path(cut, IngestOptions(statement_rows=5_000, block_bytes=1 << 18))
    assert fingerprint(sample_store_copy) == before


def test_a_wrong_header_changes_nothing(tmp_path, sample_store_copy):
    before = fingerprint(sample_store_copy)
    bad = write_csv(tmp_path / "bad.csv", "when,where\n", ["2020-01-01,here\n"])
    with Store(sample_store_copy) as s, pytest.raises(HeaderError, match="bad.csv, line 1"):
        s.ingest_path(bad)
    assert fingerprint(sample_store_copy) == before


def test_export_writes_parquet_partitioned_by_year(tmp_path, sample_store):
    out = tmp_path / "export"
    with Store(sample_store, read_only=True) as s:
        result = s.export_parquet(out)
        n = s.count()
        with pytest.raises(StoreError, match="exists"):
            s.export_parquet(out)
        s.export_parquet(out, overwrite=True)
    years = sorted(p.name for p in out.iterdir())
    assert years[0] == "year=2001" and "year=2017" in years
    table = pq.read_table(out)
    assert table.num_rows == result["rows"] == n
    assert {"iucr", "location", "is_index", "key", "year"} <= set(table.column_names)
    assert table.column("key").null_count == 0  # incidents without an ID keep their key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_store_errors_are_clear(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing" / "s.duckdb")
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with pytest.raises(StoreError, match="junk.duckdb"):
        Store(junk)
    with pytest.raises(StoreError, match="crimeclass ingest"):
        Store(tmp_path / "none.duckdb", read_only=True)


def test_gzip_sample_counts(main_sample):
    with gzip.open(main_sample, "rt") as f:
        assert sum(1 for _ in f) == 46_001


def _data_files(folder: Path, main_sample: Path) -> dict[str, Path]:
    """A CSV, a Parquet and a JSON file of incidents, and an empty file."""
    import duckdb

    csv = folder / "rows.csv"
    with gzip.open(main_sample, "rt") as f:
        csv.write_text("".join(next(f) for _ in range(50)))
    con = duckdb.connect()
    con.execute(f"COPY (FROM read_csv('{csv}')) TO '{folder / 'rows.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (FROM read_csv('{csv}')) TO '{folder / 'rows.json'}' (FORMAT json)")
    con.close()
    (folder / "empty.duckdb").write_bytes(b"")
    return {"a CSV file": csv, "a Parquet file": folder / "rows.parquet",
            "a JSON file": folder / "rows.json", "an empty file": folder / "empty.duckdb"}


@pytest.mark.parametrize("read_only", [False, True], ids=["write", "read"])
def test_a_data_file_is_refused_as_a_store_and_left_as_it_was(tmp_path, main_sample, sample,
                                                               read_only):
    # DuckDB opens a CSV, Parquet or JSON path as a throwaway in-memory database: an
    # ingest into it used to report its rows and store nothing
    for kind, path in _data_files(tmp_path, main_sample).items():
        before = path.read_bytes()
        error = f"{re.escape(str(path))} is not a crimeclass store: it is {kind}"
        with pytest.raises(StoreError, match=error):
            with Store(path, read_only=read_only) as s:
                s.ingest_path(sample[-1])
        assert path.read_bytes() == before, kind
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "empty.duckdb", "rows.csv", "rows.json", "rows.parquet"]  # no .wal beside


def test_a_duckdb_database_of_something_else_is_refused(tmp_path):
    import duckdb

    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE orders (id INTEGER)")
        con.execute("CREATE VIEW recent AS FROM orders")
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"other.duckdb is a DuckDB database but not a "
                                             r"crimeclass store \(it holds orders, recent"):
            Store(other, read_only=read_only)
    with duckdb.connect(str(other), read_only=True) as con:  # nothing was added
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(1,)]


def test_a_store_of_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.con.execute("UPDATE crimeclass_meta SET value = '99' WHERE key = 'schema_version'")
    for read_only in (False, True):
        with pytest.raises(StoreError, match="s.duckdb has store schema version 99; this "
                                             "crimeclass reads version 1"):
            Store(path, read_only=read_only)


def test_an_empty_duckdb_database_becomes_a_store(tmp_path, sample):
    import duckdb

    path = tmp_path / "new.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(StoreError, match="no incidents table"):
        Store(path, read_only=True)
    with Store(path) as s:
        account = s.ingest_path(sample[-1])
    with Store(path, read_only=True) as s:
        assert s.count() == account.inserted > 0
