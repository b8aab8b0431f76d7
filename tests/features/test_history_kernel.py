"""The vectorized history kernel gives the window SQL's values, row for row."""

from __future__ import annotations

import numpy as np
import pytest

from crimeclass.features import FeatureSpec
from crimeclass.features._history import DAY_US, history_columns, latest_before, window_counts
from crimeclass.features._sql import history_rows_sql, rows_sql


def _sql_sums(con, spec: FeatureSpec, since: str, until: str):
    """The window SQL's own sums (``_n_``, ``_k_``, hours) of every row, by key: the
    definition's window frames (what ``feature_sql`` and Spark run)."""
    from crimeclass.features._catalog import hours_names
    from crimeclass.features._sql import _history_sql

    names = [c for w in spec.history for c in (f"_n_{w.stem}", f"_k_{w.stem}")]
    sql = (f"WITH rows AS ({rows_sql(spec, since=since, until=until)})\n"
           f"SELECT key, {', '.join([*names, *hours_names(spec)])} "
           f"FROM ({_history_sql(spec, None)})")
    return con.sql(sql).df().set_index("key")


@pytest.mark.parametrize("since,until", [("2012-01-01", "2018-01-01"),
                                         ("2016-03-01", "2017-07-01")], ids=["all", "part"])
def test_the_kernel_equals_the_window_sql_on_the_sample(incidents_con, since, until):
    spec = FeatureSpec()
    rows = incidents_con.sql(history_rows_sql(spec, since=since, until=until)).to_arrow_table()
    got = history_columns(rows, spec)
    want = _sql_sums(incidents_con, spec, since, until).loc[rows.column("key").to_pylist()]
    assert len(rows) > 1000
    for name, values in got.items():
        if values.dtype.kind == "i":
            values = np.where(values < 0, np.nan, values.astype(np.float64))
        expected = want[name].to_numpy(dtype=np.float64, na_value=np.nan)
        if name.startswith("_hours_since_"):
            np.testing.assert_allclose(values, expected, rtol=1e-12, equal_nan=True,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(values, expected, err_msg=name)
    # the windows are not all empty: the comparison says something
    assert got["_n_beat_28d"].max() > 0 and got["_k_block_location_1095d"].max() > 0


def test_window_counts_against_brute_force():
    rng = np.random.default_rng(7)
    n = 400
    codes = rng.integers(-1, 6, n)
    us = rng.integers(0, 30, n) * (DAY_US // 4)  # many ties on the same microsecond
    is_index = rng.random(n) < 0.4
    (got_n, got_k), = window_counts(codes, us, is_index, [3])
    for i in range(n):
        if codes[i] < 0:
            assert got_n[i] == got_k[i] == -1
            continue
        inside = (codes == codes[i]) & (us >= us[i] - 3 * DAY_US) & (us < us[i])
        assert got_n[i] == inside.sum()
        assert got_k[i] == (inside & is_index).sum()


@pytest.mark.parametrize("index", [False, True], ids=["incident", "index offense"])
def test_latest_before_against_brute_force(index):
    rng = np.random.default_rng(11)
    n = 300
    codes = rng.integers(-1, 5, n)  # -1: an unknown place
    us = rng.integers(0, 40, n) * (DAY_US // 8)  # many ties on the same microsecond
    is_index = rng.random(n) < 0.4
    got = latest_before(codes, us, 2, is_index=is_index if index else None)
    for i in range(n):
        inside = (codes == codes[i]) & (us >= us[i] - 2 * DAY_US) & (us < us[i])
        if index:
            inside &= is_index
        found = codes[i] >= 0 and inside.any()
        want = (us[i] - us[inside].max()) / 3_600_000_000 if found else np.nan
        np.testing.assert_equal(got[i], want)


@pytest.mark.parametrize("since,until,labeled_only", [
    ("2012-01-01", "2018-01-01", True), ("2017-01-01", "2018-01-01", False), (None, None, True)],
    ids=["train-window", "2017-unlabeled", "everything"])
def test_read_features_is_the_same_frame_by_kernel_or_by_window_sql(incidents_con, since, until,
                                                                   labeled_only):
    import pandas as pd

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features

    engine = DuckDBEngine(incidents_con)
    args = {"since": since, "until": until, "labeled_only": labeled_only}
    by_kernel = read_features(engine, FeatureSpec(), history="kernel", **args)
    by_sql = read_features(engine, FeatureSpec(), history="sql", **args)
    assert len(by_kernel) > 1000
    pd.testing.assert_frame_equal(by_kernel, by_sql, check_exact=True)
    # the kernel's relation is gone after the query
    assert "_history_sums" not in {r[0] for r in incidents_con.execute("SHOW TABLES").fetchall()}


@pytest.mark.parametrize("spec", [FeatureSpec(target="arrest"), FeatureSpec(allow_arrest=True)],
                         ids=["arrest-target", "allow-arrest"])
def test_the_kernel_frame_of_other_specs_is_the_window_sqls(incidents_con, spec):
    import pandas as pd

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features

    engine = DuckDBEngine(incidents_con)
    args = {"since": "2016-01-01", "until": "2018-01-01", "labeled_only": False}
    by_kernel = read_features(engine, spec, history="kernel", **args)
    by_sql = read_features(engine, spec, history="sql", **args)
    assert len(by_kernel) > 1000 and spec.label_column in by_kernel
    pd.testing.assert_frame_equal(by_kernel, by_sql, check_exact=True)
