"""The feature query against oracles: pandas for the row features and the history
windows, and Spark running the same statement compiled by sqlglot."""

from __future__ import annotations

import datetime as dt
import re

import holidays
import numpy as np
import pandas as pd
import pytest
import sqlglot

from crimeclass.engines import DuckDBEngine, EngineError, SparkEngine, spark_session, to_spark_sql
from crimeclass.features import (
    FeatureSpec,
    HistoryWindow,
    _sql,
    feature_catalog,
    read_features,
    store_feature_sql,
)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain values: two frames of different windows know different categories."""
    return df.astype({c: object for c in df.columns if str(df[c].dtype) == "category"})


SMALL = FeatureSpec(history=(HistoryWindow("beat", 7), HistoryWindow("block_location", 365)))


@pytest.fixture
def frame(incidents_con):
    return read_features(DuckDBEngine(incidents_con), SMALL, since="2016-01-01", until="2017-01-01")


def test_frame_has_the_labeled_rows_of_the_window_in_time_order(incidents_con, frame):
    n = incidents_con.execute(
        "SELECT count(*) FROM incidents WHERE date >= '2016-01-01' AND date < '2017-01-01' "
        "AND is_index IS NOT NULL").fetchall()[0][0]
    assert len(frame) == n
    assert frame["date"].is_monotonic_increasing
    assert list(frame.columns[:3]) == ["key", "date", "is_index"]
    assert list(frame.columns[3:]) == [f.name for f in feature_catalog(SMALL)]
    for f in feature_catalog(SMALL):
        kind = "category" if f.kind in ("category", "high_cardinality") else "float32"
        assert str(frame[f.name].dtype) == kind, f.name


def test_time_features_match_python(frame):
    d = frame["date"]
    us = holidays.country_holidays("US", years=[2016])
    np.testing.assert_array_equal(frame["hour"], d.dt.hour)
    np.testing.assert_array_equal(frame["minute"], d.dt.minute)
    np.testing.assert_array_equal(frame["weekday"], d.dt.day_of_week + 1)
    np.testing.assert_array_equal(frame["weekend"], (d.dt.day_of_week >= 5).astype(float))
    np.testing.assert_array_equal(frame["month"], d.dt.month)
    np.testing.assert_array_equal(frame["day_of_year"], d.dt.day_of_year)
    np.testing.assert_array_equal(frame["holiday"], [float(x.date() in us) for x in d])
    np.testing.assert_allclose(frame["hour_sin"],
                               np.sin(2 * np.pi * (d.dt.hour + d.dt.minute / 60) / 24))
    assert frame["holiday"].sum() > 0


def test_place_features_match_python(incidents_con, frame):
    raw = incidents_con.execute("SELECT key, block, x_coordinate, y_coordinate FROM incidents"
                                ).df().set_index("key").loc[frame["key"]]
    street = raw["block"].str.replace(r"^[0-9X]+ +", "", regex=True)
    assert (frame["street"].astype(object).to_numpy() == street.to_numpy()).all()
    cell = (np.floor(raw["x_coordinate"] / 1000).astype("Int64").astype(str) + "_"
            + np.floor(raw["y_coordinate"] / 1000).astype("Int64").astype(str))
    has = raw["x_coordinate"].notna().to_numpy()
    assert (frame["grid_cell"].astype(object).to_numpy()[has] == cell.to_numpy()[has]).all()
    assert frame["grid_cell"].isna().to_numpy()[~has].all()


def _earlier(inc: pd.DataFrame, row: pd.Series, keys: list[str], days: int):
    """Which incidents share the row's place (``keys``) in the ``days`` before it; None
    where the row's place is unknown."""
    if any(pd.isna(row[k]) for k in keys):
        return None
    same = np.ones(len(inc), dtype=bool)
    for k in keys:
        same &= (inc[k] == row[k]).to_numpy()
    t = row["date"]
    # strictly earlier, and the same minute excluded (twin records of one event)
    return same & (inc["date"] >= t - pd.Timedelta(days=days)).to_numpy() \
        & (inc["date"] < t).to_numpy()


