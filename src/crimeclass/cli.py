"""The ``crimeclass`` command line: thin wrappers over the stages' Python API.

Every command takes ``--store`` (or ``$CRIMECLASS_STORE``); commands with
``--json`` print one JSON object for scripts. Errors print a clear message and
exit non-zero (with ``--json``, as ``{"error": ...}``).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from crimeclass import __version__
from crimeclass.data import CrimeclassError

app = typer.Typer(
    name="crimeclass",
    help="Chicago crime records into trustworthy statistics and index-offense classifiers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", envvar="CRIMECLASS_STORE", show_default="crimeclass.duckdb",
                 help="The DuckDB store file ($CRIMECLASS_STORE)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object, for scripts.")]

F = TypeVar("F", bound=Callable[..., Any])


def _store_path(store: Path | None) -> Path:
    from crimeclass.data import default_store_path

    return store or default_store_path()


def _fail(error: BaseException, as_json: bool) -> None:
    if as_json:
        attrs = error.attrs() if isinstance(error, CrimeclassError) else {}
        print(json.dumps({"error": str(error), "type": type(error).__name__, **attrs},
                         default=str))
    else:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def handles_errors(fn: F) -> F:
    """Turn crimeclass errors into a message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (CrimeclassError, ValueError, OSError) as e:
            _fail(e, bool(kwargs.get("as_json")))

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"crimeclass {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Chicago crime records into trustworthy statistics and index-offense classifiers."""


# ---------------------------------------------------------------- ingest


@app.command()
@handles_errors
def ingest(
    sources: Annotated[list[Path] | None, typer.Argument(
        help="CSV, CSV.gz or Parquet exports, or folders of them.", show_default=False)] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Load the real sample bundled with crimeclass (about 50,000 rows).")
    ] = False,
    store: StoreOpt = None,
    memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit while loading.")] = "1GB",
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
    with Store(_store_path(store)) as st, _progress(as_json, bytes_=True) as progress:

        def start(path: Path, src: Any) -> Any:
            task = progress.add_task(path.name, total=src.size())
            return lambda done, total: progress.update(task, completed=done, total=total)

        accounts = ingest_files(st, files, IngestOptions(memory_limit=memory_limit),
                                progress=start)
    summary = total(accounts)
    summary["store"] = str(_store_path(store))
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        _print_accounts(accounts)
        console.print(f"store: {summary['store']}")
    if summary["status"]["interrupted"]:
        raise typer.Exit(130)
    if summary["status"]["failed"]:
        raise typer.Exit(1)


def _account_table() -> Table:
    """The table of ingest accounts: the source and its counts (the rest goes below it).

    The counts never wrap; the source's name folds, and keeps a readable width on an
    80-column terminal.
    """
    t = Table(title="Ingest account: read = inserted + updated + unchanged + quarantined",
              box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("source", overflow="fold", min_width=20)
    for col in ("read", "inserted", "updated", "unchanged", "quarantined"):
        t.add_column(col, justify="right", no_wrap=True)
    return t


def _print_accounts(accounts: list[Any]) -> None:
    t = _account_table()
    for a in accounts:
        if a.status != "committed":
            t.add_row(f"{Path(a.source).name} ({a.status})", *["-"] * 5)
            continue
        t.add_row(Path(a.source).name, f"{a.read:,}", f"{a.inserted:,}", f"{a.updated:,}",
                  f"{a.unchanged:,}", f"{a.quarantined:,}")
    console.print(t)
    for a in (a for a in accounts if a.status == "committed"):
        notes = [f"{a.variant}, {a.seconds:,.1f} s ({a.rows_per_second:,.0f} rows/s)"]
        if a.quarantine_reasons:
            notes.append("quarantined: " + ", ".join(f"{k} {v:,}" for k, v in
                                                     a.quarantine_reasons.items()))
        routes = ", ".join(f"{k} {v:,}" for k, v in a.label_routes.items())
        notes.append(f"labels by {routes}" if routes else "")
        if a.flags:
            notes.append("flagged: " + ", ".join(f"{k} {v:,}" for k, v in a.flags.items()))
        if a.stale or a.matched_by_derived_key:
            notes.append(f"unchanged includes {a.stale:,} older than stored and "
                         f"{a.matched_by_derived_key:,} matched without ID")
        console.print(f"[dim]{Path(a.source).name}: " + "; ".join(n for n in notes if n) + "[/]")
        for w in a.warnings:
            err_console.print(f"[yellow]warning:[/] {Path(a.source).name}: {w}")
    _print_statuses(accounts)


def _print_statuses(accounts: list[Any]) -> None:
    """Which files were not stored, and why (nothing when every file was)."""
    if all(a.status == "committed" for a in accounts):
        return
    for a in accounts:
        if a.status in ("failed", "interrupted"):
            err_console.print(f"[bold red]{a.status}:[/] {a.error}", highlight=False,
                              soft_wrap=True)
    counts = {s: sum(a.status == s for a in accounts)
              for s in ("committed", "failed", "interrupted", "not reached")}
    err_console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n)
                      + " (each file in its own transaction: a file not committed stored "
                      "nothing)", highlight=False)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        pass


