"""Scoring a few incidents at a time against a history held in memory (the online path).

:func:`online_features` gives the same features as :func:`~crimeclass.models.incident_features`
with a history store (the batch query of ``crimeclass predict``), without reading the
store: the history sums come from an online :class:`~crimeclass.features.HistoryIndex`
of the store plus the request's own earlier rows, the other features from the run's own
feature SQL over the request's rows only, and ``history_days`` from a :class:`DayCover`
of the store (the days on which it holds incidents).

One case is left to the batch query: an incident the history already holds (same key).
The batch query counts it once, as the input's; :func:`held_keys` finds such rows so
that a caller scores them with :func:`~crimeclass.models.score` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from crimeclass.engines import prepared
from crimeclass.features import FeatureSpec, HistoryIndex, arrow_features
from crimeclass.features._catalog import hours_names
from crimeclass.features._history import DAY_US
from crimeclass.features._sql import history_rows_sql
from crimeclass.models._score import HISTORY_GAP_DAYS, Features, _input_table

__all__ = ["DayCover", "held_keys", "online_features", "online_features_many"]


@dataclass
class DayCover:
    """The days on which the history holds incidents, and each day's latest time.

    What the batch query's ``history_days`` reads of a store: which days of the span
    ``[first row - lookback, last row]`` hold an incident (a stretch of more than
    :data:`HISTORY_GAP_DAYS` days without one restarts the history).
    """

    days: np.ndarray  # days since 1970, ascending
    latest_us: np.ndarray  # the latest incident time of each day, microseconds

    @classmethod
    def from_connection(cls, con: Any, table: str = "incidents") -> DayCover:
        """The days of a store's incidents (``table``: a table or a subquery)."""
        sql = (f"SELECT epoch_us(date) // {DAY_US} AS d, max(epoch_us(date)) AS m "
               f"FROM {table} WHERE date IS NOT NULL GROUP BY 1 ORDER BY 1")
        got = con.execute(sql).fetchnumpy()
        return cls(np.asarray(got["d"], dtype=np.int64), np.asarray(got["m"], dtype=np.int64))

    def added(self, times_us: np.ndarray) -> DayCover:
        """A cover of these days and those of new incidents at ``times_us`` (a new object:
        a reader of this one sees it whole)."""
        days = np.concatenate([self.days, np.asarray(times_us, np.int64) // DAY_US])
        latest = np.concatenate([self.latest_us, np.asarray(times_us, np.int64)])
        order = np.lexsort((latest, days))
        days, latest = days[order], latest[order]
        last = np.r_[days[1:] != days[:-1], True]
        return DayCover(days[last], latest[last])

    @property
    def newest_us(self) -> int | None:
        return int(self.latest_us[-1]) if len(self.latest_us) else None

    def history_days(self, times_us: np.ndarray, lookback_days: int) -> np.ndarray:
        """Days of earlier data without a gap before each time, at most the lookback, as the
        batch query counts them over these days and the rows' own."""
        t = np.asarray(times_us, dtype=np.int64)
        all_days, all_latest = self.days, self.latest_us
        start = int(t.min()) - lookback_days * DAY_US
        lo_day, hi_day = start // DAY_US, int(t.max()) // DAY_US
        a = int(np.searchsorted(all_days, lo_day, side="left"))
        b = int(np.searchsorted(all_days, hi_day, side="right"))
        inside = all_days[a:b]
        if len(inside) and inside[0] == lo_day and all_latest[a] < start:
            inside = inside[1:]  # that day's incidents are all before the span
        days = np.union1d(inside, t // DAY_US)
        restart = np.r_[True, days[1:] - days[:-1] - 1 > HISTORY_GAP_DAYS]
        since = np.maximum.accumulate(np.where(restart, days, np.iinfo(np.int64).min))
        row_since = since[np.searchsorted(days, t // DAY_US)]
        return np.minimum(float(lookback_days), (t // DAY_US - row_since).astype(np.float64)
                          ).astype(np.float32)


def held_keys(rows: pa.Table, index: HistoryIndex) -> list[int]:
    """The keys of ``rows`` that the index holds already (the batch query counts such an
    incident once, as the input's: score those rows with the batch query)."""
    keys = rows.column("key").to_pylist()
    return [k for k in keys if index.holds(k)]


def _sum_names(spec: FeatureSpec) -> list[str]:
    return [n for w in spec.history for n in (f"_n_{w.stem}", f"_k_{w.stem}")]


def _own_sums(hist: pa.Table, spec: FeatureSpec) -> dict[str, np.ndarray] | None:
    """The history sums of each row from the rows' own earlier ones, by the batch kernel
    (None for one row: it has none)."""
    from crimeclass.features._history import history_columns

    if hist.num_rows < 2:
        return None
    return history_columns(hist, spec, n_jobs=1)


def _sums_table(hist: pa.Table, spec: FeatureSpec, index: HistoryIndex,
                starts: np.ndarray) -> pa.Table:
    """The history sums of every row, as ``history_sums`` gives them: the index's and the
    rows' own earlier ones (those of its group, ``starts``: where each group begins)
    together."""
    names = _sum_names(spec)
    sums = index.sums_many(hist)
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        own = _own_sums(hist.slice(a, b - a), spec)
        if own is None:
            continue
        for n in names:  # unknown places: NaN in the index's, -1 in the kernel's
            sums[n][a:b] += np.where(own[n] < 0, np.nan, own[n])
        for h in hours_names(spec):  # the latest earlier incident of the two: fewer hours
            sums[h][a:b] = np.fmin(sums[h][a:b], own[h])
    arrays: dict[str, pa.Array] = {"key": hist.column("key")}
    for n in names:
        v = sums[n]
        arrays[n] = pa.array(np.nan_to_num(v).astype(np.int32), mask=np.isnan(v))
    for h in hours_names(spec):
        arrays[h] = pa.array(sums[h], mask=np.isnan(sums[h]))
    return pa.table(arrays)


def online_features(rows: pa.Table, spec: FeatureSpec, index: HistoryIndex, cover: DayCover,
                    con: Any) -> Features:
    """The features of validated incident rows against an in-memory history.

    Parameters
    ----------
    rows : pyarrow.Table
        Incidents with the store's column names, unique keys, none held by ``index``.
    spec : FeatureSpec
    index : HistoryIndex
        The history's incidents (a store's, and those added since).
    cover : DayCover
        The days of the same history.
    con : duckdb.DuckDBPyConnection
        A connection of the caller's thread, where the feature SQL runs.

    Returns
    -------
    Features
        In the order of ``rows``: the values :func:`incident_features` gives with the
        history as a store.
    """
    return online_features_many([rows], spec, index, cover, con)


def _combined(groups: list[pa.Table]) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The groups' rows as one input table keyed 0, 1, ... (a key may be in two groups);
    the real keys, and where each group starts."""
    tables = [_input_table(rows) for rows in groups]
    keys = [t.column("key").to_numpy() for t in tables]
    table = pa.concat_tables(tables)
    table = table.set_column(table.schema.get_field_index("key"), "key",
                             pa.array(np.arange(table.num_rows, dtype=np.int64)))
    starts = np.cumsum([0, *(t.num_rows for t in tables)])
    return table, np.concatenate(keys).astype(np.int64), starts


def online_features_many(groups: list[pa.Table], spec: FeatureSpec, index: HistoryIndex,
                         cover: DayCover, con: Any) -> Features:
    """:func:`online_features` of several independent groups of rows (requests), each
    group's history the index and its own earlier rows. The places' keys come from one
    DuckDB statement (they are DuckDB's hashes, as the index holds them); the features
    from the feature catalog's expressions evaluated by Arrow
    (:func:`~crimeclass.features.arrow_features`: DuckDB would spend more time planning
    the feature statement than running it over a request's rows). The features of all
    groups, one after the other, each in its rows' order."""
    table, real_keys, starts = _combined(groups)
    report = "report" in spec.groups
    con.register("_online_rows", table)
    try:
        hist = prepared(con, history_rows_sql(spec, table="_online_rows", hashed=True,
                                              cases=report)).to_arrow_table()
    finally:
        con.unregister("_online_rows")
    hist = hist.take(pa.array(np.argsort(hist.column("key").to_numpy(), kind="stable")))
    given: dict[str, Any] = {}  # the rows' keys are 0, 1, ...: hist is in their order
    if "history" in spec.groups:
        sums = _sums_table(hist, spec, index, starts)
        given.update({n: sums.column(n) for n in sums.schema.names if n != "key"})
    if report:  # the report times, from the index's incidents and the group's own
        reported = index.reported_many(hist, starts)
        given["_reported_us"] = pa.array(reported, mask=np.isnan(reported))
    data = arrow_features(table, spec, history=given)  # the holidays of the rows' years
    us = data.column("date").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    days = np.concatenate([cover.history_days(us[a:b], spec.lookback_days)
                           for a, b in zip(starts[:-1], starts[1:], strict=True)])
    data = data.set_column(data.schema.get_field_index("key"), "key", pa.array(real_keys))
    data = data.add_column(0, "id", table.column("id")).append_column(
        "history_days", pa.array(days))
    return Features.from_arrow(data, spec)
