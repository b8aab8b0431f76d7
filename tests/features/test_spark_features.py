"""The features on Spark equal DuckDB's on the whole bundled sample: the one feature query,
its history windows as Spark window frames against DuckDB's vectorized kernel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine, SparkEngine
from crimeclass.features import (
    FeaturesError,
    FeatureSpec,
    feature_catalog,
    read_features,
    spark_features,
)
from tests.conftest import store_parquet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def export(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's incidents as Parquet in the canonical schema, with key and label."""
    return store_parquet(sample_store, tmp_path_factory.mktemp("export") / "incidents")


def test_spark_features_equal_duckdbs_on_the_whole_sample(spark, export, sample_store):
    spec = FeatureSpec()
    with SparkEngine.from_input(export, session=spark) as engine:
        on_spark = read_features(engine, spec, history="sql")
    with Store(sample_store, read_only=True) as store:
        on_duckdb = read_features(DuckDBEngine.from_store(store), spec)  # the kernel
    assert len(on_spark) == len(on_duckdb) > 45_000  # every labeled incident
    assert list(on_spark.columns) == list(on_duckdb.columns)
    np.testing.assert_array_equal(on_spark["key"], on_duckdb["key"])
    np.testing.assert_array_equal(on_spark["date"], on_duckdb["date"])
    checked = {"count": 0, "share": 0}
    for f in feature_catalog(spec):
        a, b = on_spark[f.name], on_duckdb[f.name]
        if f.kind in ("category", "high_cardinality"):
            assert (a.astype(object).fillna("<null>").to_numpy()
                    == b.astype(object).fillna("<null>").to_numpy()).all(), f.name
        elif f.kind == "count":  # exactly
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=f.name)
            checked["count"] += 1
        else:  # shares, hours, time: within 1e-9
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0,
                                       err_msg=f.name)
            checked["share"] += f.kind == "share"
    assert checked["count"] >= 5 and checked["share"] >= 1, checked


def test_spark_features_stay_a_spark_dataframe(spark, export):
    spec = FeatureSpec(groups=("time",))
    with SparkEngine.from_input(export, session=spark) as engine:
        frame = spark_features(engine, spec, since="2016-01-01", until="2017-01-01")
        assert type(frame).__name__ == "DataFrame"
        assert frame.columns[:3] == ["key", "date", "is_index"]
        collected = read_features(engine, spec, since="2016-01-01", until="2017-01-01")
        assert frame.count() == len(collected) > 3000


def test_spark_features_refuse_another_engine(sample_store):
    with Store(sample_store, read_only=True) as store, \
            pytest.raises(FeaturesError, match="Spark engine") as info:
        spark_features(DuckDBEngine.from_store(store))
    assert info.value.option == "engine"
