"""Data layer: the canonical schema, file and live sources, validation, labels and the store."""

from crimeclass.data._account import IngestAccount, total
from crimeclass.data._errors import (
    CrimeclassError,
    EmptyStoreError,
    HeaderError,
    SourceError,
    StoreError,
)
from crimeclass.data._ingest import IngestOptions
from crimeclass.data._ingest_files import ingest_files
from crimeclass.data._labels import FBI_PART_I, LabelRoute, iucr_table
from crimeclass.data._reasons import Flag, Reason
from crimeclass.data._rowfilter import RowFilter, parse_timestamp
from crimeclass.data._sample import sample_files
from crimeclass.data._schema import (
    CANONICAL_SCHEMA,
    COLUMN_NAMES,
    COLUMNS,
    RAW_SCHEMA,
    VARIANTS,
    Column,
    resolve_header,
)
from crimeclass.data._store import Store, default_store_path, is_duckdb_file
from crimeclass.data._validate import Bounds
from crimeclass.data.sources import (
    BigQuerySource,
    CsvSource,
    Cursor,
    ParquetSource,
    Portal,
    PortalRun,
    RetryPolicy,
    Source,
    expand_paths,
    ingest_portal,
    open_source,
    scaleset,
    scaleset_sources,
    sync_portal,
)

__all__ = [
    "CANONICAL_SCHEMA",
    "COLUMNS",
    "COLUMN_NAMES",
    "FBI_PART_I",
    "RAW_SCHEMA",
    "VARIANTS",
    "BigQuerySource",
    "Bounds",
    "Column",
    "CrimeclassError",
    "CsvSource",
    "Cursor",
    "EmptyStoreError",
    "Flag",
    "HeaderError",
    "IngestAccount",
    "IngestOptions",
    "LabelRoute",
    "ParquetSource",
    "Portal",
    "PortalRun",
    "Reason",
    "RetryPolicy",
    "RowFilter",
    "Source",
    "SourceError",
    "Store",
    "StoreError",
    "default_store_path",
    "expand_paths",
    "is_duckdb_file",
    "ingest_files",
    "ingest_portal",
    "iucr_table",
    "open_source",
    "parse_timestamp",
    "resolve_header",
    "sample_files",
    "scaleset",
    "scaleset_sources",
    "sync_portal",
    "total",
]
