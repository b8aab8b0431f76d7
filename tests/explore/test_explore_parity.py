"""DuckDB and Spark give the same tables: the whole catalog on the bundled sample.

One local Spark session (start-up takes seconds). The Spark side runs through the
command line (``crimeclass explore --engine spark``), which exports the store to
Parquet for Spark, so the whole path is covered once; then a filtered run.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.engines import DuckDBEngine, SparkEngine, export_for_spark, spark_session
from crimeclass.explore import CATALOG, FilterError, Filters, compute, get

pytestmark = pytest.mark.slow

FILTERED = [get(n) for n in ("incidents_by_year", "incidents_by_month", "hour_by_weekday",
                             "top_primary_types", "arrest_rate_by_district", "coverage_by_year",
                             "missing_by_year")]


def differences(expect: dict, got: dict, names) -> list[str]:
    """The statistics whose tables differ (schema, rows, or values beyond 1e-9)."""
    out = []
    for name in names:
        a, b = expect[name], got[name]
        try:
            assert a.schema == b.schema, f"schema {a.schema} != {b.schema}"
            pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas(), check_exact=False,
                                          rtol=1e-9, obj=name)
        except AssertionError as e:
            out.append(f"{name}: {' '.join(str(e).split())[:300]}")
    return out


# One test, so that pytest-xdist runs it on one worker: a second Spark session beside
# the first would only compete for the same two cores.
def test_duckdb_and_spark_give_the_same_tables(sample_exploration, sample_store,
                                               tmp_path_factory):
    session = spark_session("local[2]")
    try:
        # 1. the whole catalog, as `crimeclass explore --engine spark` computes it
        out = tmp_path_factory.mktemp("spark-report")
        result = CliRunner().invoke(app, ["explore", "--store", str(sample_store), "--out",
                                          str(out), "--engine", "spark", "--no-plots",
                                          "--json"])
        assert result.exit_code == 0, result.output
        assert "PySpark" in (out / "report.html").read_text()
        spark_tables = {s.name: pq.read_table(out / "tables" / f"{s.name}.parquet")
                        for s in CATALOG}
        names = [s.name for s in CATALOG]
        assert all(sample_exploration.tables[n].num_rows for n in names
                   if n != "quarantine_summary")
        assert differences(sample_exploration.tables, spark_tables, names) == []

        # 2. filters (old spellings, several types and districts, a window) on both
        filters = Filters(since=date(2012, 3, 1), until=date(2016, 12, 31),
                          types=("theft", "crim sexual assault", "BATTERY"), districts=(1, 11))
        with DuckDBEngine.open_store(sample_store) as duck:
            expect = compute(duck, filters, statistics=FILTERED)
        incidents, quarantine = export_for_spark(sample_store, tmp_path_factory.mktemp("pq"))
        with SparkEngine(incidents, quarantine, session=session) as engine:
            got = compute(engine, filters, statistics=FILTERED)
            with pytest.raises(FilterError, match="unknown district 99; valid district values"):
                compute(engine, Filters(districts=(99,)), statistics=FILTERED[:1])
        assert got.rows == expect.rows > 0 and got.filters == expect.filters
        assert differences(expect.tables, got.tables, [s.name for s in FILTERED]) == []
    finally:
        session.stop()
