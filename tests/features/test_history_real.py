"""Slow parity on real data: every incident of 2017 against a 2012-2016 history.

The kernel's sums equal the window SQL's, the online index, fed the incidents of 2017
in date order after the 2012-2016 history, answers the batch features, and Spark's
features of 2017 equal DuckDB's.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from crimeclass.data import Store
from crimeclass.features import FeatureSpec
from crimeclass.features._history import history_columns
from crimeclass.features._online import HistoryIndex
from crimeclass.features._sql import history_rows_sql

from .test_history_kernel import _sql_sums

pytestmark = pytest.mark.slow
SPEC = FeatureSpec()


@pytest.fixture(scope="module")
def real_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real records of 2014-2017 (2017 and its 1,095-day lookback) in a store."""
    path = tmp_path_factory.mktemp("real") / "real.duckdb"
    with Store(path) as s:
        for year in (2014, 2015, 2016, 2017):
            s.ingest_path(shared_data / f"chicago_crimes_datastore_{year}.csv.gz").check()
    return path


@pytest.fixture(scope="module")
def real_con(real_store: Path):
    con = duckdb.connect(str(real_store), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def batch_2017(real_con):
    """The kernel's sums of the 2017 rows (and of the lookback rows before them)."""
    rows = real_con.sql(history_rows_sql(SPEC, since="2017-01-01", until="2018-01-01")
                        ).to_arrow_table()
    return rows, history_columns(rows, SPEC)


def test_the_kernel_equals_the_window_sql_on_2017(real_con, batch_2017):
    rows, got = batch_2017
    want = _sql_sums(real_con, SPEC, "2017-01-01", "2018-01-01").loc[
        rows.column("key").to_pylist()]
    assert len(rows) > 1_000_000
    for name, values in got.items():
        if values.dtype.kind == "i":
            values = np.where(values < 0, np.nan, values.astype(np.float64))
        np.testing.assert_array_equal(values, want[name].to_numpy(dtype=np.float64,
                                                                  na_value=np.nan), name)


def test_online_features_of_2017_equal_the_batch(real_con, batch_2017):
    rows, got = batch_2017
    position = {k: i for i, k in enumerate(rows.column("key").to_pylist())}
    index = HistoryIndex.from_connection(real_con, SPEC, until="2017-01-01")
    real_con.execute("CREATE TEMP VIEW incidents_2017 AS SELECT * FROM incidents "
                     "WHERE date >= TIMESTAMP '2017-01-01'")
    fed = index.rows(real_con, "incidents_2017")
    assert len(fed) > 250_000
    online = {name: np.empty(len(fed)) for name in got}
    for j, row in enumerate(fed):
        for name, value in index.sums(row).items():
            online[name][j] = value
        index.add(row)
    at = np.array([position[row["key"]] for row in fed])
    for name, values in got.items():
        want = values[at].astype(np.float64)
        if values.dtype.kind == "i":
            want[values[at] < 0] = np.nan
        np.testing.assert_array_equal(online[name], want, name)


def test_spark_features_of_2017_equal_duckdbs(spark, real_store, tmp_path):
    """Every feature of every incident of 2017 on Spark (the window SQL as Spark window
    frames) equals DuckDB's (the kernel): counts exactly, shares within 1e-9."""
    from crimeclass.engines import DuckDBEngine, SparkEngine
    from crimeclass.features import feature_catalog, read_features
    from tests.conftest import store_parquet

    export = store_parquet(real_store, tmp_path / "incidents")
    window = {"since": "2017-01-01", "until": "2018-01-01"}
    with SparkEngine.from_input(export, session=spark) as engine:
        on_spark = read_features(engine, SPEC, history="sql", **window)
    with Store(real_store, read_only=True) as store:
        on_duckdb = read_features(DuckDBEngine.from_store(store), SPEC, **window)
    assert len(on_spark) == len(on_duckdb) > 250_000
    np.testing.assert_array_equal(on_spark["key"], on_duckdb["key"])
    for f in feature_catalog(SPEC):
        a, b = on_spark[f.name], on_duckdb[f.name]
        if f.kind in ("category", "high_cardinality"):
            assert (a.astype(object).fillna("<null>").to_numpy()
                    == b.astype(object).fillna("<null>").to_numpy()).all(), f.name
        elif f.kind == "count":
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=f.name)
        else:
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0,
                                       err_msg=f.name)
