"""The canonical schema of a Chicago crime incident, defined once.

Every other module takes column names, types and spellings from here: the
22 columns of the Data Portal export, the snake_case names of the portal's web
API and of BigQuery (``bigquery-public-data.chicago_crime.crime``), and the
header variants of the exports found in the wild (see ``docs/data.md``).

Inside crimeclass a column is known by its snake_case ``name``; ``portal`` is
the portal CSV header and ``bigquery`` the BigQuery column.

>>> [c.portal for c in COLUMNS][:3]
['ID', 'Case Number', 'Date']
>>> CANONICAL_SCHEMA.field("iucr").type
DataType(string)
>>> resolve_header(["ID", "Case Number", "Date", "IUCR"]).mapping["Case Number"]
'case_number'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from crimeclass.data._errors import HeaderError

__all__ = [
    "ARROW_TYPES",
    "BIGQUERY_ARROW_SCHEMA",
    "BIGQUERY_NAMES",
    "BIGQUERY_TABLE",
    "BIGQUERY_TYPES",
    "CANONICAL_SCHEMA",
    "COLUMNS",
    "COLUMN_NAMES",
    "DATE_FORMATS",
    "RAW_SCHEMA",
    "SODA_JSON_TYPES",
    "SODA_NAMES",
    "SODA_REQUIRED",
    "VARIANTS",
    "Column",
    "HeaderMapping",
    "resolve_header",
    "soda_field_ignored",
]


@dataclass(frozen=True)
class Column:
    """One column of the canonical schema.

    Parameters
    ----------
    name : str
        snake_case name used in the store, the API and (mostly) BigQuery.
    portal : str
        Header of the column in the Data Portal CSV export.
    kind : {"id", "text", "code", "timestamp", "bool", "int", "float", "derived"}
        How raw text is parsed into the typed value.
    arrow_type : pyarrow.DataType
        The exact type of the value in the store and in Arrow batches.
    bigquery : str
        The column's name in the BigQuery public table.
    description : str
        What the column holds.
    """

    name: str
    portal: str
    kind: str
    arrow_type: pa.DataType
    bigquery: str
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "id", pa.int64(), "unique_key",
           "Unique identifier of the record (null when the source publishes none)."),
    Column("case_number", "Case Number", "text", pa.string(), "case_number",
           "CPD Records Division number; one per incident, several records per homicide."),
    Column("date", "Date", "timestamp", pa.timestamp("us"), "date",
           "When the incident occurred (Chicago local time), sometimes a best estimate."),
    Column("block", "Block", "text", pa.string(), "block",
           "Partially redacted address, e.g. 026XX N MC VICKER AVE."),
    Column("iucr", "IUCR", "code", pa.string(), "iucr",
           "Illinois Uniform Crime Reporting code, 4 characters with leading zeros."),
    Column("primary_type", "Primary Type", "text", pa.string(), "primary_type",
           "Primary description of the IUCR code."),
    Column("description", "Description", "text", pa.string(), "description",
           "Secondary description of the IUCR code."),
    Column("location_description", "Location Description", "text", pa.string(),
           "location_description", "Kind of place where the incident occurred."),
    Column("arrest", "Arrest", "bool", pa.bool_(), "arrest",
           "Whether an arrest was made (recorded after the fact)."),
    Column("domestic", "Domestic", "bool", pa.bool_(), "domestic",
           "Whether the incident was domestic-related (Illinois Domestic Violence Act)."),
    Column("beat", "Beat", "int", pa.int32(), "beat",
           "Police beat; its first two digits are the district."),
    Column("district", "District", "int", pa.int32(), "district", "Police district."),
    Column("ward", "Ward", "int", pa.int32(), "ward", "City Council ward."),
    Column("community_area", "Community Area", "int", pa.int32(), "community_area",
           "One of Chicago's 77 community areas."),
    Column("fbi_code", "FBI Code", "fbi", pa.string(), "fbi_code",
           "FBI National Incident-Based Reporting System offense code, e.g. 08B."),
    Column("x_coordinate", "X Coordinate", "float", pa.float64(), "x_coordinate",
           "Illinois State Plane East (NAD 1983) x, feet; shifted from the exact place."),
    Column("y_coordinate", "Y Coordinate", "float", pa.float64(), "y_coordinate",
           "Illinois State Plane East (NAD 1983) y, feet; shifted from the exact place."),
    Column("year", "Year", "year", pa.int32(), "year", "Year of Date."),
    Column("updated_on", "Updated On", "timestamp", pa.timestamp("us"), "updated_on",
           "When the record was last updated."),
    Column("latitude", "Latitude", "float", pa.float64(), "latitude",
           "Latitude (WGS 84); shifted from the exact place."),
    Column("longitude", "Longitude", "float", pa.float64(), "longitude",
           "Longitude (WGS 84); shifted from the exact place."),
    Column("location", "Location", "derived", pa.string(), "location",
           "'(latitude, longitude)', derived from Latitude and Longitude."),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
ARROW_TYPES: dict[str, pa.DataType] = {c.name: c.arrow_type for c in COLUMNS}
BIGQUERY_NAMES: dict[str, str] = {c.bigquery: c.name for c in COLUMNS}

# ----------------------------------------------------------- live sources

#: The public BigQuery table of the dataset.
BIGQUERY_TABLE = "bigquery-public-data.chicago_crime.crime"

_BIGQUERY_TYPE_OF_KIND = {
    "id": "INTEGER", "int": "INTEGER", "year": "INTEGER", "float": "FLOAT",
    "bool": "BOOLEAN", "timestamp": "TIMESTAMP", "text": "STRING", "code": "STRING",
    "fbi": "STRING", "derived": "STRING",
}
_ARROW_OF_BIGQUERY_TYPE = {
    "INTEGER": pa.int64(), "FLOAT": pa.float64(), "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"), "STRING": pa.string(),
}

#: BigQuery column -> its BigQuery type (``unique_key INTEGER, date TIMESTAMP, ...``).
BIGQUERY_TYPES: dict[str, str] = {c.bigquery: _BIGQUERY_TYPE_OF_KIND[c.kind] for c in COLUMNS}

#: The Arrow schema in which the Storage Read API streams the table: INTEGER is
#: int64, FLOAT float64, TIMESTAMP microseconds in UTC. The table's TIMESTAMPs hold
#: the portal's Chicago wall-clock times labelled UTC, so the wall-clock value is
#: kept as is (as :class:`~crimeclass.data.ParquetSource` does with zoned times).
BIGQUERY_ARROW_SCHEMA = pa.schema(
    [pa.field(c.bigquery, _ARROW_OF_BIGQUERY_TYPE[BIGQUERY_TYPES[c.bigquery]]) for c in COLUMNS])

#: Field of a record of the portal's SODA web API (JSON) -> canonical column.
#: The names are the canonical snake_case ones; the JSON *types* differ from the
#: CSV export: numbers arrive as JSON strings ("1834"), ``arrest``/``domestic``
#: as JSON booleans, dates as ISO floating timestamps ("2025-01-01T00:00:00.000"),
#: ``location`` as an object ``{"latitude": ..., "longitude": ..., "human_address": ...}``,
#: and a null value is left out of its record.
SODA_NAMES: dict[str, str] = {c.name: c.name for c in COLUMNS}

#: JSON types each canonical column accepts from SODA, by column kind: a value of
#: another type is quarantined as ``wrong_type``. Numbers may come as JSON
#: numbers as well as strings (SODA 2.1 and other hosts send either).
SODA_JSON_TYPES: dict[str, tuple[type, ...]] = {
    c.name: {
        "id": (str, int), "int": (str, int, float), "year": (str, int, float),
        "float": (str, int, float), "bool": (bool, str), "timestamp": (str,),
        "text": (str,), "code": (str,), "fbi": (str,), "derived": (dict, str),
    }[c.kind]
    for c in COLUMNS
}

#: Fields every record of the dataset carries: the key and the sync cursor. A
#: record without one is quarantined as ``missing_field`` (``date`` is checked
#: by validation, as for files).
SODA_REQUIRED: tuple[str, ...] = ("id", "updated_on")


def soda_field_ignored(name: str) -> bool:
    """Whether a SODA field carries nothing canonical: system fields and computed regions.

    >>> soda_field_ignored(":@computed_region_awaf_s7ux"), soda_field_ignored(":id")
    (True, True)
    >>> soda_field_ignored("beat")
    False
    """
    return name.startswith(":")

#: The 22 typed columns, as the store and exports hold them.
CANONICAL_SCHEMA = pa.schema([pa.field(c.name, c.arrow_type) for c in COLUMNS])

#: What a source yields: every canonical column as text, plus where it came from.
#: ``_line`` is the file's line (or a Parquet file's row number, header = row 0;
#: a web API record's ``$offset`` in its query; a BigQuery row's number in the
#: order the streams delivered it); ``_reject`` names a structural reason the row
#: could not be split into fields, or ``'field:reason;...'`` for a web API record
#: with a field of the wrong type, missing or unknown (its text is then in ``_raw``).
RAW_SCHEMA = pa.schema(
    [pa.field(c.name, pa.string()) for c in COLUMNS]
    + [
        pa.field("_line", pa.int64()),
        pa.field("_reject", pa.string()),
        pa.field("_raw", pa.string()),
    ]
)

#: Timestamp formats seen in the exports, in DuckDB ``strptime`` notation.
#: Always explicit: inferring them is what makes other tools slow on this data.
DATE_FORMATS: dict[str, str] = {
    "portal": "%m/%d/%Y %I:%M:%S %p",  # 01/03/2016 11:57:00 PM
    "iso_millis": "%Y-%m-%dT%H:%M:%S.%g",  # 2012-01-01T00:00:00.000 (API)
    "iso_millis_z": "%Y-%m-%dT%H:%M:%S.%gZ",  # 2023-11-14T11:02:01.256Z
    "iso_seconds": "%Y-%m-%dT%H:%M:%S",  # 2012-01-01T00:00:00
    "iso_space": "%Y-%m-%d %H:%M:%S",  # 2022-09-16 21:30:00 (slim export)
    "iso_space_micros": "%Y-%m-%d %H:%M:%S.%f",  # Parquet/Arrow timestamps as text
    "spreadsheet": "%m/%d/%Y %H:%M",  # 1/1/2001 11:00 (re-saved by a spreadsheet)
}


def _normalize(name: str) -> str:
    """``'Case Number'``, ``'case_number'`` and ``'CASE NUMBER'`` all give ``case_number``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


