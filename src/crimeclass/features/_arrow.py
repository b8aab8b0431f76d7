"""The feature query of a few rows, evaluated by Arrow instead of DuckDB.

:func:`arrow_features` gives what :func:`~crimeclass.features.feature_sql` returns with
``history_from`` and ``report_from`` (the history sums and report times given),
``labeled_only=False`` and ``ordered=False``:
the same catalog expressions (:func:`~crimeclass.features.feature_catalog`), the same
derived columns and the same holiday join, each compiled once by
:func:`crimeclass.engines.compile_expression`. It is the scoring service's path: for
the few rows of a request DuckDB's planning of the feature statement costs more than the
rows; tests compare both on real incidents, value for value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crimeclass.engines import compile_expression
from crimeclass.features._catalog import FeatureSpec, derived_sql, feature_catalog
from crimeclass.features._sql import _US, holiday_rows

__all__ = ["arrow_features"]


@functools.lru_cache(maxsize=64)
def _holidays(years: tuple[int, ...]) -> tuple[pa.Array, pa.Array]:
    """The holidays of ``years`` (:func:`~crimeclass.features.holiday_rows`): days, names."""
    rows = holiday_rows(years)
    return (pa.array([d for d, _ in rows], pa.date32()),
            pa.array([name for _, name in rows], pa.string()))


def _holiday_names(days: Any, years: Iterable[int]) -> pa.Array:
    """The holiday of each day (null on other days): the feature query's holiday join."""
    holiday_days, names = _holidays(tuple(years))
    return pc.take(names, pc.index_in(days, value_set=holiday_days))


def _full(value: Any, n: int) -> pa.Array:
    """An expression's value as a column of ``n`` rows (a constant repeated)."""
    if isinstance(value, pa.Scalar):
        return pa.array([value.as_py()] * n, value.type)
    return value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value


def arrow_features(rows: pa.Table, spec: FeatureSpec, *,
                   history: Mapping[str, Any] | None = None,
                   years: Iterable[int] | None = None) -> pa.Table:
    """The features of ``rows`` (incidents with the store's columns).

    Parameters
    ----------
    rows : pyarrow.Table
    spec : FeatureSpec
    history : mapping of str to arrays, optional
        The history sums of each row, in the rows' order, named as
        :func:`~crimeclass.features.history_sums` names them, and the report times
        (``_reported_us``, as :func:`~crimeclass.features.report_rows_sql` names them);
        needed when ``spec`` has history or report features.
    years : iterable of int, optional
        The years whose holidays to know; by default those of the rows and the next.

    Returns
    -------
    pyarrow.Table
        ``key``, ``date``, the label column and one column per feature, in the rows'
        order: categories as text, numbers as float32 (computed as doubles).
    """
    n = rows.num_rows
    cols: dict[str, Any] = {name: rows.column(name) for name in rows.schema.names}
    for name, sql in derived_sql(spec).items():
        cols[name] = compile_expression(sql)(cols)
    if "report" in spec.groups:
        cols["_us"] = compile_expression(_US)(cols)
    cols.update(history or {})
    days = _days(cols)
    if years is None:
        years = _years(days)
    cols["holiday_name"] = _holiday_names(days, years)
    label = spec.label_column
    out: dict[str, pa.Array] = {
        "key": _full(rows.column("key"), n), "date": _full(rows.column("date"), n),
        label: _full(rows.column(label), n)}
    for f in feature_catalog(spec):
        value = _full(compile_expression(f.sql)(cols), n)
        if f.kind in ("category", "high_cardinality"):
            out[f.name] = value
        else:  # select_sql: computed as DOUBLE, kept as FLOAT
            out[f.name] = pc.cast(value if pa.types.is_floating(value.type)
                                  else pc.cast(value, pa.float64()), pa.float32())
    return pa.table(out)


def _days(cols: Mapping[str, Any]) -> Any:
    """Each row's day: the key of the feature query's holiday join, by the same compiler."""
    return compile_expression("CAST(date AS DATE)")(cols)


def _years(days: Any) -> range:
    """The years whose holidays the rows need: theirs, and the next."""
    if len(days) == 0:
        return range(0)
    lo, hi = pc.min_max(pc.year(days)).values()
    return range(lo.as_py(), hi.as_py() + 2)
