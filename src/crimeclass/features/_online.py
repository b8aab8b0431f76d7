"""The online history index: the history features of new incidents, one at a time.

The index holds, for each kind of place of a :class:`FeatureSpec`'s history windows, the
incidents sorted by (place, time) with a prefix sum of index offenses, as the batch
kernel (:mod:`crimeclass.features._history`) builds them once; a query is a handful of
binary searches. Incidents that arrive later go to a small per-place buffer beside the
sorted arrays (appends, and updates with a newer ``Updated On``, which take the old
version's counts back), so the index stays current without a rebuild. Its answers are
the window SQL's, exactly: the same rows, the same strict ``[t - days, t)`` windows.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimeclass.features._catalog import FeatureSpec, HistoryWindow
from crimeclass.features._history import DAY_US, Timeline
from crimeclass.features._sql import history_rows_sql

__all__ = ["HistoryIndex"]

_EPOCH = dt.datetime(1970, 1, 1)
_BLOCK = "block"  # the place of hours_since_block: every block, an unknown one too
_NEW = 1 << 30  # codes of places first seen after the index was built start here
_MIN = -(1 << 62)  # sorts before every weight in a (us, n, k) entry


@dataclass
class _Place:
    """One kind of place: codes of its keys, the sorted arrays, and the later arrivals."""

    codes: dict[Any, int]
    composite: np.ndarray  # code * stride + rank, ascending
    prefix: np.ndarray  # index offenses among the first i sorted incidents
    added: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, keys: Any, line: Timeline, is_index: np.ndarray, *,
              null_is_a_place: bool = False) -> tuple[_Place, np.ndarray]:
        """The sorted arrays of one kind of place, and each incident's code (-1: none)."""
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(keys.combine_chunks())
        values = encoded.dictionary.to_pylist()
        lookup = {v: i for i, v in enumerate(values)}
        if null_is_a_place:
            lookup[None] = len(values)
        fill = len(values) if null_is_a_place else -1
        codes = np.asarray(pc.fill_null(encoded.indices, fill).to_numpy(zero_copy_only=False),
                           dtype=np.int64)
        known = codes >= 0
        composite = codes[known] * line.stride + line.rank[known]
        by = np.argsort(composite, kind="stable")
        prefix = np.zeros(len(by) + 1, dtype=np.int64)
        np.cumsum(is_index[known][by], out=prefix[1:])
        return cls(lookup, composite[by], prefix), codes.astype(np.int32)

    def code(self, key: Any) -> int:
        """The code of a place key, a new one for a place never seen."""
        if key not in self.codes:
            self.codes[key] = len(self.codes) + _NEW  # beyond every sorted code
        return self.codes[key]

    def count(self, code: int, lo_rank: int, hi_rank: int, stride: int) -> tuple[int, int]:
        """Incidents and index offenses of the sorted arrays with ranks in [lo, hi)."""
        if code >= _NEW:
            return 0, 0
        lo, hi = np.searchsorted(self.composite, [code * stride + lo_rank,
                                                  code * stride + hi_rank])
        return int(hi - lo), int(self.prefix[hi] - self.prefix[lo])

    def count_added(self, code: int, lo_us: int, hi_us: int) -> tuple[int, int]:
        """The same over the later arrivals, with timestamps in [lo_us, hi_us)."""
        entries = self.added.get(code)
        if not entries:
            return 0, 0
        a = bisect.bisect_left(entries, (lo_us, _MIN, 0))
        b = bisect.bisect_left(entries, (hi_us, _MIN, 0))
        return sum(e[1] for e in entries[a:b]), sum(e[2] for e in entries[a:b])

    def latest(self, code: int, lo_us: int, hi_us: int, line: Timeline) -> int | None:
        """The latest time in [lo_us, hi_us) at which the place still holds an incident
        (an updated incident's old time no longer counts)."""
        base = code * line.stride
        sorted_ = code < _NEW
        i_lo, i_hi = (np.searchsorted(self.composite, [base + np.searchsorted(line.times, lo_us),
                                                       base + np.searchsorted(line.times, hi_us)])
                      if sorted_ else (0, 0))
        entries = self.added.get(code) or []
        j_lo = bisect.bisect_left(entries, (lo_us, _MIN, 0))
        i, j = int(i_hi) - 1, bisect.bisect_left(entries, (hi_us, _MIN, 0)) - 1
        while i >= i_lo or j >= j_lo:
            at_i = int(line.times[self.composite[i] - base]) if i >= i_lo else -1
            at_j = entries[j][0] if j >= j_lo else -1
            when, net = max(at_i, at_j), 0
            while i >= i_lo and int(line.times[self.composite[i] - base]) == when:
                net, i = net + 1, i - 1
            while j >= j_lo and entries[j][0] == when:
                net, j = net + entries[j][1], j - 1
            if net > 0:
                return when
        return None


