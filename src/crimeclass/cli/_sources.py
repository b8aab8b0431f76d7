"""The live sources: ``ingest portal``, ``sync`` and ``ingest bigquery``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crimeclass.cli._common import JsonOpt, StoreOpt, check_memory_limit, handles_errors, print_json
from crimeclass.cli._common import store_path as _store_path
from crimeclass.cli._render import (
    console,
    portal_notes,
    portal_table,
    print_accounts,
    progress,
)

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
MemoryOpt = Annotated[str, typer.Option(callback=check_memory_limit,
                                        help="DuckDB memory limit while loading.")]
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
    with Store(path) as st, progress(as_json) as bars:
        task = bars.add_task(f"{dataset} from {url}", total=None)

        def on_progress(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        if row_filter is None:
            run = sync_portal(st, portal, options=options, restart=restart,
                              on_progress=on_progress)
        else:
            run = ingest_portal(st, portal, row_filter, options=options, restart=restart,
                                on_progress=on_progress)
    summary = run.summary()
    summary["store"] = str(path)
    if as_json:
        print_json(summary)
        return
    console.print(portal_table(run.resource, summary))
    console.print("[dim]" + portal_notes(run, summary) + "[/]", highlight=False)
    console.print(f"store: {path}")


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
    streams: Annotated[int | None, typer.Option(
        min=1, show_default="half the cores, at least 1",
        help="Streams to read in parallel.")] = None,
    endpoint: Annotated[str | None, typer.Option(
        help="host:port of another BigQuery Storage endpoint.", show_default=False)] = None,
    plaintext: Annotated[bool, typer.Option(
        help="Talk to --endpoint without TLS or credentials (a local emulator).")] = False,
    restart: Annotated[bool, typer.Option(
        "--restart", help="Drop an interrupted run and the cursor of the last: read every "
                          "row of the filters again.")] = False,
    store: StoreOpt = None,
    memory_limit: MemoryOpt = "1GB",
    as_json: JsonOpt = False,
) -> None:
    """Load crime records from BigQuery through the Storage Read API (crimeclass\\[bigquery]).

    The canonical columns and the filters (years, updated since) are pushed down
    to BigQuery; its streams are read in parallel as Arrow, validated and stored
    500,000 rows per transaction. Run again with the same filters, it reads only
    the rows updated since the last run, or resumes an interrupted one where it
    stopped. Credentials come from Google's default credentials (gcloud auth
    application-default login, or $GOOGLE_APPLICATION_CREDENTIALS).
    """
    from crimeclass.data import IngestOptions, Store
    from crimeclass.data.sources import ingest_bigquery

    row_filter = _row_filter(from_year, to_year, updated_since)
    path = _store_path(store)
    with Store(path) as st, progress(as_json) as bars:
        task = bars.add_task(table, total=None)
        run = ingest_bigquery(st, row_filter, options=IngestOptions(memory_limit=memory_limit),
                              restart=restart, project=project, table=table,
                              endpoint=endpoint, plaintext=plaintext,
                              **({} if streams is None else {"streams": streams}),
                              on_progress=lambda done, tot: bars.update(
                                  task, completed=done, total=tot or None))
    summary = run.summary()
    summary["store"] = str(path)
    if as_json:
        print_json(summary)
    else:
        print_accounts(run.accounts)
        console.print(f"streams: {run.streams}"
                      + (" (an interrupted run resumed)" if run.resumed else "")
                      + (f"; next run asks for updated_on > {summary['cursor']}"
                         if summary["cursor"] else ""))
        console.print(f"store: {path}")