def _history_oracle(inc: pd.DataFrame, row: pd.Series, keys: list[str], days: int):
    inside = _earlier(inc, row, keys, days)
    if inside is None:
        return np.nan, np.nan
    return float(inside.sum()), float(inc["is_index"].to_numpy()[inside].astype(bool).sum())


def test_history_counts_only_strictly_earlier_incidents(incidents_con, frame):
    inc = incidents_con.execute(
        "SELECT key, date, is_index, beat, block, location_description FROM incidents").df()
    rows = inc.set_index("key").loc[frame["key"]].reset_index()
    rng = np.random.default_rng(0)
    check = rng.choice(len(frame), size=300, replace=False)
    # rows that share a beat and a minute with another incident are the hard case
    ties = inc[inc.duplicated(["beat", "date"], keep=False) & inc["beat"].notna()]["key"]
    tie_rows = np.flatnonzero(frame["key"].isin(ties).to_numpy())
    assert len(tie_rows) > 0
    for i in np.concatenate([check, tie_rows]):
        row = rows.iloc[i]
        for keys, days, stem in ((["beat"], 7, "beat_7d"),
                                 (["block", "location_description"], 365,
                                  "block_location_365d")):
            n, k = _history_oracle(inc, row, keys, days)
            got_n, got_k = frame[f"n_{stem}"].iloc[i], frame[f"index_{stem}"].iloc[i]
            np.testing.assert_equal((got_n, got_k), (n, k), err_msg=f"{stem} row {row['key']}")
            share = frame[f"index_share_{stem}"].iloc[i]
            if n and n > 0:
                assert share == pytest.approx(k / n)
            else:
                assert np.isnan(share)


def test_a_rows_own_label_never_reaches_its_features(incidents_con, frame):
    # pick an incident with a later incident in the same beat within 7 days
    later = frame[frame["n_beat_7d"] > 0].iloc[50]
    earlier = incidents_con.execute(
        "SELECT key FROM incidents WHERE beat = ? AND date < ? AND date >= ? - INTERVAL 7 DAY "
        "ORDER BY date DESC LIMIT 1",
        [int(later["beat"]), later["date"].to_pydatetime(),
         later["date"].to_pydatetime()]).fetchall()[0][0]
    incidents_con.execute("UPDATE incidents SET is_index = NOT is_index WHERE key = ?",
                          [earlier])
    flipped = read_features(DuckDBEngine(incidents_con), SMALL,
                            since="2016-01-01", until="2017-01-01")
    a = frame.set_index("key")
    b = flipped.set_index("key")
    feature_cols = [f.name for f in feature_catalog(SMALL)]
    if earlier in a.index:  # its own features: unchanged, whatever its label
        pd.testing.assert_series_equal(a.loc[earlier, feature_cols],
                                       b.loc[earlier, feature_cols])
    # a later incident of the beat sees the earlier label
    assert a.loc[later["key"], "index_beat_7d"] != b.loc[later["key"], "index_beat_7d"]


def test_features_do_not_depend_on_later_incidents(incidents_con, frame):
    # later by the time they happened; the report time reads the incidents reported
    # before (numbered before), some of which happened later: tested below
    cut = pd.Timestamp("2016-07-01")
    incidents_con.execute("DELETE FROM incidents WHERE date >= ?", [cut.to_pydatetime()])
    before = read_features(DuckDBEngine(incidents_con), SMALL,
                           since="2016-01-01", until="2017-01-01")
    expected = frame[frame["date"] < cut].reset_index(drop=True)
    reported = ["report_delay_days"]
    pd.testing.assert_frame_equal(_plain(before).drop(columns=reported),
                                  _plain(expected).drop(columns=reported))


