"""The feature frame of a DuckDB store with the history by the kernel, in bounded memory.

:func:`read_features`'s fast path. The frame is built in place, column by column, in
numpy arrays allocated once at their final size, so that the process never holds much
more than the frame itself:

1. the kernel computes the history sums of every row (in the order DuckDB reads them);
2. the rows of the frame (those of the window with a label) are put in order, by date
   and key, in numpy: no sort of wide rows in DuckDB;
3. the history features are evaluated from the sums, a slice of rows at a time, by
   DuckDB with the feature's own SQL (one definition: the same expressions as the
   window-frame query);
4. the other features come from the feature query without its history and without its
   ORDER BY, batch by batch, and are scattered into their rows by key; categories get
   codes of one dictionary per column, sorted at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from crimeclass.features._catalog import Feature, FeatureSpec, feature_catalog
from crimeclass.features._errors import FeaturesError
from crimeclass.features._sql import select_sql

__all__ = ["kernel_feature_frame"]

_SLICE = 1 << 20
_BATCH = 1 << 18
_CATEGORIES = ("category", "high_cardinality")


@dataclasses.dataclass
class _Rows:
    """The rows of the frame in their final order, and where each sits among the kernel's."""

    key: np.ndarray
    us: np.ndarray
    source: np.ndarray  # position of each frame row in the kernel's rows

    def __len__(self) -> int:
        return len(self.key)

    def forget_keys(self) -> None:
        """Let go of the search arrays of :meth:`positions`."""
        self.__dict__.pop("_sorted", None)
        self.__dict__.pop("_by_key", None)

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """The frame row of each of ``keys`` (all must be rows of the frame)."""
        if not hasattr(self, "_sorted"):
            self._by_key = np.argsort(self.key, kind="stable").astype(np.int32)
            self._sorted = self.key[self._by_key]
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        if len(keys) and not np.array_equal(self._sorted[at], keys):
            raise FeaturesError("the feature query returned rows the history kernel did not "
                                "read (the store changed while the features were computed?)")
        return self._by_key[at]


def _frame_rows(key: np.ndarray, us: np.ndarray, labeled: np.ndarray,
                since: str | dt.date | None) -> _Rows:
    """The rows of the frame (in the window, with a label) ordered by date and key."""
    keep = labeled.copy()
    if since is not None:
        keep &= us >= pd.Timestamp(since).value // 1000
    at = np.flatnonzero(keep)
    order = np.lexsort((key[at], us[at]))
    source = at[order].astype(np.int32)
    return _Rows(key[source], us[source], source)


def _history_part(con: Any, sums: dict[str, np.ndarray], rows: _Rows,
                  feats: list[Feature]) -> dict[str, np.ndarray]:
    """The history features of the frame's rows, from the kernel's sums, by their SQL.

    One feature at a time, a slice of rows at a time; each sum is let go once no later
    feature reads it, so that the sums and the features are never both whole.
    """
    import re

    import pyarrow as pa

    reads = {f.name: [n for n in sums if re.search(rf"\b{n}\b", f.sql)] for f in feats}
    last = {n: i for i, f in enumerate(feats) for n in reads[f.name]}
    out = {}
    for i, f in enumerate(feats):
        out[f.name] = values = np.empty(len(rows), dtype=np.float32)
        for lo in range(0, len(rows), _SLICE):
            take = rows.source[lo:lo + _SLICE]
            part = {}
            for name in reads[f.name]:
                v = sums[name][take]
                part[name] = pa.array(v, mask=np.isnan(v) if v.dtype.kind == "f" else v < 0)
            con.register("_history_slice", pa.table(part))
            try:
                result = con.sql(f"SELECT {select_sql(f)} FROM _history_slice").to_arrow_table()
            finally:
                con.unregister("_history_slice")
            values[lo:lo + len(take)] = result.column(0).to_numpy()
        for name in [n for n, at in last.items() if at == i]:
            del sums[name]
    return out


class _Codes:
    """Codes of one category column, filled batch by batch, with one growing dictionary.

    The codes are 16-bit until the dictionary outgrows them (pandas keeps a category's
    codes in the smallest integer that holds them anyway).
    """

    def __init__(self, n: int) -> None:
        self.codes = np.full(n, -1, dtype=np.int16)
        self.values: dict[Any, int] = {}

    def fill(self, pos: np.ndarray, column: Any) -> None:
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(column)
        new = np.array([self.values.setdefault(v, len(self.values))
                        for v in encoded.dictionary.to_pylist()] + [-1], dtype=np.int32)
        if len(self.values) > np.iinfo(self.codes.dtype).max:
            self.codes = self.codes.astype(np.int32)
        idx = pc.fill_null(encoded.indices, len(new) - 1).to_numpy(zero_copy_only=False)
        self.codes[pos] = new[idx]

    def categorical(self) -> pd.Categorical:
        """The column, its categories sorted."""
        values = list(self.values)
        order = sorted(range(len(values)), key=values.__getitem__)
        remap = np.empty(len(values) + 1, dtype=self.codes.dtype)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(len(values))
        remap[-1] = -1
        np.take(remap, self.codes, out=self.codes)  # in place: no second array of codes
        return pd.Categorical.from_codes(self.codes, [values[i] for i in order])


