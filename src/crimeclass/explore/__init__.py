"""Exploration: the catalog of descriptive statistics, on DuckDB and on Spark, and its report.

Each statistic is defined once (:data:`CATALOG`: name, description, SQL) and
computed by either engine of :mod:`crimeclass.engines`: ``DuckDBEngine`` over the
store (the default) or ``SparkEngine`` over its Parquet export, with the same numbers.
:func:`compute` returns the tables; :func:`write_report` turns them into
``report.html`` and ``tables/<statistic>.csv`` / ``.parquet``.
"""

from crimeclass.explore._catalog import CATALOG, HEX_GRID, Statistic, get
from crimeclass.explore._compute import Exploration, compute
from crimeclass.explore._errors import ExploreError, FilterError
from crimeclass.explore._filters import Filters, normalize_primary_type, parse_filters
from crimeclass.explore._lookups import community_areas, police_districts
from crimeclass.explore._painter import Painter
from crimeclass.explore._relations import COMPLETE_RULE, Relation, relations
from crimeclass.explore._report import render_html, write_report, write_tables
from crimeclass.explore._run import explore
from crimeclass.explore._sources import engine_sources, register_lookups, store_sources
from crimeclass.explore._summary import Finding, summarize

__all__ = [
    "CATALOG",
    "COMPLETE_RULE",
    "Exploration",
    "ExploreError",
    "FilterError",
    "Filters",
    "Finding",
    "HEX_GRID",
    "Painter",
    "Relation",
    "Statistic",
    "community_areas",
    "compute",
    "engine_sources",
    "explore",
    "get",
    "normalize_primary_type",
    "parse_filters",
    "police_districts",
    "relations",
    "register_lookups",
    "render_html",
    "store_sources",
    "summarize",
    "write_report",
    "write_tables",
]