# Header spellings that normalisation alone does not map.
_ALIASES: dict[str, str] = {
    "unique_key": "id",  # BigQuery
    "case": "case_number",  # "Crimes - One year prior to present" (x2n5-8w5q)
    "date_of_occurrence": "date",
    "primary_description": "primary_type",
    "secondary_description": "description",
    "fbi_cd": "fbi_code",
}

# Columns that some exports add and that carry nothing of the canonical schema.
_IGNORED_PATTERNS = (
    re.compile(r"^:@computed_region_"),  # Socrata computed regions
    re.compile(r"^(unnamed_0|unnamed_\d+|)$"),  # a leading index column (pandas)
    # crimeclass's own export: labeled and keyed again on ingest
    re.compile(r"^(is_index|label_source|key)$"),
)


@dataclass(frozen=True)
class Variant:
    """A header layout that the exports in the wild use."""

    name: str
    description: str
    columns: frozenset[str]
    # Columns whose header name means something else in this variant.
    overrides: dict[str, str | None] = field(default_factory=dict)


_ALL = frozenset(COLUMN_NAMES)
VARIANTS: tuple[Variant, ...] = (
    Variant("portal", "Data Portal CSV export, 22 columns", _ALL),
    Variant("portal_per_year", "per-year files without Year and Location, 20 columns",
            _ALL - {"year", "location"}),
    Variant("slim", "slim 8-column export without ID, IUCR, FBI Code or coordinates",
            frozenset({"date", "block", "primary_type", "description",
                       "location_description", "arrest", "domestic", "community_area"})),
    Variant("partial", "11-column export without ID, beat, ward, area or coordinates",
            frozenset({"case_number", "date", "block", "iucr", "primary_type",
                       "description", "location_description", "arrest", "domestic",
                       "district", "fbi_code"})),
    Variant("socrata_no_ids", "web API CSV without id, district, community area, updated on",
            _ALL - {"id", "district", "community_area", "updated_on"}),
    Variant("one_year_prior", "'Crimes - One year prior to present' (x2n5-8w5q) export",
            _ALL - {"id", "district", "community_area", "year", "location"},
            # its 'id' is a Socrata row id, not the crime ID; 'updated_at' is when
            # the record was last updated.
            overrides={"id": None, "updated_at": "updated_on",
                       "created_at": None, "version": None}),
)
_ONE_YEAR_MARKERS = frozenset({"date_of_occurrence", "primary_description", "fbi_cd"})


