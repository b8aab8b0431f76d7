"""The one Spark dialect, and the Spark engine's checks that need no Spark session."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from crimeclass.engines import EngineError, SparkEngine, spark_dialect, to_spark_sql


@pytest.mark.parametrize("duckdb_sql, spark_sql", [
    ("SELECT isodow(d)", "SELECT (WEEKDAY(d) + 1)"),
    ("SELECT dayofweek(d)", "SELECT (DAYOFWEEK(d) - 1)"),
], ids=["isodow", "dayofweek"])
def test_weekday_functions_keep_their_meaning_on_spark(duckdb_sql, spark_sql):
    assert to_spark_sql(duckdb_sql) == spark_sql


def test_a_median_over_a_frame_is_sparks_percentile():
    # Spark's percentile_cont takes no frame; percentile interpolates as quantile_cont
    sql = ("SELECT quantile_cont(CAST(u AS DOUBLE), 0.5) OVER (PARTITION BY s ORDER BY n "
           "RANGE BETWEEN 100 PRECEDING AND 1 PRECEDING) FROM t")
    assert to_spark_sql(sql) == (
        "SELECT PERCENTILE(CAST(u AS DOUBLE), 0.5) OVER (PARTITION BY s ORDER BY n NULLS "
        "LAST RANGE BETWEEN 100 PRECEDING AND 1 PRECEDING) FROM t")


def test_other_functions_compile_as_sqlglots_spark_does():
    sql = ("SELECT hour(date), date_diff('microsecond', TIMESTAMP '1970-01-01 00:00:00', date) "
           "FROM incidents ORDER BY date")
    for pretty in (False, True):
        assert to_spark_sql(sql, pretty=pretty) == sqlglot.transpile(
            sql, read="duckdb", write="spark", pretty=pretty)[0]


def test_the_dialect_is_built_once():
    assert spark_dialect() is spark_dialect()


def test_spark_without_an_export_names_the_export_command(tmp_path: Path):
    with pytest.raises(EngineError, match="crimeclass export --out") as info:
        SparkEngine(tmp_path / "nothing")
    assert info.value.engine == "spark" and info.value.setting == "incidents"