def _other_part(engine: Any, sql: str, rows: _Rows, feats: list[Feature], label: str,
                batch_rows: int) -> dict[str, Any]:
    """The features outside the history group and the label, scattered into their rows."""
    from crimeclass.engines import release_memory

    numbers = {f.name: np.full(len(rows), np.nan, dtype=np.float32)
               for f in feats if f.kind not in _CATEGORIES}
    codes = {f.name: _Codes(len(rows)) for f in feats if f.kind in _CATEGORIES}
    labels = np.full(len(rows), -1, dtype=np.int8)
    for i, batch in enumerate(engine.reader(sql, batch_rows)):
        if i % 8 == 7:
            release_memory()  # each batch's temporaries: the heap would keep their pages
        pos = rows.positions(np.asarray(batch.column("key").to_numpy(), dtype=np.int64))
        for name, values in numbers.items():
            values[pos] = batch.column(name).to_numpy(zero_copy_only=False)
        for name, column in codes.items():
            column.fill(pos, batch.column(name))
        known = batch.column(label)
        labels[pos] = np.where(known.is_null().to_numpy(zero_copy_only=False), -1,
                               known.fill_null(False).to_numpy(zero_copy_only=False))
    rows.forget_keys()
    out: dict[str, Any] = {label: (labels == 1) if (labels >= 0).all()
                           else np.where(labels < 0, None, labels == 1)}
    out.update(numbers)
    for name in list(codes):
        out[name] = codes.pop(name).categorical()
    return out


def kernel_feature_frame(engine: Any, spec: FeatureSpec, *, since: str | dt.date | None,
                         until: str | dt.date | None, labeled_only: bool, batch_rows: int,
                         memory_limit: str | None) -> pd.DataFrame:
    """:func:`~crimeclass.features.read_features` of a DuckDB engine, history by the kernel.

    The same frame as the window-frame query (``tests/features/test_history_kernel.py``),
    in a fraction of its time and memory.
    """
    from crimeclass.engines import release_memory, temporary_threads
    from crimeclass.features._history import HistoryRows, history_columns
    from crimeclass.features._sql import history_rows_sql, store_feature_sql

    label = spec.label_column
    extra = () if label == "is_index" else (label,)
    feats = feature_catalog(spec)
    with engine.memory_limit(memory_limit):
        # streamed: DuckDB never holds the whole result beside Arrow's copy of it
        table = engine.reader(history_rows_sql(spec, since=since, until=until,
                                               table=engine.source, hashed=True,
                                               extra=extra), 1 << 20).read_all()
        key = np.asarray(table.column("key").to_numpy(), dtype=np.int64)
        us = np.asarray(table.column("_us").to_numpy(), dtype=np.int64)
        labeled = (~np.asarray(table.column(label).is_null().to_numpy(zero_copy_only=False))
                   if labeled_only else np.ones(len(key), dtype=bool))
        places = HistoryRows.of(table, spec)
        del table  # the codes of the places are all the kernel needs: let the table go
        release_memory()  # its pages go back before the sorting starts
        sums = history_columns(places, spec)
        del places
        release_memory()
        rows = _frame_rows(key, us, labeled, since)
        del key, us, labeled
        history = _history_part(engine.con, sums, rows,
                                [f for f in feats if f.group == "history"])
        del sums
        rows.source = rows.source[:0]  # read by the history part only
        release_memory()
        others = dataclasses.replace(spec, groups=tuple(g for g in spec.groups
                                                        if g != "history"))
        sql = store_feature_sql(engine, others, since=since, until=until,
                                labeled_only=labeled_only, ordered=False)
        # small batches, each let go before the next, on one thread (DuckDB keeps a
        # result in flight per thread): the frame is the memory
        with temporary_threads(engine.con, 1):
            rest = _other_part(engine, sql, rows, feature_catalog(others), label,
                               min(batch_rows, _BATCH))
    columns: dict[str, Any] = {"key": rows.key, "date": rows.us.view("datetime64[us]"),
                               label: rest.pop(label)}
    for f in feats:
        columns[f.name] = history.pop(f.name) if f.group == "history" else rest.pop(f.name)
    return pd.DataFrame(columns, copy=False)
