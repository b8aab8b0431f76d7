"""The online history index answers what the batch kernel (and the window SQL) computes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from crimeclass.features import FeatureSpec
from crimeclass.features._history import history_columns
from crimeclass.features._online import HistoryIndex
from crimeclass.features._sql import history_rows_sql

SPEC = FeatureSpec()


def _batch(con, since: str, until: str) -> dict[int, dict[str, float]]:
    rows = con.sql(history_rows_sql(SPEC, since=since, until=until)).to_arrow_table()
    cols = {n: np.where(v < 0, np.nan, v) if v.dtype.kind == "i" else v
            for n, v in history_columns(rows, SPEC).items()}
    keys = rows.column("key").to_pylist()
    lo = dt.datetime.fromisoformat(since)
    dates = rows.column("_us").to_pylist()
    lo_us = (lo - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    return {k: {n: v[i] for n, v in cols.items()}
            for i, k in enumerate(keys) if dates[i] >= lo_us}


def _rows_of(con, since: str, until: str) -> list[dict]:
    rows = history_rows_sql(SPEC, hashed=True, extra=("updated_on",))
    sql = (f"SELECT * FROM ({rows}) WHERE _us >= "
           f"epoch_us(TIMESTAMP '{since}') AND _us < epoch_us(TIMESTAMP '{until}') "
           "ORDER BY _us, key")
    return con.sql(sql).to_arrow_table().to_pylist()


def _assert_same(got: dict[str, float], want: dict[str, float], key: int) -> None:
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_equal(got[name], want[name], err_msg=f"{name} of incident {key}")


def test_online_features_of_2017_fed_in_date_order_equal_the_batch(incidents_con):
    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2017-01-01")
    held = len(index)
    want = _batch(incidents_con, "2017-01-01", "2018-01-01")
    incidents_con.execute("CREATE TEMP VIEW new_2017 AS SELECT * FROM incidents "
                          "WHERE date >= TIMESTAMP '2017-01-01' AND date < TIMESTAMP '2018-01-01'")
    fed = index.rows(incidents_con, "new_2017")  # in date order, places by the feature SQL
    assert len(fed) == len(want) > 1000
    for row in fed:
        _assert_same(index.sums(row), want[row["key"]], row["key"])
        assert index.add(row)
    assert len(index) == held + len(fed)
    places = {w.place for w in SPEC.history} | {"block"}  # the block of hours_since_block
    assert 0 < index.nbytes() < 20 * len(places) * len(index)  # a few arrays per place
    assert index.newest == dt.datetime(1970, 1, 1) + dt.timedelta(
        microseconds=max(r["_us"] for r in fed))


def test_an_update_with_a_newer_updated_on_replaces_the_old_version(incidents_con):
    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2018-01-01")
    rows = _rows_of(incidents_con, "2016-01-01", "2016-07-01")
    later_rows = _rows_of(incidents_con, "2016-07-01", "2017-01-01")
    place = {r["p_beat_location"]: r for r in later_rows if r["p_beat_location"] is not None}
    target = next(r for r in rows if r["p_beat_location"] in place and not r["is_index"])
    later = place[target["p_beat_location"]]
    before = index.sums(later)
    stale = {**target, "is_index": True}  # same updated_on: not newer, changes nothing
    assert not index.add(stale)
    assert index.sums(later) == before or _same_nan(index.sums(later), before)
    newer = {**target, "is_index": True,
             "updated_on": (target["updated_on"] or dt.datetime(2016, 7, 1))
             + dt.timedelta(days=1)}
    assert index.add(newer)
    after = index.sums(later)
    assert after["_k_beat_location_365d"] == before["_k_beat_location_365d"] + 1
    assert after["_n_beat_location_365d"] == before["_n_beat_location_365d"]
    # the batch kernel over the changed table says the same
    incidents_con.execute("UPDATE incidents SET is_index = true WHERE key = ?", [target["key"]])
    want = _batch(incidents_con, "2016-07-01", "2017-01-01")[later["key"]]
    _assert_same(after, want, later["key"])


def _same_nan(a: dict, b: dict) -> bool:
    return all((np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in a)


def test_a_moved_incident_leaves_its_old_block(incidents_con):
    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2018-01-01")
    rows = _rows_of(incidents_con, "2015-01-01", "2015-02-01")
    moved = next(r for r in rows if r["block"] is not None)
    probe = {**moved, "key": -1, "_us": moved["_us"] + 1, "updated_on": None}
    assert index.sums(probe)["_hours_since_block"] == pytest.approx(1 / 3_600_000_000)
    elsewhere = {**moved, "block": 12345, "updated_on": dt.datetime(2030, 1, 1)}
    elsewhere.update({k: None for k in moved if k.startswith("p_")})
    assert index.add(elsewhere)
    got = index.sums(probe)["_hours_since_block"]
    assert np.isnan(got) or got > 1 / 3_600_000_000


def test_the_compiled_searches_are_numpys_searchsorted_in_each_segment():
    import numpy as np

    from crimeclass.features._online import _lower_bound

    rng = np.random.default_rng(0)
    starts = np.r_[0, np.cumsum(rng.integers(0, 40, size=50))]  # some segments empty
    values = np.concatenate([np.sort(rng.integers(0, 100, size=b - a))
                             for a, b in zip(starts[:-1], starts[1:], strict=True)]
                            ).astype(np.int32)
    seg = rng.integers(0, 50, size=500)
    lo, hi = starts[seg], starts[seg + 1]
    x = rng.integers(-5, 105, size=500)
    want = [a + int(np.searchsorted(values[a:b], v)) for a, b, v in zip(lo, hi, x, strict=True)]
    assert _lower_bound(values, lo, hi, x).tolist() == want


def _reported_sql(con) -> dict[int, float]:
    """The report time of every incident, by the window SQL over the whole table."""
    from crimeclass.features import report_rows_sql

    got = con.sql(report_rows_sql("incidents")).fetchall()
    return {k: np.nan if t is None else t for k, t in got}


def _report_rows(con, keys: list[int]):
    """``reported_many``'s columns for incidents of the table, one group each (so that only
    the index's incidents count, as for the window over the table)."""
    rows = history_rows_sql(SPEC, hashed=True, extra=("updated_on",), cases=True)
    listed = ", ".join(str(k) for k in keys)
    return con.sql(f"SELECT * FROM ({rows}) WHERE key IN ({listed}) ORDER BY key"
                   ).to_arrow_table()


