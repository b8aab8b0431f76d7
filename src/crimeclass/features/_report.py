"""When an incident was reported, dated by its case number: the ``report`` group's time.

A case number is the letters of a series then a number the department hands out in turn
as reports are taken (``JA100123``): the incidents numbered just before an incident were
reported just before it. The report time of an incident is the median occurrence time of
the incidents of its series numbered 1 to :data:`REPORT_NEIGHBOURS` before it
(:func:`reported_sql`: a window over every incident of the series, which DuckDB and Spark
run). :class:`ReportTimes` computes the same median for new incidents from the case numbers
the online index holds (and a request's own incidents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimeclass.features._history import micros

__all__ = ["CASE_SEQ_SQL", "CASE_SERIES_SQL", "REPORT_NEIGHBOURS", "ReportTimes",
           "reported_sql"]

#: How many case numbers before an incident's are read for its report time.
REPORT_NEIGHBOURS = 100
#: A case number's series (its letters) and its number in that series.
CASE_SERIES_SQL = "regexp_extract(case_number, '^([A-Z]+)[0-9]+$', 1)"
CASE_SEQ_SQL = "TRY_CAST(regexp_extract(case_number, '^[A-Z]+([0-9]+)$', 1) AS BIGINT)"


def reported_sql(us: str) -> str:
    """The report time of an incident (``_reported_us``, microseconds since 1970): the
    median occurrence time (``us``) of the incidents of the same case series numbered 1
    to :data:`REPORT_NEIGHBOURS` before it. Null without a case number of that form or
    without such incidents."""
    return (f"CASE WHEN {CASE_SEQ_SQL} IS NOT NULL THEN quantile_cont(CAST({us} AS DOUBLE), "
            f"0.5) OVER (PARTITION BY {CASE_SERIES_SQL} ORDER BY {CASE_SEQ_SQL} RANGE BETWEEN "
            f"{REPORT_NEIGHBOURS} PRECEDING AND 1 PRECEDING) END")


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions ``lo[i] .. hi[i] - 1`` of every row ``i``, one after the other, and
    the row of each."""
    counts = np.maximum(hi - lo, 0)
    row = np.repeat(np.arange(len(lo)), counts)
    first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return row, np.arange(int(counts.sum())) + first


