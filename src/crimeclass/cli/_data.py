"""The store's commands: ingest (files), info, quarantine, export, scaleset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crimeclass.cli._common import JsonOpt, StoreOpt, check_memory_limit, handles_errors, print_json
from crimeclass.cli._common import store_path as _store_path
from crimeclass.cli._render import (
    console,
    info_tables,
    print_accounts,
    progress,
    quarantine_table,
    status,
)


@handles_errors
def ingest(
    sources: Annotated[list[Path] | None, typer.Argument(
        help="CSV, CSV.gz or Parquet exports, or folders of them.", show_default=False)] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Load the real sample bundled with crimeclass (about 50,000 rows).")
    ] = False,
    store: StoreOpt = None,
    memory_limit: Annotated[str, typer.Option(
        callback=check_memory_limit, help="DuckDB memory limit while loading.")] = "1GB",
    as_json: JsonOpt = False,
) -> None:
    """Validate, label and load crime records into the store.

    Every row is loaded, updated, left unchanged or quarantined (with file, line,
    field and reason). Each file is loaded in its own transaction: a file that
    fails (a wrong header, binary data, a cut-off download) stores nothing and the
    next files are still loaded; the account gives each file's status (committed,
    failed, or, after Ctrl-C, interrupted and not reached), and the exit status is
    1 if any file failed. Re-loading the same or a newer export upserts by ID.

    Live sources: [bold]crimeclass ingest portal[/] (the Data Portal's web API) and
    [bold]crimeclass ingest bigquery[/] (BigQuery); see their --help, and
    [bold]crimeclass sync[/].
    """
    from crimeclass.data import (
        IngestOptions,
        Store,
        expand_paths,
        ingest_files,
        sample_files,
        total,
    )

    if not sources and not sample:
        raise ValueError("name the files to load, or pass --sample for the bundled sample")
    files = expand_paths(list(sources or [])) + (sample_files() if sample else [])
    with Store(_store_path(store)) as st, progress(as_json, bytes_=True) as bars:

        def start(path: Path, src: Any) -> Any:
            task = bars.add_task(path.name, total=src.size())
            return lambda done, total: bars.update(task, completed=done, total=total)

        accounts = ingest_files(st, files, IngestOptions(memory_limit=memory_limit),
                                progress=start)
    summary = total(accounts)
    summary["store"] = str(_store_path(store))
    if as_json:
        print_json(summary)
    else:
        print_accounts(accounts)
        console.print(f"store: {summary['store']}")
    if summary["status"]["interrupted"]:
        raise typer.Exit(130)
    if summary["status"]["failed"]:
        raise typer.Exit(1)


@handles_errors
def info(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """What the store holds: rows, dates, years, index share, labels, quarantine."""
    from crimeclass.data import Store

    with Store(_store_path(store), read_only=True) as st:
        data = st.info()
    if as_json:
        print_json(data)
        return
    for table in info_tables(data):
        console.print(table)


@handles_errors
def quarantine(
    store: StoreOpt = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Only sources whose path contains this.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Rows to list (0: all).")] = 20,
    out: Annotated[Path | None, typer.Option(
        help="Write all matching rows to .csv or .parquet.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List or export the quarantined rows, with file, line, field and reason."""
    from crimeclass.data import Reason, Store

    if reason and reason not in {r.value for r in Reason}:
        raise ValueError(f"unknown reason {reason!r}; reasons are: "
                         + ", ".join(r.value for r in Reason))
    if out and not out.name.lower().endswith((".csv", ".parquet")):
        raise ValueError(f"{out}: use a .csv or .parquet file name")
    with Store(_store_path(store), read_only=True) as st:
        table = st.quarantine(reason=reason, source=source, limit=None if out else (limit or None))
    if out:
        _write_table(table, out)
        if as_json:
            print_json({"out": str(out), "rows": table.num_rows})
        else:
            console.print(f"wrote {table.num_rows:,} rows to {out}")
        return
    if as_json:
        print_json({"rows": table.to_pylist()})
        return
    if not table.num_rows:
        console.print("no quarantined rows")
        return
    console.print(quarantine_table(table.to_pylist()))


def _write_table(table: Any, out: Path) -> None:
    """Write an Arrow table to .csv or .parquet through a temporary file."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.name.lower().endswith(".parquet"):
        pq.write_table(table, tmp)
    else:
        pcsv.write_csv(table, tmp)
    tmp.replace(out)


@handles_errors
def export(
    out: Annotated[Path, typer.Option(help="Folder to write (year=YYYY/ partitions).")] = Path(
        "crimeclass-parquet"),
    store: StoreOpt = None,
    format: Annotated[str, typer.Option("--format", help="Output format.")] = "parquet",
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export the incidents (22 canonical columns and the label) as Parquet partitioned by year."""
    from crimeclass.data import Store

    if format != "parquet":
        raise ValueError(f"unknown format {format!r}; the export writes 'parquet'")
    with Store(_store_path(store), read_only=True) as st, \
            status(as_json, "writing Parquet..."):
        result = st.export_parquet(out, overwrite=overwrite)
    if as_json:
        print_json(result)
    else:
        console.print(f"wrote {result['rows']:,} incidents in {result['files']} files "
                      f"({result['bytes'] / 1e6:.1f} MB) to {result['out']}")


@handles_errors
def scaleset(
    n: Annotated[int, typer.Argument(min=1, help="Rows to write, e.g. 8000000.",
                                     show_default=False)],
    out: Annotated[Path, typer.Argument(help=".csv, .csv.gz or .parquet", show_default=False)],
    data_dir: Annotated[Path, typer.Option(help="Folder of the real files to resample.")] = Path(
        "../shared/data"),
    seed: Annotated[int, typer.Option(min=0, help="Random seed: the same seed, the same rows.")
                    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write N rows resampled (with replacement, fresh IDs) from the real records, for benchmarks.

    The rows are copies of real records, not real incidents: a manifest
    OUT.resampled.json beside the file says so.
    """
    from crimeclass.data import scaleset as make
    from crimeclass.data import scaleset_sources

    sources = scaleset_sources(data_dir)
    with progress(as_json) as bars:
        task = bars.add_task(f"resampling {n:,} rows", total=n)
        manifest = make(n, out, sources, seed=seed,
                        on_progress=lambda done, tot: bars.update(task, completed=done))
    if as_json:
        print_json(manifest)
    else:
        console.print(f"wrote {manifest['rows']:,} resampled rows to {out} "
                      f"(manifest: {out}.resampled.json)")