def _progress(quiet: bool, *, bytes_: bool = False) -> Any:
    if quiet or not sys.stderr.isatty():
        return _NoProgress()
    counter = DownloadColumn() if bytes_ else MofNCompleteColumn()
    return Progress(TextColumn("{task.description}"), BarColumn(), counter,
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                    transient=False)


# ------------------------------------------------------------------ info


@app.command()
@handles_errors
def info(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """What the store holds: rows, dates, years, index share, labels, quarantine."""
    from crimeclass.data import Store

    with Store(_store_path(store), read_only=True) as st:
        data = st.info()
    if as_json:
        print(json.dumps(data, default=str))
        return
    t = Table(title=f"crimeclass store {data['store']}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("incidents", f"{data['rows']:,}")
    t.add_row("from", str(data["min_date"]))
    t.add_row("to", str(data["max_date"]))
    share = data["index_share"]
    t.add_row("index offenses", "-" if share is None else f"{share:.1%} of labeled")
    t.add_row("labeled by", ", ".join(f"{k} {v:,}" for k, v in data["label_routes"].items()))
    t.add_row("keys derived (no ID)", f"{data['derived_keys']:,}")
    t.add_row("quarantined rows", f"{data['quarantined']:,}")
    for reason, n in data["quarantine_reasons"].items():
        t.add_row(f"  {reason}", f"{n:,}")
    t.add_row("sources / ingests", f"{data['sources']} / {data['ingests']}")
    console.print(t)
    years = Table(title="incidents by year")
    years.add_column("year")
    years.add_column("incidents", justify="right")
    for y, n in data["years"].items():
        years.add_row(str(y), f"{n:,}")
    console.print(years)


# ------------------------------------------------------------ quarantine


@app.command()
@handles_errors
def quarantine(
    store: StoreOpt = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Only sources whose path contains this.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to list (0: all).")] = 20,
    out: Annotated[Path | None, typer.Option(
        help="Write all matching rows to .csv or .parquet.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List or export the quarantined rows, with file, line, field and reason."""
    from crimeclass.data import Reason, Store

    if reason and reason not in {r.value for r in Reason}:
        raise ValueError(f"unknown reason {reason!r}; reasons are: "
                         + ", ".join(r.value for r in Reason))
    with Store(_store_path(store), read_only=True) as st:
        table = st.quarantine(reason=reason, source=source, limit=None if out else (limit or None))
    if out:
        _write_table(table, out)
        if as_json:
            print(json.dumps({"out": str(out), "rows": table.num_rows}))
        else:
            console.print(f"wrote {table.num_rows:,} rows to {out}")
        return
    if as_json:
        print(json.dumps({"rows": table.to_pylist()}, default=str))
        return
    if not table.num_rows:
        console.print("no quarantined rows")
        return
    t = Table(title="quarantined rows")
    for col in ("source", "line", "field", "reason", "row"):
        t.add_column(col, overflow="fold")
    for r in table.to_pylist():
        t.add_row(Path(r["source"]).name, str(r["line"]), r["field"] or "", r["reason"],
                  (r["raw"] or "")[:160])
    console.print(t)


def _write_table(table: Any, out: Path) -> None:
    """Write an Arrow table to .csv or .parquet through a temporary file."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    suffix = out.name.lower()
    if not suffix.endswith((".csv", ".parquet")):
        raise ValueError(f"{out}: use a .csv or .parquet file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if suffix.endswith(".parquet"):
        pq.write_table(table, tmp)
    else:
        pcsv.write_csv(table, tmp)
    tmp.replace(out)


# ---------------------------------------------------------------- export


@app.command()
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
    with Store(_store_path(store), read_only=True) as st:
        with err_console.status("writing Parquet...", spinner="dots") if not as_json \
                else _NoProgress():
            result = st.export_parquet(out, overwrite=overwrite)
    if as_json:
        print(json.dumps(result))
    else:
        console.print(f"wrote {result['rows']:,} incidents in {result['files']} files "
                      f"({result['bytes'] / 1e6:.1f} MB) to {result['out']}")


# -------------------------------------------------------------- scaleset


@app.command()
@handles_errors
def scaleset(
    n: Annotated[int, typer.Argument(help="Rows to write, e.g. 8000000.", show_default=False)],
    out: Annotated[Path, typer.Argument(help=".csv, .csv.gz or .parquet", show_default=False)],
    data_dir: Annotated[Path, typer.Option(help="Folder of the real files to resample.")] = Path(
        "../shared/data"),
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same rows.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write N rows resampled (with replacement, fresh IDs) from the real records, for benchmarks.

    The rows are copies of real records, not real incidents: a manifest
    OUT.resampled.json beside the file says so.
    """
    from crimeclass.data import scaleset as make
    from crimeclass.data import scaleset_sources

    sources = scaleset_sources(data_dir)
    with _progress(as_json) as progress:
        task = progress.add_task(f"resampling {n:,} rows", total=n)
        manifest = make(n, out, sources, seed=seed,
                        on_progress=lambda done, tot: progress.update(task, completed=done))
    if as_json:
        print(json.dumps(manifest))
    else:
        console.print(f"wrote {manifest['rows']:,} resampled rows to {out} "
                      f"(manifest: {out}.resampled.json)")


# ---------------------------------------------------------- live sources
# `crimeclass ingest portal ...` and `crimeclass ingest bigquery ...` are the
# hidden commands ingest-portal and ingest-bigquery: the group below routes the
# two words to them, so that `crimeclass ingest FILE...` stays as it is.


class _LiveSourceGroup(TyperGroup):
    """Routes ``ingest portal`` and ``ingest bigquery`` to their commands."""

    live = {"portal": "ingest-portal", "bigquery": "ingest-bigquery"}

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if len(args) >= 2 and args[0] == "ingest" and args[1] in self.live:
            return f"ingest {args[1]}", self.get_command(ctx, self.live[args[1]]), args[2:]
        return super().resolve_command(ctx, args)


app.info.cls = _LiveSourceGroup

UrlOpt = Annotated[str, typer.Option(help="The portal's address (another Socrata host works).")]
DatasetOpt = Annotated[str, typer.Option(help="The dataset id (ijzp-q8t2: Crimes - 2001 to "
                                              "Present).")]
PageRowsOpt = Annotated[int, typer.Option(min=1, max=50_000, help="Rows per request ($limit).")]
RestartOpt = Annotated[bool, typer.Option(
    "--restart", help="Drop an interrupted run and start afresh instead of resuming it.")]
FromYearOpt = Annotated[int | None, typer.Option(help="First year (of Date) to load.",
                                                 show_default=False)]
ToYearOpt = Annotated[int | None, typer.Option(help="Last year (of Date) to load.",
                                               show_default=False)]
SinceOpt = Annotated[str | None, typer.Option(
    help="Only rows updated after this Chicago time, e.g. 2025-06-01 or 2025-06-01T08:30.",
    show_default=False)]
MemoryOpt = Annotated[str, typer.Option(help="DuckDB memory limit while loading.")]
DeadlineOpt = Annotated[float, typer.Option(
    min=0, help="Seconds one request may take with its retries: the server's Retry-After is "
                "honoured, whatever its size, within it.")]


def _row_filter(from_year: int | None, to_year: int | None, since: str | None) -> Any:
    from crimeclass.data import RowFilter, parse_timestamp

    return RowFilter(from_year, to_year, parse_timestamp(since) if since else None)


def _portal_run(store: Path | None, url: str, dataset: str, page_rows: int, restart: bool,
                memory_limit: str, as_json: bool, row_filter: Any | None,
                retry_deadline: float) -> None:
    from crimeclass.data import (
        IngestOptions,
        Portal,
        RetryPolicy,
        Store,
        ingest_portal,
        sync_portal,
    )

    portal = Portal.from_env(url=url, dataset=dataset, page_rows=page_rows,
                             retry=RetryPolicy(deadline=retry_deadline))
    options = IngestOptions(memory_limit=memory_limit)
    path = _store_path(store)
    with Store(path) as st, _progress(as_json) as progress:
        task = progress.add_task(f"{dataset} from {url}", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        if row_filter is None:
            run = sync_portal(st, portal, options=options, restart=restart,
                              on_progress=on_progress)
        else:
            run = ingest_portal(st, portal, row_filter, options=options, restart=restart,
                                on_progress=on_progress)
    summary = run.summary()
    summary["store"] = str(path)
    if as_json:
        print(json.dumps(summary, default=str))
        return
    t = _account_table()
    t.add_row(run.resource, *(f"{summary[k]:,}" for k in (
        "read", "inserted", "updated", "unchanged", "quarantined")))
    console.print(t)
    notes = [f"{summary['pages']:,} page(s), {summary['rows_per_second']:,.0f} rows/s",
             f"where {run.where}" if run.where else "nothing new"]
    if run.resumed_at is not None:
        notes.append(f"resumed at offset {run.resumed_at:,}")
    if summary["quarantine_reasons"]:
        notes.append("quarantined: " + ", ".join(
            f"{k} {v:,}" for k, v in summary["quarantine_reasons"].items()))
    if run.retries:
        notes.append(f"{run.retries} request(s) retried")
    if run.cursor:
        notes.append(f"next sync asks for updated_on > {run.cursor.isoformat()}")
    console.print("[dim]" + "; ".join(notes) + "[/]", highlight=False)
    console.print(f"store: {path}")


@app.command("ingest-portal", hidden=True)
@handles_errors
def ingest_portal_cmd(
    url: UrlOpt = "https://data.cityofchicago.org",
    dataset: DatasetOpt = "ijzp-q8t2",
    from_year: FromYearOpt = None,
    to_year: ToYearOpt = None,
    updated_since: SinceOpt = None,
    page_rows: PageRowsOpt = 50_000,
    restart: RestartOpt = False,
    retry_deadline: DeadlineOpt = 900.0,
    store: StoreOpt = None,
    memory_limit: MemoryOpt = "1GB",
    as_json: JsonOpt = False,
) -> None:
    """Load crime records from the Data Portal's web API (SODA), page by page.

    The filters go into the query's $where, so only those rows travel. Each page
    is validated and stored in its own transaction, with the same account and
    quarantine (page and offset) as a file; run again with the same filters, an
    interrupted load resumes where it stopped. An app token is read from
    $SODA_APP_TOKEN if set.
    """
    _portal_run(store, url, dataset, page_rows, restart, memory_limit, as_json,
                _row_filter(from_year, to_year, updated_since), retry_deadline)


@app.command()
@handles_errors
def sync(
    url: UrlOpt = "https://data.cityofchicago.org",
    dataset: DatasetOpt = "ijzp-q8t2",
    page_rows: PageRowsOpt = 50_000,
    restart: RestartOpt = False,
    retry_deadline: DeadlineOpt = 900.0,
    store: StoreOpt = None,
    memory_limit: MemoryOpt = "1GB",
    as_json: JsonOpt = False,
) -> None:
    """Fetch the records updated since the last sync from the Data Portal and upsert them.

    The first sync asks for rows updated after the newest Updated On in the store
    (an empty store: every row). Interrupted at any page (an error, Ctrl-C), the
    next sync resumes where it stopped, without losing or repeating a row. An app
    token is read from $SODA_APP_TOKEN if set.
    """
    _portal_run(store, url, dataset, page_rows, restart, memory_limit, as_json, None,
                retry_deadline)


@app.command("ingest-bigquery", hidden=True)
@handles_errors
def ingest_bigquery_cmd(
    project: Annotated[str | None, typer.Option(
        envvar="GOOGLE_CLOUD_PROJECT", show_default=False,
        help="Billing project for the reads (else the default credentials' project).")] = None,
    table: Annotated[str, typer.Option(help="The table, project.dataset.table.")] = (
        "bigquery-public-data.chicago_crime.crime"),
    from_year: FromYearOpt = None,
    to_year: ToYearOpt = None,
    updated_since: SinceOpt = None,
    streams: Annotated[int, typer.Option(min=1, help="Streams to read in parallel.")] = 4,
    endpoint: Annotated[str | None, typer.Option(
        help="host:port of another BigQuery Storage endpoint.", show_default=False)] = None,
    plaintext: Annotated[bool, typer.Option(
        help="Talk to --endpoint without TLS or credentials (a local emulator).")] = False,
    store: StoreOpt = None,
    memory_limit: MemoryOpt = "1GB",
    as_json: JsonOpt = False,
) -> None:
    """Load crime records from BigQuery through the Storage Read API (crimeclass\\[bigquery]).

    The canonical columns and the filters (years, updated since) are pushed down
    to BigQuery; its streams are read in parallel as Arrow, validated and stored
    in one transaction. Credentials come from Google's default credentials
    (gcloud auth application-default login, or $GOOGLE_APPLICATION_CREDENTIALS).
    """
    from crimeclass.data import BigQuerySource, IngestOptions, Store, total

    row_filter = _row_filter(from_year, to_year, updated_since)
    path = _store_path(store)
    with err_console.status("opening a BigQuery read session...", spinner="dots") \
            if not as_json else _NoProgress():
        source = BigQuerySource(project=project, table=table, row_filter=row_filter,
                                streams=streams, endpoint=endpoint, plaintext=plaintext)
    with Store(path) as st, _progress(as_json) as progress:
        task = progress.add_task(f"{table} ({len(source.session.streams)} streams)",
                                 total=source.size() or None)
        account = st.ingest(source, IngestOptions(memory_limit=memory_limit),
                            on_progress=lambda done, tot: progress.update(
                                task, completed=done, total=tot or None))
    summary = total([account])
    summary.update(source=source.name, streams=len(source.session.streams), store=str(path))
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        _print_accounts([account])
        console.print(f"store: {path}")


# --------------------------------------------------------------- explore


@app.command()
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
    with _progress(as_json) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, name: str, done: int, total: int) -> None:
            label = {"compute": f"computing ({engine})", "plot": "drawing",
                     "export": "exporting Parquet"}[stage]
            if stage not in tasks:
                tasks[stage] = progress.add_task(label, total=total)
            progress.update(tasks[stage], completed=done, total=total,
                            description=f"{label}: {name}")

        result = run(path, out, filters, engine=engine,  # type: ignore[arg-type]
                     spark_master=spark_master, parquet=parquet, plots=not no_plots,
                     on_progress=on_progress)
    if as_json:
        print(json.dumps(result, default=str))
        return
    for finding in result["findings"]:
        console.print(f"- {finding}", highlight=False)
    console.print(f"report: {result['report']}  tables: {Path(out) / 'tables'}")


# ----------------------------------------------------------------- train


class CVChoice(StrEnum):
    """Cross-validation inside the training period."""

    time = "time"
    stratified = "stratified"


class TargetChoice(StrEnum):
    """What the classifiers predict (a member named ``index`` would hide ``str.index``)."""

    index_offense = "index"
    arrest = "arrest"


@app.command()
@handles_errors
def train(
    models: Annotated[str, typer.Option(
        help="Models to train, comma-separated: lr, rf, svm, xgb, nn (the baselines "
             "majority and location_rate, and type_rate for the arrest target, are "
             "added).")] = "lr,rf,svm,xgb,nn",
    target: Annotated[TargetChoice, typer.Option(
        help="index: an index offense (the offense type is never a feature); arrest: an "
             "arrest was made (the offense type is a feature, arrest never).")] = (
        TargetChoice.index_offense),
    cv: Annotated[CVChoice, typer.Option(
        help="time: train on earlier periods, validate on the next; stratified: shuffled "
             "k-fold.")] = CVChoice.time,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 3,
    trials: Annotated[int, typer.Option(help="Optuna trials per model.")] = 20,
    since: Annotated[str | None, typer.Option(
        help="First day of the data window (YYYY-MM-DD); the store's first by default.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Day after the data window (YYYY-MM-DD, excluded).")] = None,
    holdout: Annotated[str, typer.Option(
        help="Held-out period, never used for tuning: auto (latest complete year), 2017, "
             "2017-06 or START:END.")] = "auto",
    sample: Annotated[int | None, typer.Option(
        help="Train on this many training rows, drawn at random (seeded).")] = None,
    search_sample: Annotated[int, typer.Option(
        help="Rows the hyperparameter search sees (0: all training rows); the best "
             "parameters are refitted on all training rows.")] = 50_000,
    runs_dir: Annotated[Path, typer.Option(help="Where runs/<run-id>/ is written.")] = Path(
        "runs"),
    seed: Annotated[int, typer.Option(help="The same seed gives the same numbers.")] = 0,
    allow_arrest: Annotated[bool, typer.Option(
        "--allow-arrest", help="Use Arrest as a feature. It is recorded AFTER the report: "
                               "every output of the run says so.")] = False,
    baselines: Annotated[bool, typer.Option(
        help="Add the majority-class and location-rate baselines.")] = True,
    n_jobs: Annotated[int | None, typer.Option(
        help="Threads for random forest and XGBoost (all cores by default).")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="Seconds after which a model's search starts no new trial.")] = None,
    memory_limit: Annotated[str, typer.Option(
        help="DuckDB memory limit while computing the features (beyond it DuckDB spills "
             "to disk).")] = "3GB",
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train, tune and compare the classifiers of a target; write runs/<run-id>/.

    The target is an index offense (default) or an arrest. Features are those
    known when an incident is reported; the latest complete
    year is held out and never used for tuning. The run folder holds the config,
    a fingerprint of the data, metrics.json, a comparison table (comparison.md,
    report.html) and every fitted model in a safe format.
    """
    from crimeclass.models import TrainConfig, parse_model_names
    from crimeclass.models import train as run_training

    config = TrainConfig(
        models=tuple(parse_model_names(models)), baselines=baselines, cv=cv.value,
        folds=folds, trials=trials, since=since, until=until, holdout=holdout, sample=sample,
        search_sample=search_sample or None, seed=seed, allow_arrest=allow_arrest,
        target=target.value, n_jobs=n_jobs, timeout=timeout, memory_limit=memory_limit)
    if allow_arrest and not as_json:
        err_console.print("[bold yellow]warning:[/] --allow-arrest: Arrest is recorded after "
                          "the report; these models will not predict at report time.")
    with _progress(as_json) as progress:
        tasks: dict[str, Any] = {}
        best: dict[str, float] = {}

        def on_event(kind: str, info: dict[str, Any]) -> None:
            if kind == "stage" and not as_json:
                err_console.print(f"[dim]{info['text']}[/]")
            elif kind == "model":
                tasks[info["name"]] = progress.add_task(info["name"], total=info["trials"])
            elif kind == "trial":
                name = info["name"]
                if info["value"] is not None and info["state"] == "complete":
                    best[name] = max(best.get(name, float("-inf")), info["value"])
                label = f"{name} (best CV {best[name]:.4f})" if name in best else name
                progress.update(tasks[name], completed=info["done"], description=label)

        result = run_training(_store_path(store), config, runs_dir=runs_dir, on_event=on_event)
    metrics = result.metrics
    if as_json:
        print(json.dumps({
            "run_dir": str(result.run_dir), "best_model": metrics["best_model"],
            "primary_metric": metrics["primary_metric"], "target": metrics["target"],
            "allow_arrest": metrics["allow_arrest"],
            "holdout": metrics["holdout"], "train": metrics["train"],
            "models": [{"name": m["name"], "baseline": m["baseline"], "cv_mean": m["cv"]["mean"],
                        **{k: m["metrics"][k] for k in ("roc_auc", "average_precision",
                                                        "log_loss", "brier", "f1")}}
                       for m in metrics["models"]]}, default=str))
        return
    _print_comparison(metrics)
    console.print(f"run: {result.run_dir}  (report.html, metrics.json, models/)")


def _print_comparison(metrics: dict[str, Any]) -> None:
    hold = metrics["holdout"]
    baselines = [m["name"] for m in metrics["models"] if m["baseline"]]
    target = metrics.get("target", "index")
    share = hold.get("positive_share", hold.get("index_share"))
    t = Table(title=f"target {target}; held out {hold['since'][:10]} to {hold['until'][:10]}: "
                    f"{hold['rows']:,} incidents, {share:.1%} "
                    + ("arrests" if target == "arrest" else "index"),
              caption=(f"baselines: {', '.join(baselines)}; " if baselines else "")
              + "AUC: ROC AUC, AP: average precision; F1 at the threshold chosen on "
                "validation folds; CV: mean±sd of the folds; s: seconds to search and fit",
              box=box.SIMPLE_HEAD)
    for col in ("model", "AUC", "AP", "log loss", "Brier", "F1", "CV", "s"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    for m in metrics["models"]:
        h = m["metrics"]
        t.add_row(m["name"] + (" *" if m.get("best") else ""), f(h["roc_auc"]),
                  f(h["average_precision"]), f(h["log_loss"]), f(h["brier"]), f(h["f1"]),
                  f"{m['cv']['mean']:.3f}±{m['cv']['std']:.3f}",
                  f"{m['seconds']['search'] + m['seconds']['refit']:.0f}",
                  style="bold green" if m.get("best") else ("dim" if m["baseline"] else None))
    console.print(t)
    console.print(f"* best by held-out {metrics['primary_metric']}: {metrics['best_model']}")
    if metrics.get("allow_arrest"):
        console.print(f"[bold yellow]warning:[/] {metrics['arrest_warning']}")

# ----------------------------------------------------------------- predict


@app.command()
@handles_errors
def predict(
    run: Annotated[Path, typer.Option(help="The run folder (runs/<run-id>).",
                                      show_default=False)],
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet; bad input rows go "
                                           "to OUT.quarantine.csv.", show_default=False)],
    inputs: Annotated[list[Path] | None, typer.Argument(
        metavar="[INPUT]...", help="CSV, CSV.gz or Parquet files or folders (any export "
                                   "ingest reads), or a store (.duckdb). Omitted: the "
                                   "incidents of --store.", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        help="A model of the run (lr, xgb, ...); the run's best by default.")] = None,
    store: Annotated[Path | None, typer.Option(
        "--store", envvar="CRIMECLASS_STORE",
        help="History store ($CRIMECLASS_STORE): the history features count its incidents before "
                        "each input row. Without it, only the input's own earlier rows "
                        "(marked history_complete=false in the output).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Store input only: first day to score (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Store input only: day after the last to score (excluded).")] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at a time.")] = 100_000,
    memory_limit: Annotated[str, typer.Option(
        help="DuckDB memory limit (features, reading); it spills to disk beyond.")] = "1GB",
    as_json: JsonOpt = False,
) -> None:
    """Score incidents with a saved model of a run; write ID, probability, label, model id.

    Input rows are validated exactly as by ingest; bad rows are quarantined
    beside the output. The output is written under a temporary name and
    renamed when complete.
    """
    from crimeclass.models import PredictOptions
    from crimeclass.models import predict as run_predict

    if not inputs:
        if store is None:
            raise ValueError("nothing to score: give INPUT files or a store, or --store")
        inputs = [store]
    options = PredictOptions(chunk_rows=chunk_rows, memory_limit=memory_limit, since=since,
                             until=until)
    with _progress(as_json) as progress:
        tasks: dict[str, Any] = {}

        def on_event(kind: str, info: dict[str, Any]) -> None:
            if kind == "stage" and not as_json:
                err_console.print(f"[dim]{info['text']}[/]", highlight=False)
            elif kind == "ingest":
                name = "read " + Path(info["file"]).name
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=info["total"])
                progress.update(tasks[name], completed=info["done"])
            elif kind == "score":
                if "score" not in tasks:
                    tasks["score"] = progress.add_task("score", total=info["total"])
                progress.update(tasks["score"], completed=info["done"])

        result = run_predict(run, inputs, out, model_name=model, history_store=store,
                             options=options, on_event=on_event)
    if as_json:
        print(json.dumps(result.to_dict(), default=str))
        return
    console.print(f"{result.scored:,} incidents scored by {result.model_id} "
                  f"(target {result.target}, threshold {result.threshold:.3f}): "
                  f"{result.positives:,} labeled positive; {result.seconds:.1f} s  ->  "
                  f"{result.out}", highlight=False)
    if result.quarantined:
        console.print(f"[yellow]{result.quarantined:,} rows quarantined[/] "
                      f"({', '.join(f'{k} {v:,}' for k, v in result.quarantine_reasons.items())})"
                      f" -> {result.quarantine_file}", highlight=False)
    if result.history == "input":
        err_console.print(
            "[bold yellow]warning:[/] no history store (--store): history features count the "
            f"input's own earlier rows only; {result.history_incomplete:,} rows have less "
            "history than the model was trained with (history_complete=false).")
    elif result.history_incomplete:
        console.print(f"[dim]{result.history_incomplete:,} rows lie within the lookback of "
                      "the earliest data (history_complete=false)[/]")


if __name__ == "__main__":  # pragma: no cover
    app()


class ThresholdRule(StrEnum):
    """Where each model's decision threshold comes from."""

    run = "run"
    f1 = "f1"
    precision = "precision"


@app.command()
@handles_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run folder written by crimeclass train (runs/<run-id>).")],
    data: Annotated[Path | None, typer.Option(
        help="Score other data: a store, or CSV / Parquet files or a folder that ingest "
             "reads (validated and quarantined as by ingest, into a temporary store). "
             "Default: the run's own held-out period.")] = None,
    since: Annotated[str | None, typer.Option(
        help="First day of the window (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Day after the window (YYYY-MM-DD, excluded).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the evaluation (default: RUN/evaluation, or "
             "RUN/evaluations/<time> with --data).")] = None,
    threshold_rule: Annotated[ThresholdRule, typer.Option(
        help="run: each model's threshold from training (best F1 on validation folds); f1 "
             "or precision: chosen again on validation data, never on the evaluated rows."
    )] = ThresholdRule.run,
    target_precision: Annotated[float | None, typer.Option(
        help="With --threshold-rule precision: the precision to reach.")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 1000,
    explain_rows: Annotated[int, typer.Option(
        help="Rows for permutation importance (seeded subsample; 0: no explanations)."
    )] = 20_000,
    seed: Annotated[int, typer.Option(help="Seeds the bootstrap and the subsamples.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a training run: metrics with intervals, calibration, slices, explanations.

    Writes evaluation.json, evaluation.md, evaluation.html (with the plots) and a model
    card per model into one folder, atomically; evaluating the run's own held-out period
    also writes models/<name>/model_card.md into the run.
    """
    import datetime as dt

    from crimeclass.evaluation import (
        EvaluateConfig,
        check_roc_sanity,
        evaluate_run,
        write_evaluation,
    )

    if out is not None and out.exists() and not (out / "evaluation.json").is_file():
        raise FileExistsError(f"{out} exists and is not an evaluation folder; choose another "
                              "--out")
    config = EvaluateConfig(threshold_rule=threshold_rule.value,
                            target_precision=target_precision, n_boot=n_boot,
                            explain_rows=explain_rows, seed=seed)
    with _progress(as_json) as progress:
        task = progress.add_task("evaluating", total=None)

        def on_event(kind: str, info: dict[str, Any]) -> None:
            if kind == "stage":
                progress.update(task, description=info["text"], total=None, completed=0)
            elif kind == "step":
                progress.update(task, description=info["text"], total=info["total"],
                                completed=info["done"])

        doc = evaluate_run(run_dir, data=data, since=since, until=until, config=config,
                           on_event=on_event)
        progress.update(task, description="writing the evaluation", total=None)
        if out is None:
            out = run_dir / "evaluation" if data is None else (
                run_dir / "evaluations" / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
        folder = write_evaluation(doc, out, cards_into_run=data is None)
    if as_json:
        print(json.dumps({
            "run_id": doc["run_id"], "out": str(folder), "source": doc["source"],
            "window": doc["window"], "best_model": doc["best_model"],
            "threshold_rule": doc["threshold_rule"],
            "calibration_source": doc["calibration_source"],
            "models": [{"name": r["name"], "baseline": r["baseline"],
                        "threshold": r["threshold"], "metrics": r["metrics"],
                        "calibration": {k: r["calibration"][k] for k in
                                        ("method", "brier_before", "brier_after", "helps")},
                        "flagged": r["flagged"]} for r in doc["models"]],
            "paired": doc["paired"], "notes": doc["notes"]}, default=str))
        return
    _print_evaluation(doc)
    for warning in check_roc_sanity(doc):
        err_console.print(f"[bold yellow]warning:[/] {warning}")
    console.print(f"evaluation: {folder}  (evaluation.html, evaluation.md, evaluation.json, "
                  "model_cards/)")


def _print_evaluation(doc: dict[str, Any]) -> None:
    """Two tables that each fit an 80-column terminal: ranking (with intervals), then
    probabilities and the decision."""
    w = doc["window"]
    best = doc["best_model"]

    def style(r: dict[str, Any]) -> str | None:
        return "bold green" if r["name"] == best else ("dim" if r["baseline"] else None)

    def name(r: dict[str, Any]) -> str:
        return r["name"] + (" *" if r["name"] == best else "")

    def iv(d: dict[str, float]) -> str:
        return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    rank = Table(title=f"{doc['source']['kind']}: {w['first'][:10]} to {w['last'][:10]}, "
                       f"{w['reported_rows']:,} incidents, {w['index_share']:.1%} index",
                 caption="95% bootstrap intervals", box=box.SIMPLE_HEAD)
    probs = Table(caption="F1 at each model's validation threshold; Brier cal.: after the "
                          "calibration (method) fit on validation data",
                  box=box.SIMPLE_HEAD)
    for t, cols in ((rank, ("model", "ROC AUC", "PR AUC")),
                    (probs, ("model", "log loss", "Brier", "F1", "Brier cal.", "method",
                             "flagged"))):
        for col in cols:
            t.add_column(col, justify="left" if col in ("model", "method") else "right",
                         no_wrap=True)
    for r in doc["models"]:
        m, c = r["metrics"], r["calibration"]
        rank.add_row(name(r), iv(m["roc_auc"]), iv(m["average_precision"]), style=style(r))
        probs.add_row(name(r), f"{m['log_loss']['value']:.3f}", f"{m['brier']['value']:.4f}",
                      f"{m['f1']['value']:.3f}", f"{c['brier_after']:.4f}", c["method"],
                      str(len(r["flagged"])), style=style(r))
    console.print(rank)
    console.print(probs)
    if doc["paired"]:
        test = doc["paired"]["tests"][0]
        d = test["difference"]
        console.print(f"{doc['paired']['a']} - {doc['paired']['b']} ROC AUC: {d['value']:+.4f} "
                      f"[{d['low']:+.4f}, {d['high']:+.4f}], p = {test['p_value']:.3g} "
                      "(paired bootstrap)")
    for note in doc["notes"]:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