def medians(row: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` rows, DuckDB's ``quantile_cont(x, 0.5)`` (Spark's
    ``percentile``) of the ``values`` given for it (``row``: the row of each): the middle
    value, or ``lo + (hi - lo) * 0.5`` of the two middle ones; NaN for a row without
    values."""
    order = np.lexsort((values, row))
    v = np.asarray(values, dtype=np.float64)[order]
    count = np.bincount(row, minlength=n)
    first = np.cumsum(count) - count
    out = np.full(n, np.nan)
    has = count > 0
    lo = v[(first + (count - 1) // 2)[has]]
    hi = v[(first + count // 2)[has]]
    out[has] = lo + (hi - lo) * 0.5
    return out


def _between(numbers: np.ndarray, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the numbers 1 to :data:`REPORT_NEIGHBOURS` before each of ``seq`` lie in the
    ascending ``numbers``."""
    return (np.searchsorted(numbers, seq - REPORT_NEIGHBOURS, side="left"),
            np.searchsorted(numbers, seq - 1, side="right"))


def _own(seq: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows numbered ``seq`` in groups ``group`` (one series), each row's neighbours
    among the rows of its own group: pairs (row, neighbour row)."""
    if len(group) and group[0] == group[-1] and (group == group[0]).all():
        order = np.argsort(seq, kind="stable")
        row, pos = _ranges(*_between(seq[order], seq))
        return row, order[pos]
    base = int(seq.min()) - REPORT_NEIGHBOURS
    width = int(seq.max()) - base + 1
    if width * (int(group.max()) + 1) >= 1 << 62:  # one group at a time
        rows, own = [], []
        for g in np.unique(group):
            at = np.flatnonzero(group == g)
            row, pos = _own(seq[at], group[at])
            rows.append(at[row])
            own.append(at[pos])
        return np.concatenate(rows), np.concatenate(own)
    key = group * width + (seq - base)  # sorted by (group, number) as one number
    order = np.argsort(key, kind="stable")
    row, pos = _ranges(*_between(key[order], key))
    return row, order[pos]


@dataclass
class ReportTimes:
    """The incidents of an index by case series and number, for the report times of new
    incidents; later arrivals (and newer versions of held incidents) are buffered."""

    series: np.ndarray  # sorted distinct series; code = position
    starts: np.ndarray  # segment of code c: seq[starts[c]:starts[c + 1]]
    seq: np.ndarray  # case numbers, ascending within each segment
    us: np.ndarray  # occurrence times, in the same order
    keys: np.ndarray  # incident keys, in the same order
    replaced: set[int] = field(default_factory=set)  # sorted keys with a later version
    added: dict[Any, dict[int, tuple[int, int]]] = field(default_factory=dict)
    series_of: dict[int, Any] = field(default_factory=dict)  # later arrivals' series

    @classmethod
    def build(cls, keys: np.ndarray, us: np.ndarray, series: Any, seq: Any) -> ReportTimes:
        """From each incident's key, time, case series and number (Arrow columns; the
        incidents without a number are left out)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        has = np.asarray(seq.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        names, codes = np.unique(np.asarray(pc.filter(series, pa.array(has)).to_pylist(),
                                            dtype=object), return_inverse=True)
        number = np.asarray(pc.filter(seq, pa.array(has)).to_numpy(), dtype=np.int64)
        order = np.lexsort((number, codes))
        return cls(names, np.searchsorted(codes[order], np.arange(len(names) + 1)),
                   number[order], us[has][order], keys[has][order])

    def _held(self, name: Any, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For rows of series ``name`` numbered ``seq``, the times of the incidents held
        numbered 1 to :data:`REPORT_NEIGHBOURS` before each (and the row of each time)."""
        rows, times = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        code = int(np.searchsorted(self.series, name))
        if code < len(self.series) and self.series[code] == name:
            s, e = int(self.starts[code]), int(self.starts[code + 1])
            lo, hi = _between(self.seq[s:e], seq)
            row, at = _ranges(lo + s, hi + s)
            if self.replaced:  # versions replaced by later arrivals are let go
                keep = ~np.isin(self.keys[at], np.fromiter(self.replaced, np.int64))
                row, at = row[keep], at[keep]
            rows.append(row)
            times.append(self.us[at])
        if self.added.get(name):
            added = np.array(sorted(self.added[name].values()), dtype=np.int64)
            row, at = _ranges(*_between(added[:, 0], seq))
            rows.append(row)
            times.append(added[at, 1])
        return np.concatenate(rows), np.concatenate(times)

    def add(self, key: int, incident: dict[str, Any], us: int, replaces: bool) -> None:
        """Hold the case number of a new version of an incident (its old one let go)."""
        if replaces:
            if key in self.series_of:
                self.added.get(self.series_of.pop(key), {}).pop(key, None)
            else:
                self.replaced.add(key)
        if incident.get("case_seq") is not None:
            series = incident.get("case_series")
            self.added.setdefault(series, {})[key] = (int(incident["case_seq"]), us)
            self.series_of[key] = series

    def reported(self, rows: Any, starts: np.ndarray | None = None) -> np.ndarray:
        """The report time of each row of a table with ``_us``, ``case_series`` and
        ``case_seq``, from the incidents held and the rows of its own group (``starts``:
        where each group begins; by default one group). NaN where there is none."""
        n = rows.num_rows
        us = micros(rows.column("_us"))
        seq = rows.column("case_seq")
        numbered = np.asarray(seq.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        seq = np.asarray(seq.fill_null(0).to_numpy(), dtype=np.int64)
        at = np.flatnonzero(numbered)
        names, code = np.unique(np.asarray(rows.column("case_series").to_pylist(),
                                           dtype=object)[at], return_inverse=True)
        starts = np.array([0, n]) if starts is None else np.asarray(starts)
        group = np.searchsorted(starts, at, side="right") - 1
        found_rows, found_times = [], []
        for c, name in enumerate(names):
            mine = at[code == c]  # the rows of the series, in the table's order
            row, times = self._held(name, seq[mine])
            found_rows.append(mine[row])
            found_times.append(times)
            row, own = _own(seq[mine], group[code == c])
            found_rows.append(mine[row])
            found_times.append(us[mine[own]])
        if not found_rows:
            return np.full(n, np.nan)
        return medians(np.concatenate(found_rows), np.concatenate(found_times), n)

    def nbytes(self) -> int:
        return self.starts.nbytes + self.seq.nbytes + self.us.nbytes + self.keys.nbytes
