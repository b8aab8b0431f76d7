"""The catalog on DuckDB, checked against oracles computed with pandas and matplotlib."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine
from crimeclass.explore import (
    HEX_GRID,
    FilterError,
    Filters,
    community_areas,
    compute,
    parse_filters,
)


@pytest.fixture(scope="module")
def frame(sample_store: Path) -> pd.DataFrame:
    """The sample's canonical rows, for pandas oracles."""
    with Store(sample_store, read_only=True) as st:
        return st.con.sql(st.canonical_sql()).to_arrow_table().to_pandas()


def _df(ex, name):
    return ex.tables[name].to_pandas()


def test_counts_by_year_add_up_to_the_store(sample_exploration, sample_store):
    t = _df(sample_exploration, "incidents_by_year")
    with Store(sample_store, read_only=True) as st:
        info = st.info()
    assert dict(zip(t.year, t["count"], strict=True)) == info["years"]
    assert sample_exploration.rows == info["rows"] == t["count"].sum()


def test_partial_years_are_flagged_not_compared(sample_exploration):
    t = _df(sample_exploration, "incidents_by_year").set_index("year")
    # 2001-2017 are complete years of the portal; 2018-2021 hold homicides only
    assert t.loc[2001:2017, "complete"].all()
    assert not t.loc[2018:2026, "complete"].any()
    assert t.loc[2018, "note"] == "29 of 365 days; only 1 offense type"
    assert t.loc[2018:2026, "change"].isna().all()
    assert t.loc[2002, "change"] == pytest.approx(t.loc[2002, "count"] / t.loc[2001, "count"] - 1)


def test_hour_by_weekday_matches_pandas(sample_exploration, frame):
    t = _df(sample_exploration, "hour_by_weekday")
    assert len(t) == 7 * 24
    expect = frame.groupby([frame.date.dt.day_of_week + 1, frame.date.dt.hour]).size()
    got = t.set_index(["weekday", "hour"])["count"]
    assert got[got > 0].to_dict() == expect.to_dict()
    assert t.loc[t.weekday == 1, "day_name"].unique().tolist() == ["Monday"]
    assert t.share.sum() == pytest.approx(1.0)


def test_primary_types_merge_old_spellings_and_give_index_share(sample_exploration, frame):
    t = _df(sample_exploration, "top_primary_types").set_index("primary_type")
    assert "CRIM SEXUAL ASSAULT" not in t.index
    old_and_new = frame.primary_type.isin(["CRIM SEXUAL ASSAULT", "CRIMINAL SEXUAL ASSAULT"])
    assert t.loc["CRIMINAL SEXUAL ASSAULT", "count"] == old_and_new.sum()
    theft = frame[frame.primary_type == "BATTERY"]
    assert t.loc["BATTERY", "index_share"] == pytest.approx(theft.is_index.mean())
    assert t["share"].sum() == pytest.approx(1.0)
    assert t["count"].is_monotonic_decreasing


def test_arrest_rate_by_district_matches_pandas(sample_exploration, frame):
    t = _df(sample_exploration, "arrest_rate_by_district")
    g = frame.groupby("district", dropna=False)
    expect = g.arrest.mean()
    got = t.set_index("district")["arrest_rate"]
    assert got.loc[11] == pytest.approx(expect.loc[11])
    # incidents without a district are a row of their own, last
    assert pd.isna(t.district.iloc[-1])
    assert t["count"].iloc[-1] == frame.district.isna().sum()
    assert t.loc[t.district == 1, "name"].item() == "Central"


def test_community_areas_carry_their_names(sample_exploration):
    t = _df(sample_exploration, "incidents_by_community_area").dropna(subset=["community_area"])
    names = dict(zip(*community_areas().to_pydict().values(), strict=True))
    assert len(names) == 77 and names[25] == "Austin"
    assert all(names[int(a)] == n for a, n in zip(t.community_area, t.name, strict=True))


