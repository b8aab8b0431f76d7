"""Exploration: the catalog of descriptive statistics, on DuckDB and on Spark, and its report.

Each statistic is defined once (:data:`CATALOG`: name, description, SQL) and
computed by either engine: :class:`DuckDBEngine` over the store (the default)
or :class:`SparkEngine` over its Parquet export, with the same numbers.
:func:`compute` returns the tables; :func:`write_report` turns them into
``report.html`` and ``tables/<statistic>.csv`` / ``.parquet``.
"""

from crimeclass.explore._catalog import (
    CATALOG,
    COMPLETE_RULE,
    HEX_GRID,
    Relation,
    Statistic,
    get,
    relations,
)
from crimeclass.explore._compute import Exploration, compute
from crimeclass.explore._duckdb import DuckDBEngine
from crimeclass.explore._engine import Engine, conform
from crimeclass.explore._errors import ExploreError, FilterError
from crimeclass.explore._filters import Filters, normalize_primary_type, parse_filters
from crimeclass.explore._lookups import community_areas, police_districts
from crimeclass.explore._painter import Painter
from crimeclass.explore._report import render_html, write_report, write_tables
from crimeclass.explore._run import explore
from crimeclass.explore._spark import SparkEngine, export_for_spark, spark_session, to_spark_sql
from crimeclass.explore._summary import Finding, summarize

__all__ = [
    "CATALOG",
    "COMPLETE_RULE",
    "DuckDBEngine",
    "Engine",
    "Exploration",
    "ExploreError",
    "FilterError",
    "Filters",
    "Finding",
    "HEX_GRID",
    "Painter",
    "Relation",
    "SparkEngine",
    "Statistic",
    "community_areas",
    "compute",
    "conform",
    "explore",
    "export_for_spark",
    "get",
    "normalize_primary_type",
    "parse_filters",
    "police_districts",
    "relations",
    "render_html",
    "spark_session",
    "summarize",
    "to_spark_sql",
    "write_report",
    "write_tables",
]
