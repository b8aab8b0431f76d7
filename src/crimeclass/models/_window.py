"""Which period is held out: the most recent complete year by default.

The held-out period is never used for training or tuning; the training rows
are every labeled incident of the window before it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crimeclass.engines import Engine
from crimeclass.models._errors import ModelOptionError, TrainingDataError

__all__ = ["Window", "complete_years", "period_text", "resolve_window"]


@dataclass(frozen=True)
class Window:
    """The training period ``[train_since, holdout_since)`` and the held-out one."""

    train_since: dt.datetime
    holdout_since: dt.datetime
    holdout_until: dt.datetime
    holdout_label: str

    def to_dict(self) -> dict[str, Any]:
        return {"train": {"since": self.train_since.isoformat(),
                          "until": self.holdout_since.isoformat()},
                "holdout": {"since": self.holdout_since.isoformat(),
                            "until": self.holdout_until.isoformat(),
                            "label": self.holdout_label}}


def _ts(value: str | dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).to_pydatetime()
    except (ValueError, TypeError) as e:
        raise ModelOptionError(f"{value!r} is not a date (use YYYY-MM-DD)", value=value) from e


def _at(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t.isoformat(sep=' ')}'"


def complete_years(engine: Engine, since: dt.datetime | None,
                   until: dt.datetime | None) -> list[int]:
    """Calendar years of the window the store covers completely.

    A year counts as complete when the window spans all of it, each of its 12
    months holds at least a third of the year's average month, and it holds at
    least a tenth of the rows of the median year of the store. The last two
    rules leave out years that only side files reach (a list of homicides, a
    few weeks of an export), where a model would be judged on a selection.
    """
    where = ["is_index IS NOT NULL"]
    if since is not None:
        where.append(f"date >= {_at(since)}")
    if until is not None:
        where.append(f"date < {_at(until)}")
    rows = engine.table(
        f"SELECT year(date) AS year, month(date) AS month, count(*) AS n FROM {engine.source} "
        f"WHERE {' AND '.join(where)} GROUP BY ALL ORDER BY 1, 2").to_pylist()
    if not rows:
        return []
    months = pd.DataFrame(rows, columns=["year", "month", "n"])
    per_year = months.groupby("year")["n"].sum()
    median = float(per_year.median())
    out = []
    for year, grp in months.groupby("year"):
        if since is not None and since > dt.datetime(int(year), 1, 1):
            continue
        if until is not None and until < dt.datetime(int(year) + 1, 1, 1):
            continue
        mean = grp["n"].sum() / 12
        if len(grp) == 12 and (grp["n"] >= mean / 3).all() and grp["n"].sum() >= median / 10:
            out.append(int(year))
    return out


def resolve_window(engine: Engine, *, since: str | None = None, until: str | None = None,
                   holdout: str = "auto") -> Window:
    """The training and held-out periods of a store.

    Parameters
    ----------
    engine : Engine
        Its incidents (``engine.source``): a store's, through ``DuckDBEngine.from_store``.
    since, until : str, optional
        The data window ``[since, until)`` (ISO dates); the store's whole span
        by default.
    holdout : str, default="auto"
        ``auto`` (the latest complete year of the window), a year ``2017``, a
        month ``2017-06``, or ``START:END`` (ISO dates, END excluded).
    """
    lo, hi = _ts(since), _ts(until)
    if lo is not None and hi is not None and lo >= hi:
        raise ModelOptionError(f"--since {since} is not before --until {until}",
                               option="--since/--until", value=(since, until))
    holdout = holdout.strip()
    if holdout == "auto":
        years = complete_years(engine, lo, hi)
        if not years:
            raise ModelOptionError("the window holds no complete calendar year to hold out; "
                                   "pass --holdout START:END (or a year) explicitly",
                                   option="--holdout", value=holdout)
        start, end = dt.datetime(years[-1], 1, 1), dt.datetime(years[-1] + 1, 1, 1)
        label = str(years[-1])
    elif re.fullmatch(r"\d{4}", holdout):
        y = int(holdout)
        start, end, label = dt.datetime(y, 1, 1), dt.datetime(y + 1, 1, 1), holdout
    elif re.fullmatch(r"\d{4}-\d{2}", holdout):
        start = pd.Timestamp(holdout + "-01").to_pydatetime()
        end = (pd.Timestamp(start) + pd.offsets.MonthBegin(1)).to_pydatetime()
        label = holdout
    elif ":" in holdout:
        a, b = (_ts(x) for x in holdout.split(":", 1))
        if a is None or b is None or a >= b:
            raise ModelOptionError(f"--holdout {holdout}: START must be before END",
                                   option="--holdout", value=holdout)
        start, end, label = a, b, holdout
    else:
        raise ModelOptionError(f"--holdout {holdout!r}: use auto, a year (2017), a month "
                               "(2017-06) or START:END", option="--holdout", value=holdout)
    if lo is not None and start < lo:
        raise ModelOptionError(f"the held-out period starts {start:%Y-%m-%d}, before --since "
                               f"{since}", option="--holdout", value=holdout)
    if hi is not None and end > hi:
        raise ModelOptionError(f"the held-out period ends {end:%Y-%m-%d}, after --until "
                               f"{until}", option="--holdout", value=holdout)
    first = engine.table(f"SELECT min(date) AS first FROM {engine.source} WHERE is_index IS NOT "
                         f"NULL{f' AND date >= {_at(lo)}' if lo else ''}").to_pylist()[0]["first"]
    if first is None:
        raise TrainingDataError("the store holds no labeled incidents in the window", rows=0)
    train_since = lo or first
    if train_since >= start:
        raise ModelOptionError(f"no training period: the held-out period starts "
                               f"{start:%Y-%m-%d}, and the window's first labeled incident is "
                               f"{first:%Y-%m-%d}", option="--holdout", value=holdout)
    return Window(train_since=train_since, holdout_since=start, holdout_until=end,
                  holdout_label=label)


def period_text(since: str, until: str | None, last: str | None = None) -> str:
    """A window ``[since, until)`` in words, the same in every table of train and evaluate.

    ``until`` is excluded and said so: ``2017-01-01 to 2018-01-01 (excluded)``; a window
    open at its end reads up to its ``last`` incident instead.
    """
    if until is None:
        return f"{since[:10]} to {(last or since)[:10]} (its last incident)"
    return f"{since[:10]} to {until[:10]} (excluded)"