def test_report_times_of_incidents_fed_in_order_equal_the_window_sql(incidents_con):
    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2017-01-01")
    for row in index.rows(incidents_con, "(SELECT * FROM incidents WHERE date >= "
                                         "TIMESTAMP '2017-01-01')"):
        index.add(row)
    want = _reported_sql(incidents_con)
    keys = sorted(want)[::7]
    rows = _report_rows(incidents_con, keys)
    got = index.reported_many(rows, np.arange(rows.num_rows + 1))
    expected = np.array([want[k] for k in rows.column("key").to_pylist()], dtype=float)
    assert np.isfinite(expected).mean() > 0.5 and len(expected) > 1000
    np.testing.assert_array_equal(got, expected)


def test_a_request_counts_its_own_incidents_numbered_before(incidents_con):
    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2016-01-01")
    want = _reported_sql(incidents_con)  # the 2016 incidents are the request's own rows
    keys = incidents_con.sql("SELECT key FROM incidents WHERE date >= TIMESTAMP '2016-03-01' "
                             "AND date < TIMESTAMP '2016-03-08' AND year = 2016"
                             ).df()["key"].tolist()
    rows = _report_rows(incidents_con, keys)
    one_group = index.reported_many(rows)  # each sees the others numbered before it
    alone = index.reported_many(rows, np.arange(rows.num_rows + 1))
    numbered = rows.column("case_seq").is_valid().to_numpy(zero_copy_only=False)
    # alone, a 2016 incident finds few of its series (HZ) in an index of 2015; with the
    # request's others, those numbered within 100 before it (the sample is sparse)
    assert np.isnan(alone[numbered]).mean() > 0.9
    assert np.isfinite(one_group[numbered]).mean() > 0.3
    sub = incidents_con.sql(f"SELECT * FROM incidents WHERE date < TIMESTAMP '2016-01-01' "
                            f"OR key IN ({', '.join(map(str, keys))})").to_arrow_table()
    incidents_con.register("_sub", sub)
    from crimeclass.features import report_rows_sql

    sql_times = dict(incidents_con.sql(report_rows_sql("_sub")).fetchall())
    expected = np.array([np.nan if sql_times[k] is None else sql_times[k]
                         for k in rows.column("key").to_pylist()], dtype=float)
    np.testing.assert_array_equal(one_group, expected)
    assert not np.array_equal(one_group, [want[k] for k in rows.column("key").to_pylist()],
                              equal_nan=True)  # the table's later incidents are not the request's


