"""History at more scales (the last day, 90 days): the same guarantees as the default's.

The windows of :data:`MORE_SCALES` go through the checks the default windows go through:
the history kernel and the window SQL give the same frame, the online index gives the
batch's features, each feature reads exactly the columns it declares, and no feature
moves with the label of the scored row or of any later row.
"""

from __future__ import annotations

import shutil

import pandas as pd

from crimeclass.engines import DuckDBEngine
from crimeclass.features import FeatureSpec, HistoryWindow, feature_catalog, read_features
from crimeclass.features._catalog import BASE_WINDOWS, MORE_SCALES

from .test_leakage_structural import (
    _change_what_must_not_matter,
    _features,
    _lineage,
    _scored_row,
    _store_schema,
)

SPEC = FeatureSpec(history=MORE_SCALES)
NEW = [w for w in MORE_SCALES if w not in BASE_WINDOWS]


def test_more_scales_add_the_last_day_and_90_days():
    assert {w.days for w in NEW} == {1, 90}
    assert set(BASE_WINDOWS) < set(MORE_SCALES)
    names = {f.name for f in feature_catalog(SPEC)}
    assert {"n_beat_1d", "index_share_grid_cell_90d", "index_block_90d"} <= names
    assert HistoryWindow("beat", 1).stem == "beat_1d"


def test_kernel_and_window_sql_give_the_same_frame(incidents_con):
    engine = DuckDBEngine(incidents_con)
    args = {"since": "2015-01-01", "until": "2017-01-01", "labeled_only": True}
    by_kernel = read_features(engine, SPEC, history="kernel", **args)
    by_sql = read_features(engine, SPEC, history="sql", **args)
    assert len(by_kernel) > 1000
    pd.testing.assert_frame_equal(by_kernel, by_sql, check_exact=True)
    # the new windows hold something: the comparison compares counts, not empty columns
    assert (by_kernel["n_beat_90d"] > 0).mean() > 0.5
    assert (by_kernel["n_beat_1d"] > 0).any()


def test_each_new_feature_reads_exactly_the_columns_it_declares(tmp_path):
    read = _lineage(SPEC, _store_schema(tmp_path))
    for f in feature_catalog(SPEC):
        assert read[f.name] == set(f.uses), f.name


def test_no_new_feature_moves_with_the_label_from_now_on(sample_store, tmp_path):
    original = _features(sample_store, SPEC)
    changed_store = tmp_path / "changed.duckdb"
    shutil.copy(sample_store, changed_store)
    date, key = _scored_row(changed_store, 0.6)
    _change_what_must_not_matter(changed_store, date, key)
    changed = _features(changed_store, SPEC)
    names = [f.name for f in feature_catalog(SPEC)]
    at = original.index[original["key"] == key][0]
    pd.testing.assert_frame_equal(changed.loc[:at, names], original.loc[:at, names])
    assert original.loc[at, [f"n_{w.stem}" for w in NEW]].sum() > 0


def test_the_online_index_gives_the_batch_s_features(incidents_con):
    import datetime as dt

    import numpy as np

    from crimeclass.features._history import history_columns
    from crimeclass.features._online import HistoryIndex
    from crimeclass.features._sql import history_rows_sql

    since, until = "2017-01-01", "2017-04-01"
    rows = incidents_con.sql(history_rows_sql(SPEC, since=since, until=until)).to_arrow_table()
    cols = {n: np.where(v < 0, np.nan, v) if v.dtype.kind == "i" else v
            for n, v in history_columns(rows, SPEC).items()}
    lo_us = (dt.datetime(2017, 1, 1) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    us = rows.column("_us").to_pylist()
    want = {k: {n: v[i] for n, v in cols.items()}
            for i, k in enumerate(rows.column("key").to_pylist()) if us[i] >= lo_us}
    index = HistoryIndex.from_connection(incidents_con, SPEC, until=since)
    incidents_con.execute(f"CREATE TEMP VIEW new_rows AS SELECT * FROM incidents WHERE date "
                          f">= TIMESTAMP '{since}' AND date < TIMESTAMP '{until}'")
    fed = index.rows(incidents_con, "new_rows")
    assert len(fed) == len(want) > 100
    for row in fed:
        got = index.sums(row)
        assert got.keys() == want[row["key"]].keys()
        for name, value in want[row["key"]].items():
            np.testing.assert_equal(got[name], value, err_msg=f"{name} of {row['key']}")
        index.add(row)
