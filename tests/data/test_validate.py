"""Validation and quarantine on real rows with one field broken at a time."""

from __future__ import annotations

import json

import pytest

from crimeclass.data import Flag, Reason, Store

from .helpers import fields, with_fields, write_csv

# real rows of 2012-2017 (with ID, district, ward, area) start at this index of the sample
MODERN = 22_000


@pytest.fixture
def modern(sample_lines):
    header, lines = sample_lines
    return header, lines[MODERN:MODERN + 50]


CASES = [
    pytest.param({"Date": "2015-13-45 99:00"}, "Date", Reason.UNPARSEABLE_DATE, id="bad-date"),
    pytest.param({"Date": ""}, "Date", Reason.MISSING_DATE, id="no-date"),
    pytest.param({"Date": "01/01/1899 12:00:00 AM"}, "Date", Reason.DATE_OUT_OF_RANGE,
                 id="date-1899"),
    pytest.param({"Updated_On": "yesterday"}, "Updated On", Reason.UNPARSEABLE_DATE,
                 id="bad-updated-on"),
    pytest.param({"Beat": "12A4"}, "Beat", Reason.NOT_A_NUMBER, id="beat-text"),
    pytest.param({"District": "10.5"}, "District", Reason.NOT_A_WHOLE_NUMBER, id="district-frac"),
    pytest.param({"Ward": "twelve"}, "Ward", Reason.NOT_A_NUMBER, id="ward-text"),
    pytest.param({"ID": "12x"}, "ID", Reason.NOT_A_NUMBER, id="id-text"),
    pytest.param({"Arrest": "maybe"}, "Arrest", Reason.BAD_BOOLEAN, id="arrest"),
    pytest.param({"IUCR": "04-86"}, "IUCR", Reason.BAD_CODE, id="iucr"),
    pytest.param({"FBI_Code": "8BB"}, "FBI Code", Reason.BAD_CODE, id="fbi"),
    pytest.param({"Latitude": "north"}, "Latitude", Reason.NOT_A_NUMBER, id="latitude"),
]


@pytest.mark.parametrize("change,field,reason", CASES)
def test_a_bad_field_quarantines_its_row_with_line_field_and_reason(
        tmp_path, store, modern, change, field, reason):
    header, lines = modern
    lines = list(lines)
    lines[7] = with_fields(lines[7], **change)
    account = store.ingest_path(write_csv(tmp_path / "bad.csv", header, lines))
    assert account.read == 50 and account.quarantined == 1 and account.inserted == 49
    q = store.quarantine().to_pylist()
    assert [(r["line"], r["field"], r["reason"]) for r in q] == [(9, field, reason)]
    raw = json.loads(q[0]["raw"])
    assert raw["Case Number"] == fields(lines[7])[1]  # the row's text is kept


def test_all_problems_of_a_row_are_listed(tmp_path, store, modern):
    header, lines = modern
    lines = [with_fields(lines[0], Beat="x", Arrest="?")] + list(lines[1:])
    store.ingest_path(write_csv(tmp_path / "bad.csv", header, lines))
    (row,) = store.quarantine().to_pylist()
    assert row["problems"] == "Arrest:bad_boolean;Beat:not_a_number"


@pytest.mark.parametrize(
    "change,column,value",
    [
        pytest.param({"District": "10.0"}, "district", 10, id="float-district"),
        pytest.param({"Beat": "313"}, "beat", 313, id="beat-no-zero"),
        pytest.param({"IUCR": "486"}, "iucr", "0486", id="iucr-padded"),
        pytest.param({"FBI_Code": "2"}, "fbi_code", "02", id="fbi-padded"),
        pytest.param({"Arrest": "Y"}, "arrest", True, id="arrest-Y"),
        pytest.param({"Domestic": "FALSE"}, "domestic", False, id="domestic-FALSE"),
        pytest.param({"Date": "2015-06-01T13:45:00.000"}, "date", "2015-06-01 13:45:00",
                     id="iso-date"),
        pytest.param({"Block": "  001XX N STATE ST "}, "block", "001XX N STATE ST",
                     id="spaces"),
    ],
)
def test_spellings_of_the_same_value_load_alike(tmp_path, store, modern, change, column, value):
    header, lines = modern
    line = with_fields(lines[0], **change)
    store.ingest_path(write_csv(tmp_path / "ok.csv", header, [line]))
    got = store.con.execute(f"SELECT {column}::VARCHAR FROM incidents").fetchall()[0][0]
    expected = {True: "true", False: "false"}.get(value, str(value)) if not isinstance(
        value, int) or isinstance(value, bool) else str(value)
    assert got == expected


def test_coordinates_outside_chicago_are_nulled_and_flagged_not_dropped(tmp_path, store, modern):
    header, lines = modern
    line = with_fields(lines[0], Latitude="36.619446395", Longitude="-91.686565684",
                       X_Coordinate="0", Y_Coordinate="0")
    account = store.ingest_path(write_csv(tmp_path / "far.csv", header, [line]))
    assert account.inserted == 1 and account.flags == {Flag.COORDINATES_OUTSIDE_CHICAGO: 1}
    row = store.con.execute("SELECT latitude, longitude, x_coordinate, y_coordinate, location, "
                            "flags FROM incidents").fetchall()[0]
    assert row == (None, None, None, None, None, ["coordinates_outside_chicago"])


def test_out_of_range_community_area_is_nulled_and_flagged(tmp_path, store, modern):
    header, lines = modern
    line = with_fields(lines[0], Community_Area="0")
    account = store.ingest_path(write_csv(tmp_path / "ca.csv", header, [line]))
    assert account.inserted == 1 and account.flags == {"community_area_out_of_range": 1}


def test_year_must_match_date(tmp_path, store, shared_data):
    import gzip

    with gzip.open(shared_data / "chicago_crimes_2025_02.csv.gz", "rt") as f:
        header, first = f.readline(), f.readline()
    row = fields(first)
    row[17] = "2019"
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    account = store.ingest_path(write_csv(tmp_path / "y.csv", header, [out.getvalue()]))
    assert account.quarantine_reasons == {Reason.YEAR_MISMATCH: 1}


def test_store_location_is_derived_from_latitude_and_longitude(sample_store):
    with Store(sample_store, read_only=True) as s:
        bad = s.con.execute("""
            SELECT count(*) FROM incidents WHERE latitude IS NOT NULL
               AND location <> '(' || latitude || ', ' || longitude || ')'""").fetchall()[0][0]
    assert bad == 0


@pytest.mark.parametrize("column,value", [("Beat", "99999999999"), ("Ward", "-3000000000"),
                                          ("District", "2147483648")])
def test_a_code_beyond_integer_range_is_nulled_and_flagged_not_a_failed_ingest(
        tmp_path, store, modern, column, value):
    header, lines = modern
    line = with_fields(lines[0], **{column: value})
    account = store.ingest_path(write_csv(tmp_path / "big.csv", header, [line]))
    name = column.lower()
    assert account.inserted == 1 and account.flags == {f"{name}_out_of_range": 1}
    assert store.con.execute(f"SELECT {name} FROM incidents").fetchall() == [(None,)]
