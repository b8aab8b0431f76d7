"""``explore``: the whole job, from a store to a report folder, on either engine."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from crimeclass.engines import DuckDBEngine
from crimeclass.explore._compute import Exploration, compute
from crimeclass.explore._errors import ExploreError
from crimeclass.explore._filters import Filters
from crimeclass.explore._painter import Painter
from crimeclass.explore._report import write_report
from crimeclass.explore._sources import store_sources

__all__ = ["explore"]

EngineName = Literal["duckdb", "spark"]


def explore(store: str | Path | None, out: str | Path, filters: Filters | None = None, *,
            engine: EngineName = "duckdb", spark_master: str = "local[*]",
            parquet: str | Path | None = None, plots: bool = True,
            on_progress: Callable[[str, str, int, int], None] | None = None) -> dict[str, Any]:
    """Compute the catalog and write the report folder ``out``.

    Parameters
    ----------
    store : str or pathlib.Path or None
        The store. With ``engine="spark"`` and ``parquet``, it may be None.
    out : str or pathlib.Path
        Folder for ``report.html``, ``tables/``, ``plots/`` and ``summary.json``.
    filters : Filters, optional
    engine : {"duckdb", "spark"}, default="duckdb"
    spark_master : str, default="local[*]"
        Spark master for ``engine="spark"``.
    parquet : str or pathlib.Path, optional
        For Spark: an existing export (``crimeclass export``) to read instead of
        exporting the store to a temporary folder; on a cluster it must be on
        storage that the executors can read.
    plots : bool, default=True
    on_progress : callable, optional
        ``on_progress(stage, name, done, total)``; stage is ``"compute"`` or ``"plot"``.

    Returns
    -------
    dict
        What :func:`write_report` returns, plus the engine's seconds.
    """
    def step(stage: str) -> Callable[[str, int, int], None] | None:
        if on_progress is None:
            return None
        return lambda name, done, total: on_progress(stage, name, done, total)

    painter = Painter() if plots else None
    on_table = painter.submit if painter else None
    try:
        ex = _compute(store, filters, engine, spark_master, parquet, on_table, on_progress,
                      step("compute"))
        images = painter.results(step("plot")) if painter else {}
    finally:
        if painter:
            painter.close()
    return write_report(ex, out, plots=plots, images=images)


def _compute(store: str | Path | None, filters: Filters | None, engine: EngineName,
             spark_master: str, parquet: str | Path | None,
             on_table: Callable[[str, Any], None] | None,
             on_progress: Callable[[str, str, int, int], None] | None,
             progress: Callable[[str, int, int], None] | None) -> Exploration:
    if engine == "duckdb":
        if store is None:
            raise ExploreError("the DuckDB engine reads a store: pass --store")
        with DuckDBEngine.open_store(store) as eng:
            return compute(eng, filters, on_progress=progress, on_table=on_table)
    if engine == "spark":
        from crimeclass.engines import SparkEngine, export_for_spark

        with tempfile.TemporaryDirectory(prefix="crimeclass-spark-") as tmp:
            quarantine = None
            if parquet is None:
                if store is None:
                    raise ExploreError("the Spark engine reads a store or --parquet DIR")
                if on_progress:
                    on_progress("export", "Parquet export for Spark", 0, 1)
                parquet, quarantine = export_for_spark(store, tmp)
            with SparkEngine(parquet, quarantine, master=spark_master) as spark:
                ex = compute(spark, filters, on_progress=progress, on_table=on_table)
        if store is not None and Path(store).exists():
            ex.sources = store_sources(store)
        return ex
    raise ExploreError(f"unknown engine {engine!r}; engines are: duckdb, spark")
