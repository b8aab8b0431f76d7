"""Run the catalog on an engine: check the filters, define the relations, compute."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from crimeclass.engines import Engine
from crimeclass.explore._catalog import CATALOG, Statistic
from crimeclass.explore._filters import Filters, normalize_primary_type
from crimeclass.explore._relations import relations
from crimeclass.explore._sources import engine_sources, register_lookups

__all__ = ["Exploration", "compute"]


@dataclass
class Exploration:
    """The catalog's tables for one set of filters, and what they were computed from.

    Attributes
    ----------
    tables : dict of str to pyarrow.Table
        One table per statistic, by catalog name, in catalog order.
    filters : Filters
        The checked filters.
    engine : str
        ``"duckdb"`` or ``"spark"``.
    engine_detail : str
        Engine version and input.
    rows : int
        Incidents that pass the filters.
    rows_window : int
        Incidents in the date window, whatever the other filters.
    first, last : datetime or None
        First and last incident that pass the filters.
    seconds : dict of str to float
        Time each statistic took.
    sources : list of dict
        The files loaded into the store, when known.
    quarantine_available : bool
        Whether the engine could read the store's quarantine.
    """

    tables: dict[str, pa.Table]
    filters: Filters
    engine: str
    engine_detail: str
    rows: int
    rows_window: int
    first: datetime | None
    last: datetime | None
    seconds: dict[str, float] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    quarantine_available: bool = True

    @property
    def empty(self) -> bool:
        """No incident passes the filters."""
        return self.rows == 0


def compute(engine: Engine, filters: Filters | None = None, *,
            statistics: Sequence[Statistic] = CATALOG,
            on_progress: Callable[[str, int, int], None] | None = None,
            on_table: Callable[[str, pa.Table], None] | None = None) -> Exploration:
    """Compute ``statistics`` on ``engine`` for the incidents that pass ``filters``.

    Parameters
    ----------
    engine : Engine
        :class:`~crimeclass.engines.DuckDBEngine` or :class:`~crimeclass.engines.SparkEngine`;
        the lookup views (community areas, districts) are created on it.
    filters : Filters, optional
        Checked against the data first: an unknown primary type or district
        raises :class:`FilterError` listing the valid values.
    statistics : sequence of Statistic, default=CATALOG
    on_progress : callable, optional
        Called as ``on_progress(name, done, total)`` before each statistic and at the end.
    on_table : callable, optional
        Called as ``on_table(name, table)`` as soon as each table is computed (to draw
        it while the next ones run).

    Returns
    -------
    Exploration
    """
    filters = filters or Filters()
    register_lookups(engine)
    # the values the filters may take, over the whole store: spelled as stored, normalised
    # here with the same table of old spellings that the SQL uses
    types = engine.table(f"SELECT DISTINCT primary_type FROM {engine.source} "
                         "WHERE primary_type IS NOT NULL")
    districts = engine.table(f"SELECT DISTINCT district FROM {engine.source} "
                             "WHERE district IS NOT NULL")
    filters = filters.checked({normalize_primary_type(t) for t in types.column(0).to_pylist()},
                              districts.column(0).to_pylist())
    for rel in relations(filters, engine.source):
        engine.define(rel.name, rel.sql, materialize=rel.materialize)
    head = engine.table("SELECT count(*) AS n, min(date) AS first, max(date) AS last "
                        "FROM incidents").to_pylist()[0]
    rows_window = engine.table("SELECT CAST(coalesce(sum(count), 0) AS BIGINT) AS n "
                               "FROM year_coverage").column(0)[0].as_py()
    tables: dict[str, pa.Table] = {}
    seconds: dict[str, float] = {}
    for i, stat in enumerate(statistics):
        if on_progress:
            on_progress(stat.name, i, len(statistics))
        t0 = time.perf_counter()
        tables[stat.name] = engine.table(stat.sql)
        seconds[stat.name] = round(time.perf_counter() - t0, 4)
        if on_table:
            on_table(stat.name, tables[stat.name])
    if on_progress:
        on_progress("done", len(statistics), len(statistics))
    return Exploration(tables=tables, filters=filters, engine=engine.name,
                       engine_detail=engine.detail, rows=int(head["n"]),
                       rows_window=int(rows_window), first=head["first"], last=head["last"],
                       seconds=seconds, sources=engine_sources(engine),
                       quarantine_available=engine.has_quarantine)
