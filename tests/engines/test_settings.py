"""DuckDB's settings: made in one place, scoped where asked, paths quoted."""

from __future__ import annotations

import duckdb
import pytest

from crimeclass.engines import (
    DuckDBSettings,
    EngineError,
    attach,
    connect,
    current_setting,
    release_memory,
    sql_literal,
    temporary_memory_limit,
    temporary_threads,
)


def test_settings_are_made_on_connect(tmp_path):
    spill = tmp_path / "o'brien spill"
    settings = DuckDBSettings(memory_limit="300MB", threads=1, temp_directory=spill,
                              progress_bar=False)
    with connect(settings=settings) as con:
        assert current_setting(con, "threads") == 1
        assert current_setting(con, "temp_directory") == str(spill)
        assert current_setting(con, "enable_progress_bar") is False
        assert current_setting(con, "memory_limit") == "286.1 MiB"  # 300 MB, in MiB


def test_settings_left_as_none_keep_duckdbs_own_values():
    with duckdb.connect() as plain, connect(settings=DuckDBSettings()) as con:
        for name in ("memory_limit", "threads", "temp_directory"):
            assert current_setting(con, name) == current_setting(plain, name), name


@pytest.mark.parametrize("kwargs, setting", [
    ({"memory_limit": "lots"}, "memory_limit"),
    ({"threads": 0}, "threads"),
], ids=["memory_limit", "threads"])
def test_a_refused_setting_names_it(kwargs, setting):
    with pytest.raises(EngineError, match=setting) as info:
        connect(settings=DuckDBSettings(**kwargs))
    assert info.value.engine == "duckdb" and info.value.setting == setting


@pytest.mark.parametrize("own", [None, "500MB", "3GB", "1234MB", "2GiB"])
def test_a_temporary_memory_limit_restores_the_previous_one(own):
    with connect(settings=DuckDBSettings(memory_limit=own)) as con:
        before = current_setting(con, "memory_limit")
        with temporary_memory_limit(con, "200MB"):
            assert current_setting(con, "memory_limit") == "190.7 MiB"
        assert current_setting(con, "memory_limit") == before
        with pytest.raises(RuntimeError), temporary_memory_limit(con, "100MB"):
            raise RuntimeError("the query failed")
        assert current_setting(con, "memory_limit") == before


def test_no_temporary_memory_limit_changes_nothing():
    with connect() as con:
        before = current_setting(con, "memory_limit")
        with temporary_memory_limit(con, None):
            assert current_setting(con, "memory_limit") == before


def test_a_path_with_an_apostrophe_attaches(tmp_path):
    path = tmp_path / "o'brien.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT 42 AS answer")
    with connect() as con:
        attach(con, path, "other")
        assert con.execute("SELECT answer FROM other.t").fetchall() == [(42,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("INSERT INTO other.t VALUES (1)")


@pytest.mark.parametrize("text", ["plain", "o'brien", "''", "a'; DROP TABLE t; --"])
def test_a_literal_reads_back_as_the_same_text(text):
    with connect() as con:
        assert con.execute(f"SELECT {sql_literal(text)}").fetchall() == [(text,)]


@pytest.mark.parametrize("own, asked, inside", [(2, 1, 1), (1, 4, 1)])
def test_temporary_threads_caps_and_restores(own, asked, inside):
    with connect(settings=DuckDBSettings(threads=own)) as con:
        with pytest.raises(RuntimeError), temporary_threads(con, asked):
            assert current_setting(con, "threads") == inside
            raise RuntimeError("the query failed")
        assert current_setting(con, "threads") == own


def test_release_memory_keeps_live_arrays_intact():
    import numpy as np
    import pyarrow as pa

    kept = pa.array(np.arange(1_000_000)).cast(pa.float64())  # in Arrow's pool
    dropped = pa.array(np.arange(1_000_000)).cast(pa.float64())
    del dropped
    release_memory()
    assert kept.to_numpy()[-1] == 999_999.0 and pa.total_allocated_bytes() >= kept.nbytes
