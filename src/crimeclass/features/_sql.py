"""The feature query: one SQL statement, DuckDB's dialect, compiled to Spark by sqlglot.

The statement reads the store's ``incidents`` table and returns one row per
labeled incident of the window: ``key``, ``date``, the label (``is_index``, or
``arrest`` for the arrest target; :func:`meta_columns`) and the features of a
:class:`~crimeclass.features.FeatureSpec`.

History features count the incidents of the ``n`` microseconds that end *before*
the incident's own timestamp (``_us``): ``RANGE BETWEEN n PRECEDING AND 1
PRECEDING``, so the incident itself, and every other incident recorded at the
very same minute, are never counted, and neither the row's label nor that of a
twin record of the same event can reach its features. One window sum per place
and length counts both the incidents and the index offenses (see ``_BOTH``).
The statement writes that frame as two growing frames (:func:`_window_sum`): Spark
sums a sliding frame's rows again each time it moves, a growing frame's in one pass.
They read incidents from ``lookback`` days before the window, so the first
rows of a window have the same history as they would in a longer one (up to
what the store holds).

>>> sql = feature_sql(FeatureSpec(groups=("time",)), since="2017-01-01", until="2018-01-01")
>>> "hour(date)" in sql
True
>>> from crimeclass.engines import to_spark_sql
>>> "HOUR(date)" in to_spark_sql(sql)
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd

from crimeclass.engines import Engine, sql_literal
from crimeclass.features._catalog import (
    HISTORY_PLACES,
    ISODOW,
    Feature,
    FeatureSpec,
    derived_sql,
    feature_catalog,
    hours_names,
)
from crimeclass.features._frame import feature_frame, frame_types
from crimeclass.features._history import DAY_US
from crimeclass.features._report import CASE_SEQ_SQL, CASE_SERIES_SQL, reported_sql

__all__ = ["META_COLUMNS", "feature_frame", "feature_sql", "history_rows_sql", "history_sums",
           "holiday_rows", "meta_columns", "read_features", "report_rows_sql", "rows_sql",
           "store_feature_sql", "table_history_sums"]

#: Columns of the feature frame that are not features: the incident's key, when, and the label.
META_COLUMNS = ("key", "date", "is_index")


def meta_columns(spec: FeatureSpec | None = None) -> tuple[str, str, str]:
    """``key``, ``date`` and the label column of ``spec``'s target.

    >>> meta_columns(FeatureSpec(target="arrest"))
    ('key', 'date', 'arrest')
    """
    spec = spec or FeatureSpec()
    return ("key", "date", spec.label_column)

#: The four hours of the day an incident falls in (0-5), as text.
_HOURS = "CAST(CAST(floor(hour(date) / 4) AS BIGINT) AS VARCHAR)"

_PARTITION_SQL = {
    "beat": "beat",
    "community_area": "community_area",
    "grid_cell": "grid_cell",
    "block": "block",
    "block_location": "block || ' | ' || location_description",
    "beat_location": "CAST(beat AS VARCHAR) || ' | ' || location_description",
    "street_location": "street || ' | ' || location_description",
    "block_location_domestic": ("block || ' | ' || location_description || ' | ' || "
                                "CAST(domestic AS VARCHAR)"),
    "location": "location_description",
    "grid_location": "grid_cell || ' | ' || location_description",
    "beat_hours": f"CAST(beat AS VARCHAR) || ' | ' || {_HOURS}",
    "block_hours": f"block || ' | ' || {_HOURS}",
    "beat_week_hours": (f"CAST(beat AS VARCHAR) || ' | ' || CASE WHEN {ISODOW} >= 6 THEN "
                        f"'weekend' ELSE 'weekday' END || ' | ' || {_HOURS}"),
    "location_hours": f"location_description || ' | ' || {_HOURS}",
    "community_location": "CAST(community_area AS VARCHAR) || ' | ' || location_description",
    "grid_hours": f"grid_cell || ' | ' || {_HOURS}",
}
assert set(_PARTITION_SQL) == set(HISTORY_PLACES)


def _ts(value: str | dt.date | dt.datetime) -> str:
    """A timestamp literal from an ISO date or datetime."""
    ts = pd.Timestamp(value).to_pydatetime()
    return f"TIMESTAMP '{ts.isoformat(sep=' ')}'"


def holiday_rows(years: Iterable[int]) -> list[tuple[dt.date, str]]:
    """US public holidays (federal, with observed days) of ``years``, from `holidays`.

    >>> holiday_rows([2017])[0]
    (datetime.date(2017, 1, 1), "New Year's Day")
    """
    import holidays

    days = holidays.country_holidays("US", years=list(years))
    return sorted(days.items())


#: Microseconds since 1970 of the incident's timestamp: the window frames order by this
#: number, which DuckDB's frames handle faster than timestamps with interval bounds, and
#: Spark as well (``DATEDIFF(MICROSECOND, ...)``).
_US = "date_diff('microsecond', TIMESTAMP '1970-01-01 00:00:00', date)"

#: One window sum counts both the incidents and the index offenses: each incident adds 1
#: and each index offense 2**32 more, so the sum holds the incidents in its low 32 bits and
#: the index offenses above them (exact: no window holds 2**31 incidents).
_BOTH = f"CASE WHEN is_index THEN {2 ** 32 + 1} ELSE 1 END"


def _upto(partition: str, before_us: int) -> str:
    """The growing frame of ``partition``'s incidents ``before_us`` µs or more before."""
    return (f"(PARTITION BY {partition} ORDER BY _us RANGE BETWEEN UNBOUNDED PRECEDING "
            f"AND {before_us} PRECEDING)")