def test_missing_columns_show_as_missing_by_year(sample_exploration):
    t = _df(sample_exploration, "missing_by_year").set_index(["year", "column_name"])
    # the portal published no district before 2011: mostly missing, not zero incidents
    assert t.loc[(2005, "district"), "share"] > 0.9
    assert t.loc[(2015, "district"), "share"] == 0
    c = _df(sample_exploration, "missing_by_column").set_index("column_name")
    assert c.loc["date", "missing"] == 0 and c.loc["district", "share"] > 0.3


def test_spatial_density_matches_matplotlib_hexbin(sample_exploration, frame):
    from matplotlib.figure import Figure

    t = _df(sample_exploration, "spatial_density")
    pts = frame.dropna(subset=["latitude", "longitude"])
    assert t["count"].sum() == len(pts)
    # the same lattice, laid out in km for matplotlib: cells size_km wide, sqrt(3) * size tall
    x = (pts.longitude - HEX_GRID["lon0"]) * HEX_GRID["km_per_lon"]
    y = (pts.latitude - HEX_GRID["lat0"]) * HEX_GRID["km_per_lat"]
    s = HEX_GRID["size_km"]
    nx, ny = 60, 30
    hb = Figure().add_subplot().hexbin(x, y, gridsize=(nx, ny), mincnt=1,
                                       extent=(0, nx * s, 0, ny * s * np.sqrt(3)))
    mpl = {(round(cx / s * 2), round(cy / (s * np.sqrt(3)) * 2)): int(n)
           for (cx, cy), n in zip(hb.get_offsets(), hb.get_array(), strict=True)}
    ours = dict(zip(zip(t.hex_col, t.hex_row, strict=True), t["count"], strict=True))
    assert ours == mpl


def test_filters_apply_to_every_statistic(sample_store, frame):
    f = parse_filters("2012-03", "2016", ["theft", "Battery"], [11, 1])
    assert f == Filters(date(2012, 3, 1), date(2016, 12, 31), ("theft", "Battery"), (11, 1))
    with DuckDBEngine.open_store(sample_store) as engine:
        ex = compute(engine, f)
    keep = (frame.date >= "2012-03-01") & (frame.date < "2017-01-01") \
        & frame.primary_type.isin(["THEFT", "BATTERY"]) & frame.district.isin([1, 11])
    assert ex.rows == keep.sum()
    assert ex.filters.types == ("THEFT", "BATTERY") and ex.filters.districts == (1, 11)
    assert _df(ex, "incidents_by_district").district.tolist() == [1, 11]
    year = _df(ex, "incidents_by_year").set_index("year")
    assert year["count"].sum() == keep.sum()
    assert not year.loc[2012, "complete"] and year.loc[2013, "complete"]


def test_district_filter_marks_years_without_districts(sample_store):
    with DuckDBEngine.open_store(sample_store) as engine:
        ex = compute(engine, Filters(districts=(11,)))
    year = _df(ex, "incidents_by_year").set_index("year")
    assert not year.loc[2005, "complete"]
    assert "district not recorded" in year.loc[2005, "note"]
    assert year.loc[2014, "complete"]


@pytest.mark.parametrize("filters, match", [
    (Filters(districts=(99,)), r"unknown district 99; valid district values are: 1, 2, 3"),
    (Filters(types=("THFT",)), r"unknown primary type 'THFT'; valid type values are: ARSON"),
    (Filters(since=date(2015, 1, 1), until=date(2014, 1, 1)), "is after --until"),
], ids=["district", "type", "since-after-until"])
def test_bad_filters_list_the_valid_values(sample_store, filters, match):
    with DuckDBEngine.open_store(sample_store) as engine, pytest.raises(FilterError, match=match):
        compute(engine, filters)


def test_bad_dates_are_errors():
    with pytest.raises(FilterError, match="not a date"):
        parse_filters(since="2015-13-01")


def test_filters_that_match_nothing_give_empty_tables(sample_store):
    with DuckDBEngine.open_store(sample_store) as engine:
        ex = compute(engine, Filters(since=date(2018, 1, 1), types=("GAMBLING",)))
    assert ex.empty and ex.rows_window > 0
    assert ex.tables["top_primary_types"].num_rows == 0
    # the coverage of the window is still known, and every count is a true zero
    year = _df(ex, "incidents_by_year")
    assert len(year) and (year["count"] == 0).all()
