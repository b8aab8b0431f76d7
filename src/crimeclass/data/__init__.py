"""Data layer: the canonical schema, file and live sources, validation, labels and the store."""

from crimeclass.data._account import IngestAccount
from crimeclass.data._bigquery import BigQuerySource
from crimeclass.data._errors import (
    CrimeclassError,
    EmptyStoreError,
    HeaderError,
    SourceError,
    StoreError,
)
from crimeclass.data._ingest import IngestOptions
from crimeclass.data._labels import FBI_PART_I, LabelRoute, iucr_table
from crimeclass.data._portal import Portal, PortalRun, RetryPolicy, ingest_portal, sync_portal
from crimeclass.data._reasons import Flag, Reason
from crimeclass.data._rowfilter import RowFilter
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
from crimeclass.data._sources import CsvSource, ParquetSource, Source, expand_paths, open_source
from crimeclass.data._store import Store, default_store_path
from crimeclass.data._validate import Bounds

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
    "ingest_portal",
    "iucr_table",
    "open_source",
    "resolve_header",
    "sample_files",
    "sync_portal",
]
