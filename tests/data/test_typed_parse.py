"""The ingest's typed parse (numbers and booleans typed by the source) stores exactly what
the text path stores: the same incidents, the same quarantine, the same account."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crimeclass.data import (
    CsvSource,
    IngestOptions,
    ParquetSource,
    Reason,
    Store,
    open_source,
)

from .helpers import fields, with_fields, write_csv

MODERN = 22_000  # real rows of 2012-2017 start at this index of the main sample


def _text_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every file source hand the ingest text only (the path before typed parsing)."""
    monkeypatch.setattr(CsvSource, "ingest_batches", CsvSource.batches)
    monkeypatch.setattr(ParquetSource, "ingest_batches", ParquetSource.batches)


def _accounts(path: Path) -> list[dict]:
    """A store's ingest accounts, without their timings."""
    with Store(path, read_only=True) as s:
        accounts = [json.loads(a) for (a,) in s.con.execute(
            "SELECT account FROM ingests ORDER BY ingest_id").fetchall()]
    for a in accounts:
        a.pop("seconds", None)
        a.pop("rows_per_second", None)
    return accounts


def _differences(typed: Path, text: Path, tmp_path: Path) -> dict[str, list[tuple]]:
    """The incidents and quarantined rows that only one of two stores holds (up to five
    each way, duplicates counted), compared inside DuckDB so that millions of rows never
    become Python objects (a bounded memory limit; DuckDB spills to tmp_path)."""
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 1,
                                 "temp_directory": str(tmp_path / "spill")})
    con.execute("ATTACH ? AS a (READ_ONLY)", [str(typed)])
    con.execute("ATTACH ? AS b (READ_ONLY)", [str(text)])
    found = {}
    for table in ("incidents", "quarantine"):
        for one, other in (("a", "b"), ("b", "a")):
            found[f"{table} only in {one}"] = con.execute(
                f"SELECT * EXCLUDE (ingest_id) FROM {one}.{table} EXCEPT ALL "
                f"SELECT * EXCLUDE (ingest_id) FROM {other}.{table} LIMIT 5").fetchall()
    con.close()
    return {k: v for k, v in found.items() if v}


def _ingest_both_ways(files: list[Path], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    typed, text = tmp_path / "typed.duckdb", tmp_path / "text.duckdb"
    now = "2026-11-28 00:00:00"  # the same clock for both (dates after it are quarantined)
    with Store(typed) as s:
        for f in files:
            s.ingest_path(f, IngestOptions(now=now)).check()
    with monkeypatch.context() as m:
        _text_only(m)
        with Store(text) as s:
            for f in files:
                s.ingest_path(f, IngestOptions(now=now)).check()
    return typed, text


def test_typed_and_text_ingest_store_the_same_on_the_sample(tmp_path, sample, monkeypatch):
    typed, text = _ingest_both_ways(sample, tmp_path, monkeypatch)
    assert _differences(typed, text, tmp_path) == {}
    assert _accounts(typed) == _accounts(text)


def test_the_comparison_finds_a_changed_row_and_an_added_one(tmp_path, sample_store):
    changed = tmp_path / "changed.duckdb"
    shutil.copy(sample_store, changed)
    with Store(changed) as s:
        s.con.execute("UPDATE incidents SET block = block || ' X' "
                      "WHERE key = (SELECT min(key) FROM incidents)")
        s.con.execute("INSERT INTO quarantine VALUES (1, 'a.csv', 2, 'date', 'bad', '[]', 'x')")
    found = _differences(sample_store, changed, tmp_path)
    assert sorted(found) == ["incidents only in a", "incidents only in b", "quarantine only in b"]
    assert all(len(rows) >= 1 for rows in found.values())


@pytest.mark.slow
def test_typed_and_text_ingest_store_the_same_on_all_of_shared_data(
        tmp_path, shared_data, monkeypatch):
    files = sorted(shared_data.glob("chicago_crimes_*"))
    typed, text = _ingest_both_ways(files, tmp_path, monkeypatch)
    assert _differences(typed, text, tmp_path) == {}
    assert _accounts(typed) == _accounts(text)


def test_the_source_types_numbers_and_booleans_and_leaves_dates_as_text(main_sample):
    batch = next(open_source(main_sample).ingest_batches())
    types = dict(zip(batch.schema.names, batch.schema.types, strict=True))
    assert types["id"] == pa.int64() and types["beat"] == pa.int32()
    assert types["latitude"] == pa.float64() and types["arrest"] == pa.bool_()
    assert types["date"] == pa.string() and types["iucr"] == pa.string()
    assert next(open_source(main_sample).batches()).schema.field("beat").type == pa.string()


def test_a_value_the_parser_cannot_type_leaves_that_column_of_the_block_as_text(
        tmp_path, store, sample_lines):
    header, lines = sample_lines
    rows = list(lines[MODERN:MODERN + 40])
    rows[3] = with_fields(rows[3], District="10.0", Beat=" 1034")  # float text, a space
    path = write_csv(tmp_path / "floats.csv", header, rows)
    (batch,) = list(open_source(path).ingest_batches())
    assert batch.schema.field("district").type == pa.string()
    assert batch.schema.field("ward").type == pa.int32()
    account = store.ingest_path(path)
    assert account.inserted == 40 and account.quarantined == 0
    got = store.con.execute("SELECT district, beat FROM incidents WHERE source_line = 5"
                            ).fetchall()  # rows[3]: the header is line 1
    assert got == [(10, 1034)]


def test_a_quarantined_row_of_a_typed_block_keeps_the_text_of_the_file(
        tmp_path, store, sample_lines):
    header, lines = sample_lines
    rows = list(lines[MODERN:MODERN + 30])
    rows[5] = with_fields(rows[5], IUCR="04-86")  # a text column: the block stays typed
    path = write_csv(tmp_path / "bad.csv", header, rows)
    assert next(open_source(path).ingest_batches()).schema.field("beat").type == pa.int32()
    account = store.ingest_path(path)
    assert account.quarantined == 1 and account.quarantine_reasons == {Reason.BAD_CODE: 1}
    (q,) = store.quarantine().to_pylist()
    raw = json.loads(q["raw"])
    original = fields(rows[5])
    assert q["line"] == 7 and original[11].startswith("0")  # a district such as 019
    assert raw["District"] == original[11] and raw["Arrest"] == original[8]
    assert raw["IUCR"] == "04-86" and raw["Latitude"] == original[18]


def test_a_typed_parquet_file_passes_its_types_through(tmp_path, store, sample_store):
    with Store(sample_store, read_only=True) as s:
        s.export_parquet(tmp_path / "export")
    part = sorted((tmp_path / "export").rglob("*.parquet"))[-1]
    source = open_source(part)
    batch = next(source.ingest_batches())
    assert batch.schema.field("date").type == pa.timestamp("us")
    assert batch.schema.field("id").type == pa.int64()
    assert next(source.batches()).schema.field("date").type == pa.string()
    account = store.ingest_path(part)
    assert account.inserted == pq.ParquetFile(part).metadata.num_rows
    assert account.quarantined == 0