def _window_sum(partition: str, days: int) -> str:
    """The sum of ``_BOTH`` over ``partition``'s incidents of the ``days`` before, strictly
    (``RANGE BETWEEN n PRECEDING AND 1 PRECEDING``), as ``UNBOUNDED PRECEDING AND 1
    PRECEDING`` minus ``... AND n + 1 PRECEDING``. Spark's sliding frame sums all its rows
    again each time it moves (rows times rows in a window); a growing frame adds the rows
    that enter. The latest earlier incident: the growing frame's maximum, likewise."""
    n = days * DAY_US
    return (f"coalesce(sum({_BOTH}) OVER {_upto(partition, 1)}, 0) - "
            f"coalesce(sum({_BOTH}) OVER {_upto(partition, n + 1)}, 0)")


def _hours_since(latest: str, days: int) -> str:
    """Hours since ``latest`` (in ``_us``), null when it is more than ``days`` before."""
    return (f"CASE WHEN {latest} >= _us - {days * DAY_US} THEN "
            f"CAST(_us - {latest} AS DOUBLE) / 3600000000 END")


def rows_sql(
    spec: FeatureSpec,
    *,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    table: str = "incidents",
    extra: tuple[str, ...] = (),
    report: str | None = None,
    cases: bool = False,
) -> str:
    """The ``rows`` relation of the feature query: the incidents of ``[since, until)``
    and of the ``lookback`` days before, with their grid cell, street and ``_us``
    (and the store's columns ``extra``; with ``report``, a relation of ``key`` and
    ``_reported_us``, the report time joined from it; with ``cases``, the case number's
    ``case_series`` and ``case_seq``)."""
    where = []
    if since is not None:
        start = pd.Timestamp(since) - pd.Timedelta(days=spec.lookback_days)
        where.append(f"date >= {_ts(start.to_pydatetime())}")
    if until is not None:
        where.append(f"date < {_ts(until)}")
    cols = ["key", "date", "is_index", "block", "location_description", "domestic", "beat",
            "district", "ward", "community_area", "x_coordinate", "y_coordinate", *extra]
    if spec.allow_arrest or spec.target == "arrest":
        cols.append("arrest")
    if spec.target == "arrest":
        cols += ["primary_type", "description", "iucr", "fbi_code"]
    cols = list(dict.fromkeys(cols))
    columns = derived_sql(spec)
    if cases:
        columns.update({"case_series": CASE_SERIES_SQL, "case_seq": CASE_SEQ_SQL})
    source = table
    if report is not None:  # the report times, by key
        columns["_reported_us"] = "_r._reported_us"
        source = f"{table} LEFT JOIN {report} AS _r USING (key)"
    derived = "".join(f"    {sql} AS {name},\n" for name, sql in columns.items())
    return (
        f"SELECT {', '.join(cols)},\n{derived}"
        f"    {_US} AS _us\n"
        f"  FROM {source}" + (f"\n  WHERE {' AND '.join(where)}" if where else "")
    )


