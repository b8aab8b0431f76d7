"""The input on Spark: incidents in the canonical schema read from Parquet, checked, keyed
and labeled as ingest labels them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crimeclass.data import Store
from crimeclass.engines import (
    EngineError,
    SparkEngine,
    check_incident_schema,
    read_incidents,
)
from tests.conftest import store_parquet


@pytest.fixture(scope="module")
def canonical(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's incidents with an ID: the 22 canonical columns only (no key, no label)."""
    return store_parquet(sample_store, tmp_path_factory.mktemp("input") / "incidents.parquet",
                         extra=(), where="id IS NOT NULL", by_year=False)


def test_a_missing_column_is_named():
    with pytest.raises(EngineError, match=r"in\.parquet: missing column\(s\) iucr") as info:
        check_incident_schema({"date": "timestamp_ntz", "id": "bigint"},
                              required=("date", "iucr"), where="in.parquet")
    assert info.value.setting == "iucr"


@pytest.mark.parametrize("column, found", [("date", "string"), ("beat", "double"),
                                           ("arrest", "string"), ("x_coordinate", "string")])
def test_a_mistyped_column_is_named(column, found):
    with pytest.raises(EngineError, match=f"column {column} is {found}, expected") as info:
        check_incident_schema({"date": "timestamp_ntz", column: found}, required=("date",),
                              where="in.parquet")
    assert (info.value.setting, info.value.value) == (column, found)


def test_compatible_types_pass():
    check_incident_schema({"date": "timestamp", "id": "int", "beat": "bigint",
                           "x_coordinate": "float", "other": "map<string,int>",
                           "amount": "decimal(10,2)"}, required=("date", "id"), where="in")


def test_no_parquet_is_an_engine_error(tmp_path):
    with pytest.raises(EngineError, match="no Parquet at") as info:
        read_incidents(None, tmp_path / "nothing")  # type: ignore[arg-type]
    assert info.value.setting == "input"


@pytest.mark.slow
def test_the_input_is_keyed_and_labeled_as_the_store(spark, canonical, sample_store):
    rows = read_incidents(spark, canonical, required=("date", "iucr"))
    assert {"key", "is_index", "location_description"} <= set(rows.columns)
    got = rows.select("key", "is_index").toArrow().sort_by("key")
    with Store(sample_store, read_only=True) as store:
        want = store.con.sql("SELECT key, is_index FROM incidents WHERE id IS NOT NULL "
                             "ORDER BY key").to_arrow_table()
    assert got.num_rows == want.num_rows > 20_000
    assert got.column("key").to_pylist() == want.column("key").to_pylist()
    assert got.column("is_index").to_pylist() == want.column("is_index").to_pylist()


@pytest.mark.slow
def test_a_mistyped_file_is_refused_by_name(spark, tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": [1], "date": ["2017-01-01 10:00:00"], "iucr": ["0486"]}),
                   path)
    with pytest.raises(EngineError, match="column date is string"):
        read_incidents(spark, path)
    with pytest.raises(EngineError, match=r"missing column\(s\) beat"):
        SparkEngine.from_input(path, required=("date", "beat"), session=spark)


@pytest.mark.slow
def test_a_local_session_leaves_no_folder_where_it_runs(spark, tmp_path, monkeypatch):
    """Spark's catalog folder (spark-warehouse/) goes to the temporary folder, not the
    working folder of the user or of the tests."""
    import tempfile

    monkeypatch.chdir(tmp_path)
    spark.catalog.listDatabases()  # the catalog, and its folder, exist from here on
    spark.sql("SELECT 1").collect()
    warehouse = spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    assert Path(warehouse).is_relative_to(tempfile.gettempdir())
    assert list(tmp_path.iterdir()) == []
