from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from crimeclass.engines import DuckDBEngine
from crimeclass.models import complete_years, resolve_window


@pytest.fixture
def con(sample_store):
    """The sample store's incidents, through the engine that train hands the window."""
    c = duckdb.connect(str(sample_store), read_only=True)
    yield DuckDBEngine(c)
    c.close()


def test_complete_years_leave_out_years_only_side_files_reach(con):
    years = complete_years(con, None, None)
    assert years == list(range(2001, 2018))  # not the homicide-only years, not 2022-2026


def test_auto_holds_out_the_latest_complete_year(con):
    w = resolve_window(con)
    assert (w.holdout_since, w.holdout_until) == (dt.datetime(2017, 1, 1),
                                                  dt.datetime(2018, 1, 1))
    assert w.holdout_label == "2017"
    assert w.train_since.year == 2001
    w = resolve_window(con, since="2012-01-01", until="2016-01-01")
    assert w.holdout_label == "2015" and w.train_since == dt.datetime(2012, 1, 1)


@pytest.mark.parametrize("holdout, start, end", [
    pytest.param("2016", "2016-01-01", "2017-01-01", id="year"),
    pytest.param("2016-06", "2016-06-01", "2016-07-01", id="month"),
    pytest.param("2016-03-01:2016-09-01", "2016-03-01", "2016-09-01", id="range"),
])
def test_holdout_can_be_chosen(con, holdout, start, end):
    w = resolve_window(con, holdout=holdout)
    assert w.holdout_since == dt.datetime.fromisoformat(start)
    assert w.holdout_until == dt.datetime.fromisoformat(end)


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"holdout": "last"}, "use auto, a year", id="bad-holdout"),
    pytest.param({"holdout": "2016-09-01:2016-03-01"}, "START must be before END", id="reversed"),
    pytest.param({"since": "2017-01-01", "holdout": "2016"}, "before --since", id="before-since"),
    pytest.param({"until": "2016-01-01", "holdout": "2016"}, "after --until", id="after-until"),
    pytest.param({"since": "2016-02-01", "until": "2016-12-01"}, "no complete calendar year",
                 id="no-complete-year"),
    pytest.param({"holdout": "2001"}, "no training period", id="nothing-before"),
    pytest.param({"since": "2016-01-01", "until": "2015-01-01"}, "is not before", id="empty"),
    pytest.param({"since": "yesterday"}, "is not a date", id="not-a-date"),
])
def test_bad_windows_raise_clear_errors(con, kwargs, match):
    with pytest.raises(ValueError, match=match):
        resolve_window(con, **kwargs)