def test_the_report_time_does_not_depend_on_later_reports(incidents_con, frame):
    # the incidents numbered after the middle of each case series: reported later
    later = ("case_number > (SELECT quantile_disc(i.case_number, 0.5) FROM incidents AS i "
             "WHERE left(i.case_number, 2) = left(incidents.case_number, 2))")
    kept = incidents_con.sql(f"SELECT key FROM incidents WHERE NOT ({later}) "
                             "OR case_number IS NULL").df()["key"]
    incidents_con.execute(f"DELETE FROM incidents WHERE {later}")
    before = read_features(DuckDBEngine(incidents_con), SMALL,
                           since="2016-01-01", until="2017-01-01")
    expected = frame[frame["key"].isin(kept)].reset_index(drop=True)
    assert len(before) == len(expected) > 1000
    np.testing.assert_array_equal(before["key"], expected["key"])
    got, want = before["report_delay_days"], expected["report_delay_days"]
    assert want.notna().mean() > 0.5
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_history_reaches_back_before_the_window(incidents_con):
    """Rows at the start of a window have the history they would have in a longer one."""
    short = read_features(DuckDBEngine(incidents_con), SMALL,
                          since="2016-03-01", until="2016-04-01")
    long = read_features(DuckDBEngine(incidents_con), SMALL, since="2015-01-01", until="2016-04-01")
    long = long[long["date"] >= "2016-03-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(_plain(short), _plain(long))


def test_unlabeled_rows_are_left_out_but_counted_as_history(incidents_con):
    key = incidents_con.execute(
        "SELECT key FROM incidents WHERE date >= '2016-05-01' AND beat IS NOT NULL "
        "ORDER BY date LIMIT 1").fetchall()[0][0]
    before = read_features(DuckDBEngine(incidents_con), SMALL,
                           since="2016-01-01", until="2017-01-01")
    incidents_con.execute("UPDATE incidents SET is_index = NULL WHERE key = ?", [key])
    after = read_features(DuckDBEngine(incidents_con), SMALL,
                          since="2016-01-01", until="2017-01-01")
    assert key in set(before["key"]) and key not in set(after["key"])
    assert before["n_beat_7d"].sum() == after.loc[:, "n_beat_7d"].sum() + before.loc[
        before["key"] == key, "n_beat_7d"].sum()
    all_rows = read_features(DuckDBEngine(incidents_con), SMALL,
                             since="2016-01-01", until="2017-01-01",
                             labeled_only=False)
    assert key in set(all_rows["key"])


def test_the_statement_compiles_to_spark_sql(incidents_con):
    sql = store_feature_sql(DuckDBEngine(incidents_con), FeatureSpec(), since="2016-01-01",
                            until="2017-01-01")
    spark = to_spark_sql(sql)
    sqlglot.parse_one(spark, read="spark")  # valid Spark SQL
    # 7 days, in µs, as two growing frames: Spark evaluates a sliding one again each row
    assert "RANGE BETWEEN UNBOUNDED PRECEDING AND 604800000001 PRECEDING" in spark
    assert not re.search(r"ORDER BY _us NULLS LAST RANGE BETWEEN \d+ PRECEDING", spark)
    assert "ORDER BY _us NULLS LAST RANGE BETWEEN UNBOUNDED" in spark
    # the report time: a median over the incidents numbered just before (a sliding frame
    # of about a hundred rows: a median has no growing form)
    assert "PERCENTILE(CAST(" in spark and "RANGE BETWEEN 100 PRECEDING AND 1" in spark
    assert "isodow" not in sql.lower()  # compiled wrongly by sqlglot; see ISODOW


@pytest.mark.parametrize(("place", "days"),
                         [("beat", 7), ("ward", 28), ("community_area", 365), ("district", 1)])
def test_growing_frames_sum_what_the_sliding_frame_sums(incidents_con, place, days):
    """The statement's difference of two growing frames is the frame that defines a
    window, ``RANGE BETWEEN n PRECEDING AND 1 PRECEDING``, on every row of the sample
    (ties and rows exactly n microseconds apart included)."""
    n = days * _sql.DAY_US

    def sliding(end: int) -> str:  # the frame of the n microseconds to ``end`` before
        return (f"(PARTITION BY {place} ORDER BY _us RANGE BETWEEN {n} PRECEDING "
                f"AND {end} PRECEDING)")

    got = incidents_con.sql(
        f"SELECT key, _us, coalesce(sum({_sql._BOTH}) OVER {sliding(1)}, 0) AS sliding, "
        f"{_sql._window_sum(place, days)} AS growing, "
        f"max(_us) OVER {sliding(1)} AS latest_sliding, "
        f"{_sql._hours_since(f'max(_us) OVER {_sql._upto(place, 1)}', days)} AS hours, "
        f"count(*) OVER {sliding(n)} AS at_edge "
        f"FROM (SELECT *, {_sql._US} AS _us FROM incidents) AS rows").df()
    assert len(got) > 1000 and (got["sliding"] > 0).sum() > 100
    assert (got["at_edge"] > 0).any()  # an earlier row exactly n microseconds before
    assert (got["sliding"] == got["growing"]).all()
    with_latest = got["latest_sliding"].notna()
    assert with_latest.equals(got["hours"].notna())
    assert with_latest.sum() > 100
    hours = (got["_us"] - got["latest_sliding"])[with_latest] / 3_600_000_000
    assert (hours == got["hours"][with_latest]).all()


@pytest.mark.slow
def test_spark_computes_the_same_features_as_duckdb(incidents_con):
    """Run the compiled statement on Spark (local) and compare every value."""
    spec = FeatureSpec(history=(HistoryWindow("beat", 28), HistoryWindow("block_location", 365)))
    sql = store_feature_sql(DuckDBEngine(incidents_con), spec, since="2016-01-01",
                            until="2018-01-01")
    duck = incidents_con.sql(sql).to_arrow_table().to_pandas()
    # every incident: the report time reads all those of a case series
    inc = incidents_con.sql("SELECT * EXCLUDE (location) FROM incidents").to_arrow_table()
    spark = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    try:
        spark.createDataFrame(inc).createOrReplaceTempView("incidents")
        out = spark.sql(to_spark_sql(sql)).toArrow().to_pandas()
    finally:
        spark.stop()
    assert len(out) == len(duck) > 5000
    assert list(out.columns) == list(duck.columns)
    assert (out["date"].dt.tz_localize(None) == duck["date"]).all()
    for col in duck.columns.drop("date"):
        if duck[col].dtype.kind in "fi":
            np.testing.assert_allclose(out[col].astype(float), duck[col].astype(float),
                                       rtol=1e-12, atol=1e-12, err_msg=col)
        else:
            assert (out[col].fillna("<null>").astype(str).to_numpy()
                    == duck[col].fillna("<null>").astype(str).to_numpy()).all(), col


@pytest.mark.slow
def test_read_features_gives_the_same_frame_on_spark(incidents_con, tmp_path):
    """read_features on a SparkEngine over a Parquet file of the incidents, against DuckDB."""
    import pyarrow.parquet as pq

    folder = tmp_path / "incidents"
    folder.mkdir()
    pq.write_table(incidents_con.sql("SELECT * EXCLUDE (location) FROM incidents"
                                     ).to_arrow_table(), folder / "part-0.parquet")
    duck = read_features(DuckDBEngine(incidents_con), SMALL, since="2016-01-01",
                         until="2017-01-01")
    session = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    try:
        with SparkEngine(folder, session=session) as engine:
            spark = read_features(engine, SMALL, since="2016-01-01", until="2017-01-01",
                                  batch_rows=5000)
            with pytest.raises(EngineError, match="spark.driver.memory"):
                read_features(engine, SMALL, since="2016-01-01", memory_limit="1GB")
    finally:
        session.stop()
    assert len(spark) == len(duck) > 3000
    spark["date"] = spark["date"].dt.tz_localize(None) if spark["date"].dt.tz else spark["date"]
    pd.testing.assert_frame_equal(_plain(spark), _plain(duck), check_dtype=False,
                                  rtol=1e-6)


def test_holidays_cover_the_years_asked(incidents_con):
    sql = store_feature_sql(DuckDBEngine(incidents_con), SMALL)
    assert "DATE '2012-12-25'" in sql and "DATE '2017-07-04'" in sql
    assert dt.date(2016, 11, 24).isoformat() in sql  # Thanksgiving 2016


def test_a_memory_limit_and_small_batches_change_nothing_but_the_memory(incidents_con, frame):
    before = incidents_con.execute("SELECT current_setting('memory_limit')").fetchall()
    limited = read_features(DuckDBEngine(incidents_con), SMALL,
                            since="2016-01-01", until="2017-01-01",
                            memory_limit="200MB", batch_rows=1000)
    pd.testing.assert_frame_equal(_plain(limited), _plain(frame))
    assert incidents_con.execute("SELECT current_setting('memory_limit')").fetchall() == before
