"""The online history index: the history features of new incidents, one at a time.

The index holds, for each kind of place of a :class:`FeatureSpec`'s history windows, the
incidents sorted by (place, time): one segment of time ranks per place, with a prefix sum
of index offenses, as the batch kernel (:mod:`crimeclass.features._history`) sorts them.
A query is a few binary searches in one segment. Incidents that arrive later go to a
small per-place buffer beside the sorted arrays (appends, and updates with a newer
``Updated On``, which take the old version's counts back), so the index stays current
without a rebuild. Its answers are the window SQL's, exactly: the same rows, the same
strict ``[t - days, t)`` windows.

Places are held by the 64-bit hashes of their keys (``history_rows_sql(hashed=True)``),
so a new incident's places are found with the same SQL that defines them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimeclass.engines import release_memory
from crimeclass.features._catalog import FeatureSpec, HistoryWindow
from crimeclass.features._errors import FeaturesError
from crimeclass.features._history import DAY_US, Timeline, _Sorted, micros
from crimeclass.features._report import ReportTimes
from crimeclass.features._sql import history_rows_sql

__all__ = ["HistoryIndex"]

_EPOCH = dt.datetime(1970, 1, 1)
_BLOCK = "block"  # the place of hours_since_block: every block, an unknown one too
_NEW = 1 << 30  # codes of places first seen after the index was built start here
_MIN = -(1 << 62)  # sorts before every weight in a (us, n, k) entry
_EXTRA = ("updated_on",)  # what the index reads beside the places: which version is newer


def _encode(column: Any, *, null_is_a_place: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys of a column, and each row's code (its key's position; -1 for
    null, or ``len(keys)`` where a null is a place of its own)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column.combine_chunks())
    values = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False))
    perm = np.argsort(values, kind="stable")
    position = np.empty(len(values) + 1, dtype=np.int32)
    position[perm] = np.arange(len(values), dtype=np.int32)
    position[-1] = len(values) if null_is_a_place else -1
    indices = pc.fill_null(encoded.indices, len(values)).to_numpy(zero_copy_only=False)
    return values[perm], position[indices]


def _lower_bound(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray
                 ) -> np.ndarray:
    """For each row, the first position of ``values[lo:hi]`` (sorted) holding no less
    than ``x``: ``lo + np.searchsorted(values[lo:hi], x)``, every row's binary search in
    one compiled loop (numpy's vectorized steps cost more than the searches for a
    request's few rows)."""
    out = np.empty(len(lo), dtype=np.int64)
    _search_kernel()(values, np.asarray(lo, np.int64), np.asarray(hi, np.int64),
                     np.asarray(x, np.int64), out)
    return out


@functools.cache
def _search_kernel() -> Any:
    """The compiled binary searches (numba, compiled on first use)."""
    from numba import njit

    @njit(cache=False, nogil=True)
    def search(values, lo, hi, x, out):  # type: ignore[no-untyped-def]
        for r in range(lo.shape[0]):
            a, b, v = lo[r], hi[r], x[r]
            while a < b:
                mid = (a + b) >> 1
                if values[mid] < v:
                    a = mid + 1
                else:
                    b = mid
            out[r] = a

    return search


@dataclass
class _Place:
    """One kind of place: its keys, the sorted segments, and the later arrivals."""

    keys: np.ndarray  # sorted distinct place keys (hashes); code = position
    starts: np.ndarray  # segment of code c: ranks[starts[c]:starts[c + 1]]
    ranks: np.ndarray  # time ranks, ascending within each segment
    prefix: np.ndarray  # index offenses among the first i sorted incidents
    null_code: int | None  # the code of the null place (the block kind only)
    fresh: dict[Any, int] = field(default_factory=dict)  # places first seen later
    added: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, keys: np.ndarray, codes: np.ndarray, line: Timeline, is_index: np.ndarray,
              *, null_is_a_place: bool = False) -> _Place:
        """The sorted segments of one kind of place, from :func:`_encode`'s keys and codes."""
        n_codes = len(keys) + (1 if null_is_a_place else 0)
        srt = _Sorted.build(codes, line, is_index)  # the batch kernel's sort
        starts = np.searchsorted(srt.codes, np.arange(n_codes + 1))
        return cls(keys, starts, srt.ranks.astype(np.int32),
                   srt.index_prefix.astype(np.int32),
                   len(keys) if null_is_a_place else None)

    def code(self, key: Any, *, create: bool = False) -> int:
        """The code of a place key (-1: a place with no sorted segment and not created)."""
        if key is None and self.null_code is not None:
            return self.null_code
        if key is not None:
            # the key in the keys' own dtype: a Python int beyond int64 would make numpy
            # convert the whole array to compare
            i = int(np.searchsorted(self.keys, self.keys.dtype.type(key)))
            if i < len(self.keys) and self.keys[i] == key:
                return i
        if create and key not in self.fresh:
            self.fresh[key] = _NEW + len(self.fresh)
        return self.fresh.get(key, -1)

    def _segment(self, code: int) -> tuple[int, np.ndarray]:
        if not 0 <= code < len(self.starts) - 1:
            return 0, self.ranks[:0]
        s, e = int(self.starts[code]), int(self.starts[code + 1])
        return s, self.ranks[s:e]

    def count(self, code: int, lo_us: int, hi_us: int, line: Timeline) -> tuple[int, int]:
        """Incidents and index offenses of a place with times in [lo_us, hi_us)."""
        s, seg = self._segment(code)
        a, b = np.searchsorted(seg, np.searchsorted(line.times, [lo_us, hi_us]))
        n, k = self._added(code, lo_us, hi_us)
        return n + int(b - a), k + int(self.prefix[s + b] - self.prefix[s + a])

    def _added(self, code: int, lo_us: int, hi_us: int) -> tuple[int, int]:
        """Incidents and index offenses of the later arrivals at a place in [lo_us, hi_us)."""
        entries = self.added.get(code)
        if not entries:
            return 0, 0
        i = bisect.bisect_left(entries, (lo_us, _MIN, 0))
        j = bisect.bisect_left(entries, (hi_us, _MIN, 0))
        return sum(e[1] for e in entries[i:j]), sum(e[2] for e in entries[i:j])

    def codes(self, keys: list[Any]) -> np.ndarray:
        """:meth:`code` of each of several place keys (none created)."""
        out = np.full(len(keys), -1, dtype=np.int64)
        given = np.array([i for i, k in enumerate(keys) if k is not None], dtype=np.int64)
        if self.null_code is not None:
            out[[i for i, k in enumerate(keys) if k is None]] = self.null_code
        if len(given):
            values = np.array([keys[i] for i in given], dtype=self.keys.dtype)
            at = np.searchsorted(self.keys, values)
            hit = at < len(self.keys)
            hit[hit] = self.keys[at[hit]] == values[hit]
            out[given[hit]] = at[hit]
            for i in given[~hit].tolist():
                out[i] = self.fresh.get(keys[i], -1)
        return out

    def _bounds(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each code's sorted segment starts and ends (empty for a code without)."""
        inside = (codes >= 0) & (codes < len(self.starts) - 1)
        s = np.where(inside, self.starts[np.where(inside, codes, 0)], 0)
        e = np.where(inside, self.starts[np.where(inside, codes + 1, 0)], 0)
        return s.astype(np.int64), e.astype(np.int64)

    def _window(self, codes: np.ndarray, lo_us: np.ndarray, hi_us: np.ndarray,
                line: Timeline) -> tuple[np.ndarray, np.ndarray]:
        """For each row, the sorted positions of its place's incidents in [lo_us, hi_us)."""
        s, e = self._bounds(codes)
        return (_lower_bound(self.ranks, s, e, np.searchsorted(line.times, lo_us)),
                _lower_bound(self.ranks, s, e, np.searchsorted(line.times, hi_us)))

    def _buffered(self, codes: np.ndarray) -> list[int]:
        """The rows whose place has later arrivals."""
        if not self.added:
            return []
        return [i for i, c in enumerate(codes.tolist()) if self.added.get(c)]

    def counts(self, codes: np.ndarray, lo_us: np.ndarray, hi_us: np.ndarray, line: Timeline
               ) -> tuple[np.ndarray, np.ndarray]:
        """Incidents and index offenses of each row's place with times in [lo_us, hi_us)."""
        a, b = self._window(codes, lo_us, hi_us, line)
        n = b - a
        k = self.prefix[b].astype(np.int64) - self.prefix[a]
        for i in self._buffered(codes):
            dn, dk = self._added(int(codes[i]), int(lo_us[i]), int(hi_us[i]))
            n[i] += dn
            k[i] += dk
        return n, k

    def latests(self, codes: np.ndarray, lo_us: np.ndarray, hi_us: np.ndarray, line: Timeline,
                index: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`latest` of each row: the times, and whether there is one."""
        a, b = self._window(codes, lo_us, hi_us, line)
        if index:  # the last position before b at which the prefix sum steps up
            found = self.prefix[b] > self.prefix[a]
            last = np.searchsorted(self.prefix, self.prefix[b], side="left") - 1
        else:
            found, last = b > a, b - 1
        when = np.zeros(len(codes), dtype=np.int64)
        if found.any():  # without later arrivals: the time of that position's rank
            when[found] = line.times[self.ranks[last[found]]]
        for i in self._buffered(codes):
            got = self.latest(int(codes[i]), int(lo_us[i]), int(hi_us[i]), line, index)
            found[i], when[i] = got is not None, 0 if got is None else got
        return when, found

    def latest(self, code: int, lo_us: int, hi_us: int, line: Timeline, index: bool = False
               ) -> int | None:
        """The latest time in [lo_us, hi_us) at which the place still holds an incident
        (``index``: an index offense; an updated incident's old version no longer counts)."""
        s, seg = self._segment(code)
        lo, hi = np.searchsorted(seg, np.searchsorted(line.times, [lo_us, hi_us]))
        entries = self.added.get(code) or []
        j_lo = bisect.bisect_left(entries, (lo_us, _MIN, 0))
        i, j = int(hi) - 1, bisect.bisect_left(entries, (hi_us, _MIN, 0)) - 1
        weight = 2 if index else 1  # an entry's (us, n, k): which count to net
        while i >= lo or j >= j_lo:
            at_i = int(line.times[seg[i]]) if i >= lo else -1
            when, net = max(at_i, entries[j][0] if j >= j_lo else -1), 0
            while i >= lo and int(line.times[seg[i]]) == when:
                step = int(self.prefix[s + i + 1] - self.prefix[s + i]) if index else 1
                net, i = net + step, i - 1
            while j >= j_lo and entries[j][0] == when:
                net, j = net + entries[j][weight], j - 1
            if net > 0:
                return when
        return None

    def nbytes(self) -> int:
        return self.keys.nbytes + self.starts.nbytes + self.ranks.nbytes + self.prefix.nbytes


@dataclass
class _Encoded:
    """What the index needs of the rows: keys, times, labels, updates, places as codes."""

    keys: np.ndarray
    us: np.ndarray
    is_index: np.ndarray
    updated: np.ndarray
    places: dict[str, tuple[np.ndarray, np.ndarray]]  # place -> (sorted keys, codes)
    cases: ReportTimes | None = None  # the report times' incidents ("report" in the spec)

    @classmethod
    def of(cls, rows: Any, spec: FeatureSpec) -> _Encoded:
        import pyarrow.compute as pc

        places = sorted({*spec.places, _BLOCK})
        keys = np.asarray(rows.column("key").to_numpy(), dtype=np.int64)
        us = micros(rows.column("_us"))
        cases = (ReportTimes.build(keys, us, rows.column("case_series"),
                                   rows.column("case_seq"))
                 if "report" in spec.groups else None)
        return cls(
            keys,
            us,
            np.asarray(pc.fill_null(rows.column("is_index"), False)
                       .to_numpy(zero_copy_only=False), dtype=np.bool_),
            np.asarray(rows.column("updated_on").cast("int64").fill_null(0).to_numpy(),
                       dtype=np.int64),
            {p: _encode(rows.column(_BLOCK if p == _BLOCK else f"p_{p}"),
                        null_is_a_place=p == _BLOCK) for p in places},
            cases)


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
    ``history_rows_sql(spec, hashed=True, extra=("updated_on",))`` with
    :meth:`from_rows`); ask :meth:`sums` for an incident's history sums (its places as
    :meth:`rows` gives them); feed it new incidents with :meth:`add`. :attr:`newest`
    says how current it is.
    """

    def __init__(self, spec: FeatureSpec, rows: _Encoded) -> None:
        """Index ``rows`` (consumed: its arrays are let go as the index takes them in)."""
        self.spec = spec
        us, is_index = rows.us, rows.is_index
        self.newest_us = int(us.max()) if len(us) else None
        self._line = Timeline.of(us)
        order = np.argsort(rows.keys, kind="stable")
        self._keys = rows.keys[order]
        self._rows: dict[str, np.ndarray] = {}
        self._places: dict[str, _Place] = {}
        for p in list(rows.places):  # each place's codes let go once sorted and kept
            keys, codes = rows.places.pop(p)
            self._places[p] = _Place.build(keys, codes, self._line, is_index,
                                           null_is_a_place=p == _BLOCK)
            self._rows[f"code_{p}"] = codes[order]
            del keys, codes
            release_memory()
        self._line = Timeline(self._line.times, np.empty(0, dtype=np.int32))  # ranks: in places
        for name in ("us", "is_index", "updated"):  # each incident's time, label and update
            self._rows[name] = getattr(rows, name)[order]
            setattr(rows, name, None)
        self._later: dict[int, _Row] = {}
        self._cases = rows.cases
        empty = np.zeros(0, dtype=np.int64)  # the searches compiled now, not at a first query
        _lower_bound(np.zeros(0, dtype=np.int32), empty, empty, empty)

    @classmethod
    def from_rows(cls, rows: Any, spec: FeatureSpec | None = None) -> HistoryIndex:
        """An index of ``rows``: the columns of ``history_rows_sql`` (hashed, with
        ``updated_on``)."""
        spec = spec or FeatureSpec()
        return cls(spec, _Encoded.of(rows, spec))

    @classmethod
    def from_connection(cls, con: Any, spec: FeatureSpec | None = None, *,
                        since: str | None = None, until: str | None = None) -> HistoryIndex:
        """An index of a store's incidents (``since``/``until``: ISO dates)."""
        spec = spec or FeatureSpec()
        sql = history_rows_sql(spec, since=since, until=until, hashed=True, extra=_EXTRA,
                               cases="report" in spec.groups)
        # streamed: DuckDB never holds the whole result beside Arrow's copy of it
        table = con.sql(sql).to_arrow_reader(1 << 20).read_all()
        rows = _Encoded.of(table, spec)
        del table  # the codes are all the index needs: the table goes before the sorting
        release_memory()  # its pages go back before the sorting starts
        return cls(spec, rows)

    def rows(self, con: Any, table: str = "incidents") -> list[dict[str, Any]]:
        """The incidents of a table (store columns) as :meth:`sums` and :meth:`add` take
        them: their time, label, update and places, by the feature SQL's definitions."""
        sql = (history_rows_sql(self.spec, table=table, hashed=True, extra=_EXTRA,
                                cases="report" in self.spec.groups) + " ORDER BY _us, key")
        return con.sql(sql).to_arrow_table().to_pylist()

    @property
    def newest(self) -> dt.datetime | None:
        """The timestamp of the newest incident the index holds."""
        return None if self.newest_us is None else _EPOCH + dt.timedelta(
            microseconds=self.newest_us)

    def __len__(self) -> int:
        return len(self._keys) + sum(1 for k in self._later if self._sorted_at(k) is None)

    def nbytes(self) -> int:
        """Bytes of the index's arrays (the buffers of later arrivals aside)."""
        return (sum(p.nbytes() for p in self._places.values()) + self._keys.nbytes
                + self._line.times.nbytes + sum(a.nbytes for a in self._rows.values())
                + (self._cases.nbytes() if self._cases is not None else 0))

    def reported_many(self, rows: Any, starts: np.ndarray | None = None) -> np.ndarray:
        """The report time (``_reported_us``) of each row of a table with ``_us``,
        ``case_series`` and ``case_seq`` (:meth:`rows`'s columns): the median time of the
        incidents of its series numbered 1 to ``REPORT_NEIGHBOURS`` before it, those the
        index holds and the rows of its own group (``starts``: where each group begins; by
        default one group). NaN where there is none."""
        if self._cases is None:
            raise FeaturesError("the history index was built for features without the "
                                "report group: it holds no case numbers", option="spec",
                                value=",".join(self.spec.groups))
        return self._cases.reported(rows, starts)

    def sums(self, incident: dict[str, Any]) -> dict[str, float]:
        """The history sums of one incident, as ``history_columns`` names them (NaN where
        a place is unknown or, for the hours, where no earlier incident exists)."""
        t = _us(incident["_us"])
        out: dict[str, float] = {}
        for w in self.spec.history:
            out.update(self._window(w, incident.get(f"p_{w.place}"), t))
        days = max(self.spec.lookback_days, 1)
        for name, kind, key, index in self._latest_of(incident.get):
            at = self._places[kind]  # an unknown place (code -1) holds no incident
            got = at.latest(at.code(key), t - days * DAY_US, t, self._line, index)
            out[name] = np.nan if got is None else (t - got) / 3_600_000_000
        return out

    def _latest_of(self, get: Any) -> list[tuple[str, str, Any, bool]]:
        """The hours since the latest incidents: (column, place, the incident's place key
        by ``get``, index offenses only), ``hours_since_block``'s first."""
        return [("_hours_since_block", _BLOCK, get(_BLOCK), False),
                *((f"_{x.name}", x.place, get(f"p_{x.place}"), x.index)
                  for x in self.spec.latest)]

    def _window(self, w: HistoryWindow, key: Any, t: int) -> dict[str, float]:
        n_name, k_name = f"_n_{w.stem}", f"_k_{w.stem}"
        if key is None:
            return {n_name: np.nan, k_name: np.nan}
        place = self._places[w.place]
        n, k = place.count(place.code(key), t - w.days * DAY_US, t, self._line)
        return {n_name: float(n), k_name: float(k)}

    def sums_many(self, rows: Any) -> dict[str, np.ndarray]:
        """:meth:`sums` of each row of a table (the columns of :meth:`rows`), as arrays:
        the same searches, for all rows at once (:meth:`sums` stays the one-incident
        path: its few searches cost less one by one than set up for arrays)."""
        return self._sums(micros(rows.column("_us")),
                          {c: rows.column(c).to_pylist() for c in self._columns()})

    def _columns(self) -> list[str]:
        return sorted({f"p_{p}" for p in self.spec.places} | {_BLOCK})

    def _sums(self, us: np.ndarray, columns: dict[str, list[Any]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        codes: dict[str, np.ndarray] = {}
        for w in self.spec.history:
            name, place = f"p_{w.place}", self._places[w.place]
            if name not in codes:
                codes[name] = place.codes(columns[name])
            n, k = place.counts(codes[name], us - w.days * DAY_US, us, self._line)
            unknown = np.array([v is None for v in columns[name]], dtype=np.bool_)
            out[f"_n_{w.stem}"] = np.where(unknown, np.nan, n.astype(np.float64))
            out[f"_k_{w.stem}"] = np.where(unknown, np.nan, k.astype(np.float64))
        days = max(self.spec.lookback_days, 1)
        for name, kind, keys, index in self._latest_of(columns.__getitem__):
            at = self._places[kind]
            when, found = at.latests(at.codes(keys), us - days * DAY_US, us, self._line, index)
            out[name] = np.where(found, (us - when) / 3_600_000_000, np.nan)
        return out

    def add(self, incident: dict[str, Any]) -> bool:
        """Take in a new incident, or a newer version of one held (by ``key``).

        A version whose ``updated_on`` is not newer than the one held changes nothing.
        Returns whether it was taken.
        """
        key = int(incident["key"])
        updated = incident.get("updated_on")
        updated_us = 0 if updated is None else _us(updated)
        old = self._held(key)
        if old is not None and updated_us <= old.updated_us:
            return False
        if old is not None:
            self._enter(old, -1)
        new = _Row(_us(incident["_us"]), bool(incident.get("is_index") or False), updated_us,
                   {p: self._code_of(p, incident) for p in self._places})
        self._enter(new, +1)
        self._later[key] = new
        if self._cases is not None:
            self._cases.add(key, incident, new.us, replaces=old is not None)
        self.newest_us = new.us if self.newest_us is None else max(self.newest_us, new.us)
        return True

    def _code_of(self, place: str, incident: dict[str, Any]) -> int:
        key = incident.get(_BLOCK if place == _BLOCK else f"p_{place}")
        if key is None and place != _BLOCK:
            return -1
        return self._places[place].code(key, create=True)

    def _sorted_at(self, key: int) -> int | None:
        i = int(np.searchsorted(self._keys, key))
        return i if i < len(self._keys) and int(self._keys[i]) == key else None

    def holds(self, key: int) -> bool:
        """Whether the index holds a version of the incident ``key``."""
        return self._held(int(key)) is not None

    def _held(self, key: int) -> _Row | None:
        """The version of an incident the index holds now, if any."""
        if key in self._later:
            return self._later[key]
        i = self._sorted_at(key)
        if i is None:
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
