"""DuckDB and Spark give the same tables: the whole catalog on the bundled sample.

One local Spark session for the module (start-up takes seconds). The Spark side
runs through the command line (``crimeclass explore --engine spark``), which
exports the store to Parquet for Spark, so the whole path is covered once.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.explore import (
    CATALOG,
    DuckDBEngine,
    ExploreError,
    FilterError,
    Filters,
    SparkEngine,
    compute,
    export_for_spark,
    get,
    spark_session,
)

pytestmark = pytest.mark.slow

FILTERED = [get(n) for n in ("incidents_by_year", "incidents_by_month", "hour_by_weekday",
                             "top_primary_types", "arrest_rate_by_district", "coverage_by_year",
                             "missing_by_year")]


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_tables(spark, sample_store, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The catalog computed by Spark, as the command line writes it."""
    out = tmp_path_factory.mktemp("spark-report")
    result = CliRunner().invoke(app, ["explore", "--store", str(sample_store), "--out",
                                      str(out), "--engine", "spark", "--no-plots", "--json"])
    assert result.exit_code == 0, result.output
    assert "PySpark" in (out / "report.html").read_text()
    return {s.name: pq.read_table(out / "tables" / f"{s.name}.parquet") for s in CATALOG}


def assert_same(duck, spark, name):
    assert duck.schema == spark.schema, name
    pd.testing.assert_frame_equal(duck.to_pandas(), spark.to_pandas(), check_exact=False,
                                  rtol=1e-9, obj=name)


@pytest.mark.parametrize("stat", CATALOG, ids=lambda s: s.name)
def test_every_statistic_is_the_same_on_both_engines(stat, sample_exploration, spark_tables):
    duck = sample_exploration.tables[stat.name]
    assert duck.num_rows or stat.name == "quarantine_summary"
    assert_same(duck, spark_tables[stat.name], stat.name)


def test_filters_mean_the_same_on_both_engines(spark, sample_store, tmp_path):
    filters = Filters(since=date(2012, 3, 1), until=date(2016, 12, 31),
                      types=("theft", "crim sexual assault", "BATTERY"), districts=(1, 11))
    with DuckDBEngine(sample_store) as duck:
        expect = compute(duck, filters, statistics=FILTERED)
    incidents, quarantine = export_for_spark(sample_store, tmp_path)
    with SparkEngine(incidents, quarantine, session=spark) as engine:
        got = compute(engine, filters, statistics=FILTERED)
        with pytest.raises(FilterError, match="unknown district 99; valid district values"):
            compute(engine, Filters(districts=(99,)), statistics=FILTERED[:1])
    assert got.rows == expect.rows > 0 and got.filters == expect.filters
    for stat in FILTERED:
        assert_same(expect.tables[stat.name], got.tables[stat.name], stat.name)


def test_spark_without_an_export_names_the_export_command(tmp_path: Path):
    with pytest.raises(ExploreError, match="crimeclass export --out"):
        SparkEngine(tmp_path / "nothing")
