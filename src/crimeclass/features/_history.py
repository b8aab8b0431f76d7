"""History windows as counts over sorted timestamps: the vectorized kernel.

A history window counts, for each incident, the incidents of the same place whose
timestamp ``t`` lies in ``[t0 - days, t0)`` (in microseconds: the incident itself and
every other incident of the same microsecond are left out), and how many of them were
index offenses. With each place's timestamps sorted once, the count of any window is
the difference of two positions found by binary search, and the index offenses the
difference of two prefix sums: ``O(n log n)`` for all windows of a place, where a
window frame of SQL re-reads each window.

To search all places of one kind at once, every timestamp is replaced by its rank
among the distinct timestamps (comparisons keep their answers), so that
``place code * (ranks + 1) + rank`` is one sortable 64-bit number.

>>> import numpy as np
>>> codes = np.array([0, 0, 0, 1, -1])
>>> day = 86_400_000_000
>>> us = np.array([0, day, 3 * day, day, day])
>>> index = np.array([True, False, True, True, False])
>>> n, k = window_counts(codes, us, index, [2])[0]
>>> n.tolist(), k.tolist()
([0, 1, 1, 0, -1], [0, 1, 0, 0, -1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimeclass.features._catalog import FeatureSpec, HistoryWindow

__all__ = ["DAY_US", "HistoryRows", "Timeline", "history_columns", "latest_before",
           "micros", "window_counts"]

#: Microseconds in a day.
DAY_US = 86_400_000_000


def micros(column: Any) -> np.ndarray:
    """An Arrow column of times (microseconds since 1970 already, or timestamps) as
    int64 microseconds since 1970."""
    import pyarrow as pa

    if not pa.types.is_integer(column.type):
        column = column.cast(pa.timestamp("us")).cast(pa.int64())
    return np.asarray(column.to_numpy(), dtype=np.int64)


@dataclass(frozen=True)
class Timeline:
    """The distinct timestamps of a set of incidents, and each incident's rank among them.

    Ranks replace timestamps wherever timestamps are only compared: ``t < u`` exactly when
    ``rank(t) < rank(u)``, and a rank fits with a place code into one 64-bit number.
    """

    times: np.ndarray
    rank: np.ndarray  # int32
    # shifted(days) by days: several kinds of place share a window length
    _shifted: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, us: np.ndarray) -> Timeline:
        times, rank = np.unique(us, return_inverse=True)
        return cls(times, rank.astype(np.int32))

    @property
    def stride(self) -> int:
        """One more than the largest rank a query can have."""
        return len(self.times) + 1

    def shifted(self, days: int) -> np.ndarray:
        """For each distinct time ``t``, the rank of ``t - days``: how many times precede it."""
        if days not in self._shifted:
            self._shifted[days] = np.searchsorted(self.times, self.times - days * DAY_US,
                                                  side="left").astype(np.int32)
        return self._shifted[days]


@dataclass(frozen=True)
class _Sorted:
    """One kind of place's incidents sorted by (place, time): the search arrays."""

    order: np.ndarray  # positions in the input of the sorted incidents (int32)
    codes: np.ndarray  # int32
    ranks: np.ndarray  # int32
    composite: np.ndarray  # code * stride + rank, ascending (int64)
    index_prefix: np.ndarray  # index offenses among the first i sorted incidents (int32)

    @classmethod
    def build(cls, codes: np.ndarray, line: Timeline, is_index: np.ndarray) -> _Sorted:
        # 32-bit positions, codes and ranks (fewer than 2**31 incidents): half the memory
        known = np.flatnonzero(codes >= 0).astype(np.int32)
        composite = codes[known].astype(np.int64) * line.stride + line.rank[known]
        by = np.argsort(composite, kind="stable")
        composite = composite[by]
        order = known[by]
        del known, by
        prefix = np.zeros(len(order) + 1, dtype=np.int32)
        np.cumsum(is_index[order], out=prefix[1:])
        return cls(order, codes[order].astype(np.int32), line.rank[order], composite, prefix)

    def before(self, shifted: np.ndarray | None, stride: int) -> np.ndarray:
        """Sorted position of each incident's first place-mate at or after ``t - days``
        (``shifted``: :meth:`Timeline.shifted`), or at its own time when None.

        The queries come in ascending order, which numpy's binary search runs through
        far faster than scattered ones.
        """
        rank = self.ranks if shifted is None else shifted[self.ranks]
        return np.searchsorted(self.composite, self.codes.astype(np.int64) * stride + rank,
                               side="left")


