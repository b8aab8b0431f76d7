from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from crimeclass.data import CANONICAL_SCHEMA, COLUMNS, HeaderError, resolve_header
from crimeclass.data._schema import BIGQUERY_NAMES, DATE_FORMATS

PORTAL_HEADER = ("ID,Case Number,Date,Block,IUCR,Primary Type,Description,Location Description,"
                 "Arrest,Domestic,Beat,District,Ward,Community Area,FBI Code,X Coordinate,"
                 "Y Coordinate,Year,Updated On,Latitude,Longitude,Location").split(",")


def test_canonical_schema_has_the_portal_22_columns_in_order():
    assert [c.portal for c in COLUMNS] == PORTAL_HEADER
    assert len(CANONICAL_SCHEMA) == 22


def test_codes_stay_strings_and_numbers_are_typed():
    assert CANONICAL_SCHEMA.field("iucr").type == pa.string()
    assert CANONICAL_SCHEMA.field("fbi_code").type == pa.string()
    assert CANONICAL_SCHEMA.field("id").type == pa.int64()
    assert CANONICAL_SCHEMA.field("date").type == pa.timestamp("us")
    assert CANONICAL_SCHEMA.field("arrest").type == pa.bool_()
    assert CANONICAL_SCHEMA.field("beat").type == pa.int32()
    assert CANONICAL_SCHEMA.field("latitude").type == pa.float64()


def test_bigquery_names_map_onto_the_schema():
    assert BIGQUERY_NAMES["unique_key"] == "id"
    assert BIGQUERY_NAMES["case_number"] == "case_number"
    assert set(BIGQUERY_NAMES.values()) == {c.name for c in COLUMNS}


def test_portal_and_api_spellings_give_the_same_mapping():
    api = [c.name for c in COLUMNS]
    assert set(resolve_header(PORTAL_HEADER).mapping.values()) == set(
        resolve_header(api).mapping.values())
    assert resolve_header(PORTAL_HEADER).variant == "portal"


def _header(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return next(csv.reader(f))


EXPECTED_VARIANTS = {
    "chicago_crimes_2022_slim.csv.gz": "slim",
    "chicago_crimes_2026_05_partial.csv.gz": "partial",
    "chicago_crimes_2023_11_oneyear_variant.csv.gz": "one_year_prior",
    "chicago_crimes_2012_socrata_api_sample.csv.gz": "socrata_no_ids",
    "chicago_crimes_datastore_2012.csv.gz": "portal_per_year",
    "chicago_crimes_2025_02.csv.gz": "portal",
    "chicago_crimes_kaggle_2012_2017_sample.csv.gz": "portal",
}


@pytest.mark.parametrize("name,variant", EXPECTED_VARIANTS.items(), ids=list(EXPECTED_VARIANTS))
def test_every_header_variant_of_shared_data_resolves(shared_data, name, variant):
    header = resolve_header(_header(shared_data / name))
    assert header.variant == variant
    assert "date" in header.columns


def test_one_year_prior_id_is_not_the_crime_id(shared_data):
    header = resolve_header(_header(shared_data / "chicago_crimes_2023_11_oneyear_variant.csv.gz"))
    assert "id" not in header.columns  # its 'id' is a Socrata row id
    assert header.mapping["case"] == "case_number"
    assert header.mapping["fbi_cd"] == "fbi_code"
    assert header.mapping["updated_at"] == "updated_on"


def test_kaggle_index_column_is_ignored(shared_data):
    header = resolve_header(_header(shared_data / "chicago_crimes_kaggle_2012_2017_sample.csv.gz"))
    assert header.ignored == ("",)


@pytest.mark.parametrize(
    "names,match",
    [
        pytest.param(["Date", "Colour"], "unknown column", id="unknown"),
        pytest.param(["Date", "Block", "block"], "appears twice", id="duplicate"),
        pytest.param(["ID", "Block"], "no Date column", id="no-date"),
    ],
)
def test_wrong_headers_are_errors_naming_line_1(names, match):
    with pytest.raises(HeaderError, match=match) as err:
        resolve_header(names, source="x.csv")
    assert err.value.line == 1 and "x.csv, line 1" in str(err.value)


def test_date_formats_are_explicit():
    assert DATE_FORMATS["portal"] == "%m/%d/%Y %I:%M:%S %p"
    assert all("%" in f for f in DATE_FORMATS.values())
