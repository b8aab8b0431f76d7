"""The index label, tested on real rows (the bundled sample and ../shared/data)."""

from __future__ import annotations

import pytest

from crimeclass.data import FBI_PART_I, IngestOptions, LabelRoute, Store, iucr_table
from crimeclass.data._labels import IUCR_TABLE_SOURCES

from .helpers import with_fields, write_csv


def _one(store_path, sql):
    with Store(store_path, read_only=True) as s:
        return s.con.execute(sql).fetchall()


def test_the_shipped_table_has_zero_padded_codes_and_named_sources():
    t = iucr_table().to_pylist()
    codes = [r["iucr"] for r in t]
    assert len(codes) == len(set(codes)) == 435
    assert all(len(c) == 4 for c in codes)
    assert {"0110", "0486", "0820", "0910", "502R"} <= set(codes)
    assert {r["source"] for r in t} == set(IUCR_TABLE_SOURCES)
    assert {r["index_code"] for r in t} == {"I", "N", "D"}


@pytest.mark.parametrize(
    "where,expected",
    [
        pytest.param("fbi_code = '01A'", True, id="homicide-01A"),
        pytest.param("primary_type = 'ROBBERY'", True, id="robbery"),
        pytest.param("primary_type = 'BURGLARY'", True, id="burglary"),
        pytest.param("primary_type = 'MOTOR VEHICLE THEFT'", True, id="motor-vehicle-theft"),
        pytest.param("primary_type = 'NARCOTICS'", False, id="narcotics"),
        pytest.param("iucr IN ('0460', '0486')", False, id="simple-battery"),
        pytest.param("iucr = '0560'", False, id="simple-assault"),
    ],
)
def test_labels_of_real_rows(sample_store, where, expected):
    rows = _one(sample_store, f"SELECT is_index, count(*) FROM incidents WHERE {where} GROUP BY 1")
    assert rows and all(label is expected for label, _ in rows), rows


@pytest.mark.slow
@pytest.mark.parametrize(
    "iucr,expected",
    [
        pytest.param("0142", False, id="reckless-homicide-is-not-index"),
        pytest.param("1030", False, id="arson-possession-is-not-index"),
        pytest.param("0440", False, id="aggravated-battery-minor-injury-is-not-index"),
        pytest.param("1753", True, id="child-sexual-assault-by-family-is-index"),
    ],
)
def test_the_tables_own_exceptions_are_followed(tmp_path, shared_data, iucr, expected):
    """Primary types do not decide: the table's index code per IUCR code does."""
    with Store(tmp_path / "s.duckdb") as s:
        s.ingest_path(shared_data / "chicago_crimes_datastore_2016.csv.gz")
        rows = s.con.execute("SELECT DISTINCT is_index, label_source FROM incidents "
                             "WHERE iucr = ?", [iucr]).fetchall()
    assert rows == [(expected, "iucr")]


def test_slim_rows_are_labeled_through_their_descriptions(sample_store):
    rows = _one(sample_store, """
        SELECT count(*), count(*) FILTER (WHERE label_source = 'description'),
               count(*) FILTER (WHERE is_index IS NULL)
        FROM incidents WHERE iucr IS NULL AND fbi_code IS NULL""")
    n, by_description, unknown = rows[0]
    assert n == 1000 and by_description + unknown == n and by_description > 950


def test_description_route_agrees_with_the_code_route(sample_store):
    """Where descriptions label a slim row, rows with a code and the same descriptions agree."""
    rows = _one(sample_store, """
        WITH coded AS (SELECT DISTINCT primary_type, description, is_index FROM incidents
                       WHERE label_source = 'iucr'),
             slim AS (SELECT DISTINCT primary_type, description, is_index FROM incidents
                      WHERE label_source = 'description')
        SELECT count(*), count(*) FILTER (WHERE coded.is_index <> slim.is_index)
        FROM slim JOIN coded USING (primary_type, description)""")
    assert rows[0][0] > 20 and rows[0][1] == 0


def test_rows_with_unknown_codes_fall_back_to_fbi_codes_then_unknown(tmp_path, sample_lines):
    header, lines = sample_lines
    line = lines[22_000]
    rows = [
        # a real code and pair missing from the table (LOST PASSPORT, 95 rows in 2001-2017)
        with_fields(line, IUCR="5093", FBI_Code="26", Primary_Type="NON-CRIMINAL",
                    Description="LOST PASSPORT"),
        with_fields(line, IUCR="9999", FBI_Code="03", ID="1", Primary_Type="MYSTERY",
                    Description="NOT IN ANY TABLE"),
        with_fields(line, IUCR="9998", FBI_Code="", Primary_Type="MYSTERY", ID="2",
                    Description="NOT IN ANY TABLE"),
    ]
    with Store(tmp_path / "s.duckdb") as s:
        account = s.ingest_path(write_csv(tmp_path / "x.csv", header, rows), IngestOptions())
        got = s.con.execute("SELECT iucr, is_index, label_source FROM incidents ORDER BY iucr"
                            ).fetchall()
    assert got == [("5093", False, "fbi_code"), ("9998", None, "unknown"),
                   ("9999", True, "fbi_code")]
    assert account.label_routes == {LabelRoute.FBI_CODE: 2, LabelRoute.UNKNOWN: 1}


def test_part_one_codes():
    assert FBI_PART_I == {"01A", "02", "03", "04A", "04B", "05", "06", "07", "09"}