def report_rows_sql(table: str = "incidents", *, where: str = "true") -> str:
    """``key`` and the report time ``_reported_us`` of every incident of ``table`` whose
    case series is that of an incident matching ``where``: the window of
    :func:`~crimeclass.features._catalog.reported_sql` over all of the series' incidents
    (a series holds the reports of one year or so: its incidents' frames never reach
    beyond it)."""
    return (f"SELECT key, {reported_sql(_US)} AS _reported_us\n"
            f"  FROM {table}\n  WHERE {CASE_SERIES_SQL} IN "
            f"(SELECT {CASE_SERIES_SQL} FROM {table} WHERE {where})")


def history_rows_sql(
    spec: FeatureSpec,
    *,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    table: str = "incidents",
    hashed: bool = False,
    extra: tuple[str, ...] = (),
    cases: bool = False,
) -> str:
    """What the history kernel reads: ``key``, ``_us``, ``is_index``, ``block``, the
    columns ``extra`` of ``table`` (with ``cases``, ``case_series`` and ``case_seq``) and
    one place key ``p_<place>`` per place of
    ``spec.history`` and ``spec.latest`` (null where unknown).

    With ``hashed``, ``block`` and the place keys come as DuckDB's 64-bit ``hash()`` of
    the text (a null place stays null): an eighth of the bytes of the text, and
    integers that encode faster. Two different places share a hash with probability
    about ``k**2 / 2**65`` for ``k`` distinct places (below 1e-7 for a million).
    """
    places = spec.places
    if hashed:
        keys = "".join(f", CASE WHEN {_PARTITION_SQL[p]} IS NOT NULL THEN "
                       f"hash({_PARTITION_SQL[p]}) END AS p_{p}" for p in places)
        block = "CASE WHEN block IS NOT NULL THEN hash(block) END AS block"
    else:
        keys = "".join(f", {_PARTITION_SQL[p]} AS p_{p}" for p in places)
        block = "block"
    rows = rows_sql(spec, since=since, until=until, table=table, extra=extra, cases=cases)
    if cases:
        extra = (*extra, "case_series", "case_seq")
    return (f"SELECT key, _us, is_index, {block}{''.join(', ' + c for c in extra)}{keys}\n"
            f"FROM ({rows}) AS rows")


def _history_sql(spec: FeatureSpec, history_from: str | None) -> str:
    """The ``history`` relation: the rows with their history sums (``_n_``, ``_k_``,
    ``_hours_since_block``), from window frames or joined from ``history_from``."""
    if "history" not in spec.groups:
        return "SELECT * FROM rows"
    if history_from is not None:
        names = [c for w in spec.history for c in (f"_n_{w.stem}", f"_k_{w.stem}")]
        names += hours_names(spec)
        return (f"SELECT rows.*, {', '.join('h.' + n for n in names)}\n"
                f"  FROM rows LEFT JOIN {history_from} AS h USING (key)")
    hist, counts = [], []
    for w in spec.history:
        part = _PARTITION_SQL[w.place]
        hist.append(f"CASE WHEN {part} IS NOT NULL THEN {_window_sum(part, w.days)} "
                    f"END AS _s_{w.stem}")
        counts += [f"_s_{w.stem} % {2 ** 32} AS _n_{w.stem}",
                   f"_s_{w.stem} // {2 ** 32} AS _k_{w.stem}"]
    days = max(spec.lookback_days, 1)
    hist.append(f"max(_us) OVER {_upto('block', 1)} AS _m_block")
    counts.append(f"{_hours_since('_m_block', days)} AS _hours_since_block")
    for x in spec.latest:
        part = _PARTITION_SQL[x.place]
        when = "CASE WHEN is_index THEN _us END" if x.index else "_us"
        hist.append(f"CASE WHEN {part} IS NOT NULL THEN max({when}) OVER {_upto(part, 1)} "
                    f"END AS _m_{x.name}")
        counts.append(f"{_hours_since('_m_' + x.name, days)} AS _{x.name}")
    history = "SELECT *" + "".join(f",\n    {h}" for h in hist) + "\n  FROM rows"
    return ("SELECT *" + "".join(f",\n    {c}" for c in counts)
            + f"\n  FROM (\n  {history}\n  ) AS sums")