@dataclass
class _Row:
    """What the index remembers of an incident, to take it back when it is updated."""

    us: int
    is_index: bool
    updated_us: int
    codes: dict[str, int]


def _us(value: Any) -> int:
    """Microseconds since 1970 of a timestamp (naive, as the store keeps them)."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


class HistoryIndex:
    """The history features of a :class:`FeatureSpec`, for incidents one at a time.

    Build it from a store with :meth:`from_connection` (or from the rows of
    :func:`~crimeclass.features._sql.history_rows_sql` with :meth:`from_rows`), ask
    :meth:`sums` for the history sums of an incident, and feed it new incidents with
    :meth:`add`. :attr:`newest` says how current it is.
    """

    def __init__(self, spec: FeatureSpec, rows: Any) -> None:
        import pyarrow.compute as pc

        self.spec = spec
        us = np.asarray(rows.column("_us").to_numpy(), dtype=np.int64)
        is_index = np.asarray(pc.fill_null(rows.column("is_index"), False)
                              .to_numpy(zero_copy_only=False), dtype=np.bool_)
        self._line = Timeline.of(us)
        self._places: dict[str, _Place] = {}
        codes: dict[str, np.ndarray] = {}
        for place in self._place_names():
            column = rows.column(_BLOCK if place == _BLOCK else f"p_{place}")
            self._places[place], codes[place] = _Place.build(
                column, self._line, is_index, null_is_a_place=place == _BLOCK)
        self._keys, self._rows = self._remember(rows, us, is_index, codes)
        self._later: dict[int, _Row] = {}
        self.newest_us = int(us.max()) if len(us) else None

    def _place_names(self) -> list[str]:
        return sorted({w.place for w in self.spec.history} | {_BLOCK})

    @staticmethod
    def _remember(rows: Any, us: np.ndarray, is_index: np.ndarray,
                  codes: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The sorted incident keys, and each incident's time, label, update and places."""
        keys = np.asarray(rows.column("key").to_numpy(), dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        updated = rows.column("updated_on").cast("int64").fill_null(0).to_numpy()
        kept = {"us": us[order], "is_index": is_index[order],
                "updated": np.asarray(updated, dtype=np.int64)[order]}
        kept.update({f"code_{p}": c[order] for p, c in codes.items()})
        return keys[order], kept

    @classmethod
    def from_rows(cls, rows: Any, spec: FeatureSpec | None = None) -> HistoryIndex:
        """An index of the incidents of ``rows`` (the columns of ``history_rows_sql``)."""
        return cls(spec or FeatureSpec(), rows)

    @classmethod
    def from_connection(cls, con: Any, spec: FeatureSpec | None = None, *,
                        since: str | None = None, until: str | None = None) -> HistoryIndex:
        """An index of a store's incidents (``since``/``until``: ISO dates)."""
        spec = spec or FeatureSpec()
        sql = history_rows_sql(spec, since=since, until=until)
        return cls(spec, con.sql(sql).to_arrow_table())

    @property
    def newest(self) -> dt.datetime | None:
        """The timestamp of the newest incident the index holds."""
        return None if self.newest_us is None else _EPOCH + dt.timedelta(
            microseconds=self.newest_us)

    def __len__(self) -> int:
        return len(self._keys) + sum(1 for k in self._later if not self._in_sorted(k))

    def _in_sorted(self, key: int) -> bool:
        i = int(np.searchsorted(self._keys, key))
        return i < len(self._keys) and int(self._keys[i]) == key

    def sums(self, incident: dict[str, Any]) -> dict[str, float]:
        """The history sums of one incident, as :func:`history_columns` names them.

        ``incident`` holds ``_us`` (or ``date``), ``block`` and the place keys
        ``p_<place>``; NaN where a place is unknown or no earlier incident exists.
        """
        t = _us(incident["_us"] if "_us" in incident else incident["date"])
        line, out = self._line, {}
        hi_rank = int(np.searchsorted(line.times, t))
        for w in self.spec.history:
            out.update(self._window(w, incident.get(f"p_{w.place}"), t, hi_rank))
        block = self._places[_BLOCK]
        code = block.codes.get(incident.get("block"), _NEW - 1)
        days = max(self.spec.lookback_days, 1)
        latest = block.latest(code, t - days * DAY_US, t, line)
        out["_hours_since_block"] = (np.nan if latest is None
                                     else (t - latest) / 3_600_000_000)
        return out

    def _window(self, w: HistoryWindow, key: Any, t: int, hi_rank: int) -> dict[str, float]:
        n_name, k_name = f"_n_{w.stem}", f"_k_{w.stem}"
        if key is None:
            return {n_name: np.nan, k_name: np.nan}
        place = self._places[w.place]
        code = place.codes.get(key, _NEW - 1)
        lo_us = t - w.days * DAY_US
        lo_rank = int(np.searchsorted(self._line.times, lo_us))
        n, k = place.count(code, lo_rank, hi_rank, self._line.stride)
        n_add, k_add = place.count_added(code, lo_us, t)
        return {n_name: float(n + n_add), k_name: float(k + k_add)}

    def add(self, incident: dict[str, Any]) -> bool:
        """Take in a new incident, or a newer version of one held (by ``key``).

        ``incident`` holds ``key``, ``_us`` (or ``date``), ``is_index``,
        ``updated_on``, ``block`` and the place keys. A version whose ``updated_on``
        is not newer than the one held changes nothing. Returns whether it was taken.
        """
        key = int(incident["key"])
        updated = incident.get("updated_on")
        updated_us = 0 if updated is None else _us(updated)
        old = self._held(key)
        if old is not None and updated_us <= old.updated_us:
            return False
        if old is not None:
            self._enter(old, -1)
        new = _Row(_us(incident["_us"] if "_us" in incident else incident["date"]),
                   bool(incident.get("is_index") or False), updated_us,
                   {p: self._code_of(p, incident) for p in self._places})
        self._enter(new, +1)
        self._later[key] = new
        self.newest_us = new.us if self.newest_us is None else max(self.newest_us, new.us)
        return True

    def _code_of(self, place: str, incident: dict[str, Any]) -> int:
        key = incident.get(_BLOCK if place == _BLOCK else f"p_{place}")
        if key is None and place != _BLOCK:
            return -1
        return self._places[place].code(key)

    def _held(self, key: int) -> _Row | None:
        """The version of an incident the index holds now, if any."""
        if key in self._later:
            return self._later[key]
        i = int(np.searchsorted(self._keys, key))
        if i >= len(self._keys) or int(self._keys[i]) != key:
            return None
        r = self._rows
        return _Row(int(r["us"][i]), bool(r["is_index"][i]), int(r["updated"][i]),
                    {p: int(r[f"code_{p}"][i]) for p in self._places})

    def _enter(self, row: _Row, sign: int) -> None:
        """Count an incident in (+1) or take it back out (-1) in every place it has."""
        for place, code in row.codes.items():
            if code >= 0:
                entries = self._places[place].added.setdefault(code, [])
                bisect.insort(entries, (row.us, sign, sign * int(row.is_index)))
