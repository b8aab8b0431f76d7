"""The DuckDB engine: on a connection, on a store, or attaching a store read-only."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest

from crimeclass.data import EmptyStoreError, Store
from crimeclass.engines import DuckDBEngine, DuckDBSettings, Engine, connect, current_setting


def test_an_engine_on_a_connection_leaves_it_open():
    con = connect()
    con.execute("CREATE TABLE incidents AS SELECT range AS n, range % 2 = 0 AS even "
                "FROM range(10)")
    with DuckDBEngine(con) as engine:
        assert engine.table("SELECT count(*) AS n FROM incidents").to_pydict() == {"n": [10]}
    assert con.execute("SELECT count(*) FROM incidents").fetchall() == [(10,)]
    con.close()


def test_define_register_and_read():
    with DuckDBEngine(connect(), owned=True) as engine:
        engine.register("numbers", pa.table({"n": pa.array([3, 1, 2], pa.int32())}))
        engine.define("big", "SELECT n FROM numbers WHERE n > 1", materialize=True)
        engine.define("big", "SELECT n FROM numbers WHERE n > 2")  # a view replaces the table
        table = engine.table("SELECT n FROM big ORDER BY n")
        assert table.schema.field("n").type == pa.int64()  # conformed
        assert table.to_pydict() == {"n": [3]}
        batches = list(engine.reader("SELECT n FROM numbers ORDER BY n", batch_rows=1))
        assert [b.num_rows for b in batches] == [1, 1, 1]
        assert batches[0].schema.field("n").type == pa.int32()  # the engine's own types


def test_an_owned_connection_is_closed():
    engine = DuckDBEngine(connect(), owned=True)
    engine.close()
    with pytest.raises(Exception, match="closed"):
        engine.con.execute("SELECT 1")


def test_the_memory_limit_is_scoped_to_the_block():
    with DuckDBEngine(connect(), owned=True) as engine:
        before = current_setting(engine.con, "memory_limit")
        with engine.memory_limit("150MB"):
            assert current_setting(engine.con, "memory_limit") == "143.0 MiB"
        assert current_setting(engine.con, "memory_limit") == before


def test_an_engine_on_an_open_store_reads_its_tables(sample_store):
    with Store(sample_store, read_only=True) as st:
        engine: Engine = DuckDBEngine.from_store(st)
        n = engine.table(f"SELECT count(*) AS n FROM {engine.source}").column(0)[0].as_py()
        assert n == st.count() > 0
        engine.close()
        assert st.count() == n  # the store's connection is the store's to close


def test_a_store_opened_read_only_is_never_written(sample_store, tmp_path):
    path = tmp_path / "o'brien's store.duckdb"  # an apostrophe in the path
    shutil.copy(sample_store, path)
    settings = DuckDBSettings(threads=1, memory_limit="500MB")
    with DuckDBEngine.open_store(path, settings) as engine:
        assert engine.source == "store.main.incidents"
        assert current_setting(engine.con, "threads") == 1
        n = engine.table(f"SELECT count(*) AS n FROM {engine.source}").column(0)[0].as_py()
        assert n > 0
        engine.table("SELECT count(*) FROM quarantine")
        with pytest.raises(Exception, match="read-only"):
            engine.con.execute("DELETE FROM store.main.incidents")
        assert str(path) in engine.detail


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_store_names_the_ingest_command(tmp_path, make):
    path = tmp_path / "s.duckdb"
    if make == "empty":
        Store(path).close()
    with pytest.raises(EmptyStoreError, match="crimeclass ingest"):
        DuckDBEngine.open_store(path)


def test_a_prepared_statement_reads_the_tables_registered_since():
    import duckdb

    from crimeclass.engines import prepared

    con = connect()
    try:
        sql = "SELECT sum(a) AS s FROM _t"
        for values, total in (([1, 2, 3], 6), ([10, 20], 30)):
            con.register("_t", pa.table({"a": values}))
            assert prepared(con, sql).fetchall() == [(total,)]
            con.unregister("_t")
        con.register("_t", pa.table({"a": [1, 2, 3]}))
        assert prepared(con, "SELECT max(a) FROM _t").fetchall() == [(3,)]  # its own
        with pytest.raises(duckdb.BinderException, match="nope"):
            prepared(con, "SELECT nope FROM _t")
    finally:
        con.close()