def history_sums(con: Any, spec: FeatureSpec, *, since: str | dt.date | None = None,
                 until: str | dt.date | None = None, table: str = "incidents") -> Any:
    """The history sums of every row of the feature query, by the vectorized kernel.

    Returns an Arrow table of ``key`` and the sums (counts as int32, null where the
    place is unknown; hours as double) to pass to :func:`feature_sql` as
    ``history_from``: the same values as the window frames, computed in a fraction of
    their time (``tests/features/test_history_kernel.py``).
    """
    import pyarrow as pa

    from crimeclass.engines import release_memory
    from crimeclass.features._history import HistoryRows, history_columns

    sql = history_rows_sql(spec, since=since, until=until, table=table, hashed=True)
    rows = con.sql(sql).to_arrow_reader(1 << 20).read_all()
    arrays = {"key": rows.column("key")}
    places = HistoryRows.of(rows, spec)
    del rows  # the places' codes are all the kernel needs
    release_memory()
    sums = history_columns(places, spec)
    del places
    for name in list(sums):
        values = sums.pop(name)  # each array is freed once it is in Arrow
        arrays[name] = pa.array(values, mask=(np.isnan(values) if values.dtype.kind == "f"
                                              else values < 0))
    return pa.table(arrays)


def table_history_sums(con: Any, spec: FeatureSpec, *, table: str,
                       since: str | dt.date | None = None, until: str | dt.date | None = None,
                       name: str = "_history_sums", temp: bool = False) -> str:
    """Compute the history sums of every row of ``table`` with the kernel and keep them in
    a DuckDB table ``name`` (``temp``: a temporary one), for ``feature_sql(...,
    history_from=name)``. Returns ``name``."""
    sums = history_sums(con, spec, since=since, until=until, table=table)
    con.register("_history_sums_arrow", sums)
    try:
        con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {name} AS "
                    "SELECT * FROM _history_sums_arrow")
    finally:
        con.unregister("_history_sums_arrow")
    return name


def feature_sql(
    spec: FeatureSpec | None = None,
    *,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    years: Iterable[int] | None = None,
    labeled_only: bool = True,
    table: str = "incidents",
    history_from: str | None = None,
    report_from: str | None = None,
    ordered: bool = True,
) -> str:
    """The SQL statement that computes the features of ``spec``.

    Parameters
    ----------
    spec : FeatureSpec, optional
        Which features; the defaults when omitted.
    since, until : str or date, optional
        The window ``[since, until)`` of incidents to return (ISO dates).
    years : iterable of int, optional
        Years whose holidays to list; by default those of ``since`` to
        ``until``, or 2001 to next year.
    labeled_only : bool, default=True
        Return only incidents whose label (that of ``spec.target``) is known;
        history features count every earlier incident either way.
    table : str, default="incidents"
        The table (or view) of incidents, with the store's column names.
    history_from : str, optional
        A relation holding the history sums of every row (``key`` and the
        columns of :func:`~crimeclass.features._history.history_columns`), as
        :func:`history_sums` computes them: joined in place of the window
        frames, which are the definition and what Spark runs.
    report_from : str, optional
        A relation holding the report time (``key``, ``_reported_us``) of every row,
        as :func:`report_rows_sql` computes them over a wider table: joined in place
        of that window over ``table``'s incidents.
    ordered : bool, default=True
        Order the rows by date and key (without it, in any order).

    Returns
    -------
    str
        A DuckDB SELECT returning ``key, date``, the label (``is_index`` or
        ``arrest``) and the features, ordered by date and key.
    """
    spec = spec or FeatureSpec()
    feats = feature_catalog(spec)
    if years is None:
        lo = pd.Timestamp(since).year if since is not None else 2001
        hi = (pd.Timestamp(until).year if until is not None
              else dt.date.today().year + 1)
        years = range(lo, hi + 1)
    hol = holiday_rows(years)
    hol_values = ", ".join(f"(DATE '{d.isoformat()}', {sql_literal(name)})" for d, name in hol)
    label = spec.label_column
    report = None
    if "report" in spec.groups:  # the report times of the window's incidents' series
        window = ["true"]
        if since is not None:
            window.append(f"date >= {_ts(since)}")
        if until is not None:
            window.append(f"date < {_ts(until)}")
        report = report_from or f"({report_rows_sql(table, where=' AND '.join(window))})"
    rows = rows_sql(spec, since=since, until=until, table=table, report=report)
    history = _history_sql(spec, history_from)
    final_where = []
    if since is not None:
        final_where.append(f"date >= {_ts(since)}")
    if labeled_only:
        final_where.append(f"{label} IS NOT NULL")
    select = ",\n  ".join(select_sql(f) for f in feats)
    return (
        f"WITH holidays (holiday_day, holiday_name) AS (VALUES {hol_values}),\n"
        f"rows AS (\n  {rows}\n),\n"
        f"history AS (\n  {history}\n)\n"
        f"SELECT key, date, {label},\n  {select}\n"
        "FROM history LEFT JOIN holidays ON CAST(history.date AS DATE) = holidays.holiday_day"
        + (f"\nWHERE {' AND '.join(final_where)}" if final_where else "")
        + ("\nORDER BY date, key" if ordered else "")
    )


