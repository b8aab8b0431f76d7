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
