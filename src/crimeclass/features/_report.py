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


def _median(values: np.ndarray) -> float:
    """DuckDB's ``quantile_cont(x, 0.5)`` (Spark's ``percentile``): the middle value, or
    ``lo + (hi - lo) * 0.5`` of the two middle ones."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n % 2:
        return float(v[n // 2])
    lo, hi = v[n // 2 - 1], v[n // 2]
    return float(lo + (hi - lo) * 0.5)


def _by_series(series: list[Any], seq: list[Any], us: np.ndarray
               ) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
    """Incidents with a case number, by series: their numbers ascending, and their times."""
    out: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
    for name in {s for s, q in zip(series, seq, strict=True) if q is not None}:
        at = np.array([i for i, (s, q) in enumerate(zip(series, seq, strict=True))
                       if s == name and q is not None], dtype=np.int64)
        numbers = np.array([seq[i] for i in at], dtype=np.int64)
        order = np.argsort(numbers, kind="stable")
        out[name] = numbers[order], us[at[order]]
    return out


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

    def neighbours(self, series: Any, number: int) -> list[int]:
        """The times of the incidents held of ``series`` numbered 1 to
        :data:`REPORT_NEIGHBOURS` before ``number``."""
        lo_n, hi_n = number - REPORT_NEIGHBOURS, number - 1
        out: list[int] = []
        code = int(np.searchsorted(self.series, series))
        if code < len(self.series) and self.series[code] == series:
            s, e = int(self.starts[code]), int(self.starts[code + 1])
            a = s + int(np.searchsorted(self.seq[s:e], lo_n, side="left"))
            b = s + int(np.searchsorted(self.seq[s:e], hi_n, side="right"))
            out = [int(t) for k, t in zip(self.keys[a:b].tolist(), self.us[a:b].tolist(),
                                          strict=True) if k not in self.replaced]
        out += [t for n, t in self.added.get(series, {}).values() if lo_n <= n <= hi_n]
        return out

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
        import pyarrow as pa

        n = rows.num_rows
        out = np.full(n, np.nan)
        t = rows.column("_us")
        if not pa.types.is_integer(t.type):
            t = t.cast(pa.timestamp("us")).cast(pa.int64())
        us = np.asarray(t.to_numpy(), dtype=np.int64)
        series = rows.column("case_series").to_pylist()
        seq = rows.column("case_seq").to_pylist()
        starts = np.array([0, n]) if starts is None else starts
        for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
            own = _by_series(series[a:b], seq[a:b], us[a:b])
            for i in range(a, b):
                if seq[i] is None:
                    continue
                numbers, at = own[series[i]]  # the group's incidents of the series
                lo = np.searchsorted(numbers, seq[i] - REPORT_NEIGHBOURS, side="left")
                hi = np.searchsorted(numbers, seq[i] - 1, side="right")
                times = np.concatenate([np.asarray(self.neighbours(series[i], seq[i]),
                                                   dtype=np.int64), at[lo:hi]])
                if len(times):
                    out[i] = _median(times)
        return out

    def nbytes(self) -> int:
        return self.starts.nbytes + self.seq.nbytes + self.us.nbytes + self.keys.nbytes
