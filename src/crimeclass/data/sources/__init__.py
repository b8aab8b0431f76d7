"""Sources: every one a generator of raw Arrow batches with its cursor (``_base.py``).

Files (:class:`CsvSource`, :class:`ParquetSource`, opened by :func:`open_source`),
the Data Portal's web API (:class:`PortalSource`, read by :func:`ingest_portal`
and :func:`sync_portal`), BigQuery (:class:`BigQuerySource`, read by
:func:`ingest_bigquery`), and the resampled scale sets for benchmarks
(:func:`scaleset`).
"""

from crimeclass.data.sources._base import BatchSource, Cursor, FileSource, Source
from crimeclass.data.sources._bigquery import BigQuerySource
from crimeclass.data.sources._bigquery_run import BigQueryRun, ingest_bigquery
from crimeclass.data.sources._csv import CsvSource
from crimeclass.data.sources._files import expand_paths, open_source
from crimeclass.data.sources._parquet import ParquetSource
from crimeclass.data.sources._portal import PortalSource
from crimeclass.data.sources._scaleset import FIRST_SCALE_ID, scaleset, scaleset_sources
from crimeclass.data.sources._soda import Portal, RetryPolicy, SodaClient
from crimeclass.data.sources._soda_records import soda_batch
from crimeclass.data.sources._sync import PortalRun, ingest_portal, sync_portal

__all__ = [
    "FIRST_SCALE_ID",
    "BatchSource",
    "BigQueryRun",
    "BigQuerySource",
    "CsvSource",
    "Cursor",
    "FileSource",
    "ParquetSource",
    "Portal",
    "PortalRun",
    "PortalSource",
    "RetryPolicy",
    "SodaClient",
    "Source",
    "expand_paths",
    "ingest_bigquery",
    "ingest_portal",
    "open_source",
    "scaleset",
    "scaleset_sources",
    "soda_batch",
    "sync_portal",
]
