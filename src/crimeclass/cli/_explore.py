"""``crimeclass explore``: the descriptive statistics and their report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crimeclass.cli._common import JsonOpt, StoreOpt, handles_errors, print_json
from crimeclass.cli._common import store_path as _store_path
from crimeclass.cli._render import console, progress


@handles_errors
def explore(
    out: Annotated[Path, typer.Option(help="Folder for report.html, tables/ and plots/.")] = Path(
        "explore-report"),
    store: StoreOpt = None,
    since: Annotated[str | None, typer.Option(
        help="First day, YYYY-MM-DD (or YYYY-MM, YYYY).", show_default=False)] = None,
    until: Annotated[str | None, typer.Option(
        help="Last day, included: YYYY-MM-DD (or YYYY-MM, YYYY).", show_default=False)] = None,
    type_: Annotated[list[str] | None, typer.Option(
        "--type", help="Primary type to keep (repeat for several), e.g. THEFT.",
        show_default=False)] = None,
    district: Annotated[list[int] | None, typer.Option(
        help="Police district to keep (repeat for several).", show_default=False)] = None,
    engine: Annotated[str, typer.Option(help="duckdb (the store) or spark (its Parquet export).")
                      ] = "duckdb",
    spark_master: Annotated[str, typer.Option(
        help="Spark master for --engine spark: local[*], local[2], spark://host:7077, ...")
    ] = "local[*]",
    parquet: Annotated[Path | None, typer.Option(
        help="With --engine spark: read this export (crimeclass export) instead of "
             "exporting the store.", show_default=False)] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Tables only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Descriptive statistics of the incidents: report.html, and every table as CSV and Parquet.

    One catalog of statistics (trends, hour x weekday, types and index share, arrest
    rates, places, density, missing values, quarantine), computed by DuckDB over the
    store or by Spark over its Parquet export, with the same numbers.
    """
    from crimeclass.explore import explore as run
    from crimeclass.explore import parse_filters

    if engine not in ("duckdb", "spark"):
        raise ValueError(f"unknown engine {engine!r}; engines are: duckdb, spark")
    filters = parse_filters(since, until, type_ or (), district or ())
    path = None if (engine == "spark" and parquet is not None and store is None) \
        else _store_path(store)
    with progress(as_json) as bars:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, name: str, done: int, total: int) -> None:
            label = {"compute": f"computing ({engine})", "plot": "drawing",
                     "export": "exporting Parquet"}[stage]
            if stage not in tasks:
                tasks[stage] = bars.add_task(label, total=total)
            bars.update(tasks[stage], completed=done, total=total,
                        description=f"{label}: {name}")

        result = run(path, out, filters, engine=engine,  # type: ignore[arg-type]
                     spark_master=spark_master, parquet=parquet, plots=not no_plots,
                     on_progress=on_progress)
    if as_json:
        print_json(result)
        return
    for finding in result["findings"]:
        console.print(f"- {finding}", highlight=False)
    console.print(f"report: {result['report']}  tables: {Path(out) / 'tables'}")