def window_counts(codes: np.ndarray, us: np.ndarray, is_index: np.ndarray,
                  days: Sequence[int], line: Timeline | None = None,
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Incidents and index offenses of the same place in the ``days`` before each one.

    Parameters
    ----------
    codes : ndarray of int
        The place of each incident as a code (``-1`` where the place is unknown).
    us : ndarray of int64
        Timestamps in microseconds.
    is_index : ndarray of bool
        Index offense or not (unknown counts as not, as the SQL's ``CASE WHEN``).
    days : sequence of int
        Window lengths.
    line : Timeline, optional
        ``Timeline.of(us)``, when the caller has it already.

    Returns
    -------
    list of (n, k)
        Per window length, the counts as int32 arrays, ``-1`` where the place
        is unknown (SQL's null).
    """
    line = line or Timeline.of(us)
    return _counts(_Sorted.build(codes, line, is_index), line, len(codes), days)


def _counts(srt: _Sorted, line: Timeline, size: int, days: Sequence[int]
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    hi = srt.before(None, line.stride)
    out = []
    for d in days:
        lo = srt.before(line.shifted(d), line.stride)
        n = np.full(size, -1, dtype=np.int32)
        k = np.full(size, -1, dtype=np.int32)
        n[srt.order] = hi - lo
        k[srt.order] = srt.index_prefix[hi] - srt.index_prefix[lo]
        out.append((n, k))
    return out


def latest_before(codes: np.ndarray, us: np.ndarray, days: int,
                  line: Timeline | None = None, is_index: np.ndarray | None = None
                  ) -> np.ndarray:
    """Hours since the latest earlier incident of the same place within ``days``.

    ``codes`` gives each incident's place (``-1``: unknown, NaN); NaN where none. With
    ``is_index``, since the latest earlier index offense instead.
    """
    line = line or Timeline.of(us)
    flags = np.zeros(len(codes), dtype=bool) if is_index is None else is_index
    return _latest(_Sorted.build(codes, line, flags), line, us, days, is_index is not None)


def _latest(srt: _Sorted, line: Timeline, us: np.ndarray, days: int, index: bool
            ) -> np.ndarray:
    """:func:`latest_before` on sorted incidents. The latest earlier index offense is the
    last sorted position before the incident at which the prefix sum steps up."""
    hi = srt.before(None, line.stride)
    lo = srt.before(line.shifted(days), line.stride)
    if index:
        prefix = srt.index_prefix
        some = prefix[hi] > prefix[lo]
        last = np.searchsorted(prefix, prefix[hi], side="left") - 1
    else:
        some, last = hi > lo, hi - 1
    hours = np.full(len(us), np.nan)
    latest = line.times[srt.ranks[last[some]]]
    hours[srt.order[some]] = (us[srt.order[some]] - latest).astype(np.float64) / 3_600_000_000
    return hours


def _codes(column: Any, *, null_is_a_place: bool = False) -> np.ndarray:
    """Integer codes (int32) of a (string or number) Arrow column; -1 for null, or a code of
    its own."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    indices = encoded.indices
    fill = len(encoded.dictionary) if null_is_a_place else -1
    return np.asarray(pc.fill_null(indices, fill).to_numpy(zero_copy_only=False), dtype=np.int32)


@dataclass
class HistoryRows:
    """What the kernel needs of the rows: times, labels and each kind of place as codes.

    Far smaller than the rows table (a code is 4 bytes, a place key or its hash 8 or
    more), so that the table can be let go before the windows are computed.
    """

    us: np.ndarray
    is_index: np.ndarray
    places: dict[str, np.ndarray]  # kind of place -> codes; "" -> the block, null a place

    @classmethod
    def of(cls, rows: Any, spec: FeatureSpec) -> HistoryRows:
        """From a rows table as :func:`~crimeclass.features._sql.history_rows_sql` selects
        them."""
        import pyarrow.compute as pc

        places = {p: _codes(rows.column(f"p_{p}")) for p in spec.places}
        places[""] = _codes(rows.column("block"), null_is_a_place=True)
        us = np.asarray(rows.column("_us").to_numpy(), dtype=np.int64)
        is_index = np.asarray(pc.fill_null(rows.column("is_index"), False)
                              .to_numpy(zero_copy_only=False), dtype=np.bool_)
        return cls(us, is_index, places)


def history_columns(rows: Any, spec: FeatureSpec, *, n_jobs: int | None = None,
                    ) -> dict[str, np.ndarray]:
    """The history sums of ``spec`` for a rows table, as the feature SQL names them.

    Parameters
    ----------
    rows : pyarrow.Table or HistoryRows
        One row per incident: ``_us`` (microseconds), ``is_index``, ``block`` and one
        column ``p_<place>`` per place of ``spec.places`` holding the place key, or
        its hash (null where unknown), as
        :func:`~crimeclass.features._sql.history_rows_sql` selects them; or
        :meth:`HistoryRows.of` such a table.
    spec : FeatureSpec
    n_jobs : int, optional
        Kinds of place computed at once, in threads (numpy's sorts and searches
        run without the GIL); all cores by default.

    Returns
    -------
    dict of str to ndarray
        ``_n_<stem>`` and ``_k_<stem>`` (int32, ``-1`` where the place is unknown) per
        window, ``_hours_since_block`` and ``_hours_since_<...>`` per
        :class:`~crimeclass.features.Latest` (float64, NaN where none), in the order of
        ``rows``.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    if not isinstance(rows, HistoryRows):
        rows = HistoryRows.of(rows, spec)
    line = Timeline.of(rows.us)
    by_place: dict[str, list[HistoryWindow]] = {}
    for w in spec.history:
        by_place.setdefault(w.place, []).append(w)

    days = max(spec.lookback_days, 1)

    def one_place(place: str) -> dict[str, np.ndarray]:
        if place == "":  # the block of hours_since_block: an unknown block is a block too
            return {"_hours_since_block": latest_before(rows.places[""], rows.us, days, line)}
        windows = by_place.get(place, [])
        srt = _Sorted.build(rows.places[place], line, rows.is_index)  # once per place
        counts = _counts(srt, line, len(rows.us), [w.days for w in windows])
        out = {}
        for w, (n, k) in zip(windows, counts, strict=True):
            out[f"_n_{w.stem}"], out[f"_k_{w.stem}"] = n, k
        for x in spec.latest:
            if x.place == place:
                out[f"_{x.name}"] = _latest(srt, line, rows.us, days, x.index)
        return out

    out: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(n_jobs or os.cpu_count() or 1) as pool:
        for part in pool.map(one_place, [*spec.places, ""]):
            out.update(part)
    return out