def select_sql(f: Feature) -> str:
    """How the feature query selects a feature: a category as it is; a number computed in
    DOUBLE and kept as FLOAT (4 bytes: 8 million rows of 60 numbers fit in 2 GB; the cast
    also keeps Spark from reading a literal such as 1.0 as DECIMAL)."""
    if f.kind in ("category", "high_cardinality"):
        return f"{f.sql} AS {f.name}"
    return f"CAST(CAST({f.sql} AS DOUBLE) AS FLOAT) AS {f.name}"


def store_feature_sql(
    engine: Engine,
    spec: FeatureSpec | None = None,
    *,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    labeled_only: bool = True,
    history_from: str | None = None,
    report_from: str | None = None,
    ordered: bool = True,
) -> str:
    """:func:`feature_sql` over the engine's incidents (``engine.source``), with the
    holidays of every year they hold."""
    row = engine.table(f"SELECT min(year) AS lo, max(year) AS hi FROM {engine.source}"
                       ).to_pylist()[0]
    years = range(int(row["lo"] or 2001), int(row["hi"] or 2001) + 2)
    return feature_sql(spec, since=since, until=until, years=years, labeled_only=labeled_only,
                       table=engine.source, history_from=history_from,
                       report_from=report_from, ordered=ordered)


def read_features(
    engine: Engine,
    spec: FeatureSpec | None = None,
    *,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    labeled_only: bool = True,
    batch_rows: int = 1 << 20,
    memory_limit: str | None = None,
    history: Literal["kernel", "sql"] = "kernel",
) -> pd.DataFrame:
    """Compute the features of the incidents in ``[since, until)`` on ``engine``.

    Parameters
    ----------
    engine : crimeclass.engines.Engine
        Where the incidents are: ``DuckDBEngine.from_store(store)``, or a
        ``SparkEngine`` (which takes no ``memory_limit``).
    spec : FeatureSpec, optional
    since, until : str or date, optional
    labeled_only : bool, default=True
    batch_rows : int, default=1048576
        Rows fetched from the engine at a time: the result streams into the frame.
    memory_limit : str, optional
        DuckDB's memory limit for the query (e.g. ``"3GB"``; the connection's
        setting is restored after). Beyond it DuckDB spills its window
        computations to disk: without a limit, the history windows of 8 million
        incidents take about 7 GB of DuckDB's memory on top of the frame.
    history : {"kernel", "sql"}, default="kernel"
        How the history windows are computed: by the vectorized kernel
        (:func:`history_sums`) or by DuckDB's window frames. The values are the
        same; the kernel is several times faster.

    Returns
    -------
    pandas.DataFrame
        ``key``, ``date``, the label (``is_index`` or ``arrest``: bool, or
        missing when unknown) and one column per feature: categories as
        ``category``, the rest as float32.
    """
    spec = spec or FeatureSpec()
    if history == "kernel" and "history" in spec.groups and engine.name == "duckdb":
        from crimeclass.features._assemble import kernel_feature_frame

        return frame_types(kernel_feature_frame(
            engine, spec, since=since, until=until, labeled_only=labeled_only,
            batch_rows=batch_rows, memory_limit=memory_limit), feature_catalog(spec))
    sql = store_feature_sql(engine, spec, since=since, until=until, labeled_only=labeled_only)
    with engine.memory_limit(memory_limit):
        table = _compact_table(engine.reader(sql, batch_rows), spec)
    return feature_frame(table, spec)


def _compact_table(reader: Any, spec: FeatureSpec) -> Any:
    """The batches of a feature query as one Arrow table, categories dictionary-encoded
    batch by batch.

    DuckDB streams the sorted result, so the whole result never exists twice (once in
    DuckDB, once in Arrow), and a category column holds small codes rather than
    millions of strings from the first batch on.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    categories = {f.name for f in feature_catalog(spec)
                  if f.kind in ("category", "high_cardinality")}
    batches = []
    for batch in reader:
        batches.append(pa.RecordBatch.from_arrays(
            [pc.dictionary_encode(col) if name in categories else col
             for name, col in zip(batch.schema.names, batch.columns, strict=True)],
            names=batch.schema.names))
    if not batches:
        return reader.schema.empty_table()
    return pa.Table.from_batches(batches)
