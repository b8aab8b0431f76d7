"""Engines: where SQL runs. DuckDB (its connection and settings, in one place) and Spark.

SQL is written once, in DuckDB's dialect. :class:`DuckDBEngine` runs it on a
DuckDB connection (a store's, or one in memory that attaches a store);
:class:`SparkEngine` compiles it with :func:`to_spark_sql` and runs it on a
Parquet export. Both answer the :class:`Engine` protocol that
:mod:`crimeclass.explore` and :mod:`crimeclass.features` take.
"""

from crimeclass.engines._arrow import compile_expression
from crimeclass.engines._duckdb import DuckDBEngine, prepared
from crimeclass.engines._engine import Engine
from crimeclass.engines._errors import EngineError
from crimeclass.engines._memory import release_memory
from crimeclass.engines._settings import (
    DuckDBSettings,
    apply_settings,
    attach,
    connect,
    current_setting,
    temporary_memory_limit,
    temporary_threads,
)
from crimeclass.engines._spark import (
    SparkEngine,
    check_incident_schema,
    export_for_spark,
    read_incidents,
    spark_dialect,
    spark_session,
    to_spark_sql,
)
from crimeclass.engines._sql import conform, sql_literal

__all__ = [
    "DuckDBEngine",
    "DuckDBSettings",
    "Engine",
    "EngineError",
    "SparkEngine",
    "apply_settings",
    "attach",
    "check_incident_schema",
    "compile_expression",
    "conform",
    "connect",
    "current_setting",
    "export_for_spark",
    "prepared",
    "release_memory",
    "read_incidents",
    "spark_dialect",
    "spark_session",
    "sql_literal",
    "temporary_memory_limit",
    "temporary_threads",
    "to_spark_sql",
]
