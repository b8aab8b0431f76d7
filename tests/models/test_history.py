"""history_complete: the earlier incidents of the input and the history cover the lookback.

The run's features look back 365 days (its longest window). Each case keeps real rows of
the sample in chosen periods: a history store, the input as its own history, both, and a
store as input; a period without any incident is a gap after which the history restarts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd

from crimeclass.data import Store
from crimeclass.models import PredictOptions, open_run, predict, score

LOOKBACK = 365


def _store_of(sample_store: Path, path: Path, keep: str) -> Path:
    """A copy of the sample store holding only the incidents where ``keep`` holds."""
    shutil.copy(sample_store, path)
    con = duckdb.connect(str(path))
    try:
        con.execute(f"DELETE FROM incidents WHERE NOT ({keep})")
    finally:
        con.close()
    return path


def _rows(sample_store: Path, where: str) -> pd.DataFrame:
    """Validated incidents of the sample (the store's columns), in time order."""
    con = duckdb.connect(str(sample_store), read_only=True)
    try:
        return con.sql(f"SELECT * EXCLUDE (location) FROM incidents WHERE {where} "
                       "ORDER BY date, key").df()
    finally:
        con.close()


def _first_day(sample_store: Path, where: str) -> pd.Timestamp:
    con = duckdb.connect(str(sample_store), read_only=True)
    try:
        (day,) = con.execute(f"SELECT min(date) FROM incidents WHERE {where}").fetchone()
    finally:
        con.close()
    return pd.Timestamp(day).normalize()


def _history(rows: pd.DataFrame, run_dir: Path, store: Path | None = None) -> pd.DataFrame:
    model = open_run(run_dir).load_model("lr")
    if store is None:
        return score(rows, model).to_arrow().to_pandas()
    with Store(store, read_only=True) as history:
        return score(rows, model, history=history).to_arrow().to_pandas()


def _days_since(dates: pd.Series, start: pd.Timestamp) -> pd.Series:
    return (dates.dt.normalize() - start).dt.days.clip(upper=LOOKBACK)


def _check(got: pd.DataFrame, start: pd.Timestamp) -> None:
    """Every row's history reaches back to ``start``, at most the lookback."""
    want = _days_since(got["date"], start)
    assert got["history_days"].tolist() == want.astype(float).tolist()
    assert (got["history_complete"] == (want >= LOOKBACK)).all()


JAN_2016 = "date >= '2016-01-04' AND date < '2016-01-11'"
DEC_2016 = "date >= '2016-12-20' AND date < '2017-01-01'"
SINCE_JULY_2015 = "date >= '2015-07-01' AND date < '2017-01-01'"


def test_a_history_store_that_starts_within_the_lookback_leaves_the_rows_incomplete(
        run, sample_store, tmp_path):
    # the store begins in July 2015: a row of January 2016 has half a year of history
    store = _store_of(sample_store, tmp_path / "h.duckdb", SINCE_JULY_2015)
    rows = pd.concat([_rows(sample_store, JAN_2016), _rows(sample_store, DEC_2016)])
    got = _history(rows, run.run_dir, store)
    _check(got, _first_day(sample_store, SINCE_JULY_2015))
    jan = got["date"] < "2016-02-01"
    assert not got.loc[jan, "history_complete"].any()
    assert got.loc[~jan, "history_complete"].all()


def test_a_history_store_that_ends_before_the_input_leaves_a_gap(run, sample_store,
                                                               tmp_path):
    # the store holds the first half of 2015 only; the second half is missing: the
    # history of the 2016 rows starts with the input itself, not with the store
    store = _store_of(sample_store, tmp_path / "h.duckdb",
                      "date >= '2015-01-01' AND date < '2015-07-01'")
    rows = _rows(sample_store, "date >= '2016-01-01' AND date < '2017-01-01'")
    got = _history(rows, run.run_dir, store)
    _check(got, rows["date"].min().normalize())
    assert not got.loc[got["date"] < "2016-12-30", "history_complete"].any()


def test_the_input_as_its_own_history(run, sample_store):
    rows = _rows(sample_store, SINCE_JULY_2015)
    got = _history(rows, run.run_dir)
    _check(got, rows["date"].min().normalize())
    assert got["history_complete"].any() and not got["history_complete"].all()


def test_an_input_with_a_gap_restarts_its_history_after_it(run, sample_store):
    # no incident from July to September 2015: the rows of 2016 before October have less
    # than a year of history, though the input begins in January 2015
    rows = _rows(sample_store, "date >= '2015-01-01' AND date < '2017-01-01' AND NOT "
                               "(date >= '2015-07-01' AND date < '2015-10-01')")
    got = _history(rows, run.run_dir)
    _check(got.loc[got["date"] >= "2015-10-01"],
           _first_day(sample_store, "date >= '2015-10-01'"))
    _check(got.loc[got["date"] < "2015-07-01"], rows["date"].min().normalize())
    early_2016 = (got["date"] >= "2016-01-01") & (got["date"] < "2016-09-01")
    assert early_2016.any() and not got.loc[early_2016, "history_complete"].any()


def test_a_history_store_and_the_input_together(run, sample_store, tmp_path):
    # the store holds the first half of 2015, the input the rest: one stretch of data
    store = _store_of(sample_store, tmp_path / "h.duckdb",
                      "date >= '2015-01-01' AND date < '2015-07-01'")
    rows = _rows(sample_store, SINCE_JULY_2015)
    got = _history(rows, run.run_dir, store)
    _check(got, _first_day(sample_store, "date >= '2015-01-01'"))
    assert got.loc[got["date"] >= "2016-01-04", "history_complete"].all()
    alone = _history(rows, run.run_dir)
    assert not alone.loc[alone["date"] < "2016-06-30", "history_complete"].any()


def test_a_history_store_and_the_input_with_a_gap_between(run, sample_store, tmp_path):
    # the store stops in March 2015, the input begins in July: the history restarts there
    store = _store_of(sample_store, tmp_path / "h.duckdb",
                      "date >= '2015-01-01' AND date < '2015-04-01'")
    rows = _rows(sample_store, SINCE_JULY_2015)
    got = _history(rows, run.run_dir, store)
    _check(got, rows["date"].min().normalize())
    assert not got.loc[got["date"] < "2016-06-30", "history_complete"].any()


def test_a_store_as_input_with_a_gap(run, sample_store, tmp_path):
    gap = "date >= '2015-07-01' AND date < '2015-10-01'"
    store = _store_of(sample_store, tmp_path / "s.duckdb", f"NOT ({gap})")
    out = tmp_path / "p.parquet"
    predict(run.run_dir, store, out, options=PredictOptions(since="2016-01-01",
                                                            until="2017-01-01"))
    got = pd.read_parquet(out)
    _check(got, _first_day(sample_store, "date >= '2015-10-01'"))
    assert (~got["history_complete"]).sum() > 0.5 * len(got)