@dataclass(frozen=True)
class HeaderMapping:
    """How the columns of one file map onto the canonical schema.

    Attributes
    ----------
    mapping : dict
        File header name -> canonical column name, for the columns that are used.
    ignored : tuple of str
        File header names that are known to carry nothing canonical.
    variant : str
        Name of the matching entry of :data:`VARIANTS`, or ``"subset"``.
    """

    mapping: dict[str, str]
    ignored: tuple[str, ...]
    variant: str

    @property
    def columns(self) -> frozenset[str]:
        """Canonical columns present in the file."""
        return frozenset(self.mapping.values())


def resolve_header(names: Sequence[str], *, source: str = "<input>") -> HeaderMapping:
    """Map a file's header onto the canonical schema.

    Raises
    ------
    HeaderError
        If a column is unknown, appears twice, or ``Date`` is missing.
    """
    normalized = [_normalize(n) for n in names]
    one_year = _ONE_YEAR_MARKERS <= set(normalized)
    overrides = VARIANTS[-1].overrides if one_year else {}
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    unknown: list[str] = []
    for raw, norm in zip(names, normalized, strict=True):
        if norm in overrides:
            target = overrides[norm]
        elif any(p.match(raw.strip().lower()) or p.match(norm) for p in _IGNORED_PATTERNS):
            target = None
        else:
            target = _ALIASES.get(norm, norm)
            if target not in ARROW_TYPES:
                unknown.append(raw)
                continue
        if target is None:
            ignored.append(raw)
        elif target in mapping.values():
            raise HeaderError(source, 1, raw, f"column {raw!r} appears twice")
        else:
            mapping[raw] = target
    if unknown:
        raise HeaderError(
            source, 1, unknown[0],
            f"unknown column(s) {', '.join(map(repr, unknown))}; expected the Data "
            "Portal export's columns (ID, Case Number, Date, ...) or their snake_case "
            "API names",
        )
    if "date" not in mapping.values():
        raise HeaderError(
            source, 1, "Date",
            "no Date column: this does not look like a Chicago crime export "
            f"(header: {', '.join(map(repr, list(names)[:8]))})",
        )
    present = frozenset(mapping.values())
    variant = next((v.name for v in VARIANTS if v.columns == present), "subset")
    return HeaderMapping(mapping, tuple(ignored), variant)
