"""History around more places: the kind of place across the city, the grid cell and kind of
place, and the same four hours of the day (and part of the week) at a place.

Each window is checked against a pandas oracle that builds its place from the store's
columns in Python; the other guarantees (kernel against window SQL, the online index, Spark,
lineage, the label from now on) hold for every window of the default and are tested there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimeclass.engines import DuckDBEngine
from crimeclass.features import FeatureSpec, HistoryWindow, read_features
from crimeclass.features._catalog import HISTORY_PLACES

from .test_sql import _history_oracle

#: place -> the oracle's columns for it
ORACLE_KEYS = {
    "location": ["location_description"],
    "grid_location": ["grid_cell", "location_description"],
    "beat_hours": ["beat", "hours"],
    "block_hours": ["block", "hours"],
    "beat_week_hours": ["beat", "weekend", "hours"],
    "location_hours": ["location_description", "hours"],
    "community_location": ["community_area", "location_description"],
    "grid_hours": ["grid_cell", "hours"],
}
WINDOWS = tuple(HistoryWindow(place, days) for place, days in (
    ("location", 7), ("grid_location", 365), ("beat_hours", 365), ("block_hours", 1095),
    ("beat_week_hours", 365), ("location_hours", 28), ("community_location", 365),
    ("grid_hours", 365)))
SPEC = FeatureSpec(history=WINDOWS)


def test_every_place_has_an_oracle():
    assert {w.place for w in WINDOWS} == set(ORACLE_KEYS) <= set(HISTORY_PLACES)


def _incidents(con) -> pd.DataFrame:
    inc = con.execute("SELECT key, date, is_index, beat, block, location_description, "
                      "community_area, x_coordinate, y_coordinate FROM incidents").df()
    inc["hours"] = inc["date"].dt.hour // 4
    inc["weekend"] = inc["date"].dt.day_of_week >= 5
    x = np.floor(inc["x_coordinate"] / 1000).astype("Int64").astype(str)
    y = np.floor(inc["y_coordinate"] / 1000).astype("Int64").astype(str)
    inc["grid_cell"] = (x + "_" + y).where(inc["x_coordinate"].notna()
                                           & inc["y_coordinate"].notna())
    return inc


def _checked_rows(con, spec: FeatureSpec, seed: int, history: str = "kernel"):
    """The features of the second half of 2016, the store's incidents as the oracle sees
    them, and 150 of the frame's rows (position, row) to check."""
    frame = read_features(DuckDBEngine(con), spec, since="2016-06-01", until="2017-01-01",
                          history=history)
    inc = _incidents(con)
    rows = inc.set_index("key").loc[frame["key"]].reset_index()
    check = np.random.default_rng(seed).choice(len(frame), size=150, replace=False)
    return frame, inc, [(i, rows.iloc[i]) for i in check]


def test_new_places_count_what_a_pandas_oracle_counts(incidents_con):
    frame, inc, checked = _checked_rows(incidents_con, SPEC, seed=1)
    seen = dict.fromkeys(ORACLE_KEYS, 0)
    for i, row in checked:
        for w in WINDOWS:
            n, k = _history_oracle(inc, row, ORACLE_KEYS[w.place], w.days)
            got = frame[f"n_{w.stem}"].iloc[i], frame[f"index_{w.stem}"].iloc[i]
            np.testing.assert_equal(got, (n, k), err_msg=f"{w.stem} row {row['key']}")
            share = frame[f"index_share_{w.stem}"].iloc[i]
            assert share == pytest.approx(k / n) if n and n > 0 else np.isnan(share)
            seen[w.place] += bool(n and n > 0)
    assert all(v > 0 for v in seen.values()), seen  # every window counted something


def test_the_four_hours_and_the_part_of_the_week_split_a_place(incidents_con):
    frame = read_features(DuckDBEngine(incidents_con), SPEC, since="2016-01-01",
                          until="2017-01-01")
    # a part of a beat's day holds fewer incidents than the beat, and the weekday/weekend
    # split fewer still: the keys are not the beat alone
    beat = read_features(DuckDBEngine(incidents_con),
                         FeatureSpec(history=(HistoryWindow("beat", 365),)),
                         since="2016-01-01", until="2017-01-01")
    assert (frame["n_beat_hours_365d"] <= beat["n_beat_365d"]).all()
    assert (frame["n_beat_week_hours_365d"] <= frame["n_beat_hours_365d"]).all()
    assert (frame["n_beat_week_hours_365d"] < frame["n_beat_hours_365d"]).mean() > 0.5