def test_requests_of_several_incidents_each_count_only_their_own(incidents_con):
    # a scoring pass holds several requests: each request's incidents see the index's and
    # each other's, never another request's (one group a day: the window SQL over the
    # index's incidents and that day's)
    from crimeclass.features import report_rows_sql

    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2016-01-01")
    days = incidents_con.sql(
        "SELECT key, CAST(date AS DATE) AS day FROM incidents WHERE date >= "
        "TIMESTAMP '2016-03-01' AND date < TIMESTAMP '2016-03-15' AND year = 2016 "
        "ORDER BY day, key").fetchall()
    by_day: dict[dt.date, list[int]] = {}
    for key, day in days:
        by_day.setdefault(day, []).append(key)
    import pyarrow as pa

    tables = [_report_rows(incidents_con, keys) for keys in by_day.values()]
    rows = pa.concat_tables(tables)
    starts = np.cumsum([0, *(t.num_rows for t in tables)])
    got = index.reported_many(rows, starts)
    expected = []
    for keys, table in zip(by_day.values(), tables, strict=True):
        sub = incidents_con.sql(f"SELECT * FROM incidents WHERE date < TIMESTAMP '2016-01-01' "
                                f"OR key IN ({', '.join(map(str, keys))})").to_arrow_table()
        incidents_con.register("_sub", sub)
        times = dict(incidents_con.sql(report_rows_sql("_sub")).fetchall())
        incidents_con.unregister("_sub")
        expected += [np.nan if times[k] is None else times[k]
                     for k in table.column("key").to_pylist()]
    assert len(by_day) > 5 and np.isfinite(expected).sum() > 50
    np.testing.assert_array_equal(got, expected)


def test_an_update_moves_an_incident_among_the_report_times(incidents_con):
    index = HistoryIndex.from_connection(incidents_con, SPEC, until="2018-01-01")
    rows = _rows_of_cases(incidents_con)
    moved = rows[len(rows) // 2]
    later = [r for r in rows if r["case_series"] == moved["case_series"]
             and 0 < r["case_seq"] - moved["case_seq"] <= 100]
    assert later
    newer = {**moved, "_us": moved["_us"] - 400 * 86_400_000_000,
             "updated_on": dt.datetime(2030, 1, 1)}
    assert index.add(newer)
    incidents_con.execute("UPDATE incidents SET date = date - INTERVAL 400 DAY WHERE key = ?",
                          [moved["key"]])
    want = _reported_sql(incidents_con)
    table = _report_rows(incidents_con, [r["key"] for r in later])
    got = index.reported_many(table, np.arange(table.num_rows + 1))
    np.testing.assert_array_equal(
        got, [want[k] for k in table.column("key").to_pylist()])


def _rows_of_cases(con) -> list[dict]:
    rows = history_rows_sql(SPEC, hashed=True, extra=("updated_on",), cases=True)
    return con.sql(f"SELECT * FROM ({rows}) WHERE case_seq IS NOT NULL AND year(make_timestamp"
                   "(_us)) = 2016 ORDER BY case_series, case_seq").to_arrow_table().to_pylist()
