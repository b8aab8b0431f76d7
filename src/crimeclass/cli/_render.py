"""What the command line shows: Rich tables, notes and progress bars.

Every table is built here once, from the plain dicts and dataclasses that the
library returns; the commands print them, and the notebook API
(:mod:`crimeclass._api`) shows the same tables as HTML.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
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

console = Console()
err_console = Console(stderr=True)

COUNTS = ("read", "inserted", "updated", "unchanged", "quarantined")


# ------------------------------------------------------------------ progress


class NoProgress:
    """Stands in for a Rich progress (or status) where none is shown."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        pass


def progress(quiet: bool, *, bytes_: bool = False) -> Any:
    """Progress bars on stderr, or nothing with ``--json`` or when stderr is no terminal."""
    if quiet or not sys.stderr.isatty():
        return NoProgress()
    counter = DownloadColumn() if bytes_ else MofNCompleteColumn()
    return Progress(TextColumn("{task.description}"), BarColumn(), counter,
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                    transient=False)


def status(quiet: bool, text: str) -> Any:
    """A spinner on stderr while one long step runs (nothing with ``--json``)."""
    return NoProgress() if quiet else err_console.status(text, spinner="dots")


# -------------------------------------------------------------- ingest, info


def account_table() -> Table:
    """The table of ingest accounts: the source and its counts (the rest goes below it).

    The counts never wrap; the source's name folds, and keeps a readable width on an
    80-column terminal.
    """
    t = Table(title="Ingest account: read = inserted + updated + unchanged + quarantined",
              box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("source", overflow="fold", min_width=20)
    for col in COUNTS:
        t.add_column(col, justify="right", no_wrap=True)
    return t


def accounts_table(accounts: list[Any]) -> Table:
    """One row per ingest account (:class:`~crimeclass.data.IngestAccount`)."""
    t = account_table()
    for a in accounts:
        if getattr(a, "status", "committed") != "committed":
            t.add_row(f"{Path(a.source).name} ({a.status})", *["-"] * len(COUNTS))
            continue
        t.add_row(Path(a.source).name, *(f"{getattr(a, k):,}" for k in COUNTS))
    return t


def account_note(a: Any) -> str:
    """The line below the table for one account: speed, reasons, label routes, flags."""
    notes = [f"{a.variant}, {a.seconds:,.1f} s ({a.rows_per_second:,.0f} rows/s)"]
    if a.quarantine_reasons:
        notes.append("quarantined: " + counts(a.quarantine_reasons))
    routes = counts(a.label_routes)
    notes.append(f"labels by {routes}" if routes else "")
    if a.flags:
        notes.append("flagged: " + counts(a.flags))
    if a.stale or a.matched_by_derived_key:
        notes.append(f"unchanged includes {a.stale:,} older than stored and "
                     f"{a.matched_by_derived_key:,} matched without ID")
    return f"{Path(a.source).name}: " + "; ".join(n for n in notes if n)


def counts(d: dict[str, int]) -> str:
    """``{"a": 1000, "b": 2}`` as ``a 1,000, b 2``."""
    return ", ".join(f"{k} {v:,}" for k, v in d.items())


def print_accounts(accounts: list[Any]) -> None:
    console.print(accounts_table(accounts))
    for a in (a for a in accounts if getattr(a, "status", "committed") == "committed"):
        console.print(f"[dim]{account_note(a)}[/]", highlight=False)
        for w in a.warnings:
            err_console.print(f"[yellow]warning:[/] {Path(a.source).name}: {w}",
                              highlight=False)
    print_statuses(accounts)


def print_statuses(accounts: list[Any]) -> None:
    """Which files were not stored, and why (nothing when every file was)."""
    if all(getattr(a, "status", "committed") == "committed" for a in accounts):
        return
    for a in accounts:
        if a.status in ("failed", "interrupted"):
            err_console.print(f"[bold red]{a.status}:[/] {escape(str(a.error))}",
                              highlight=False, soft_wrap=True)
    counted = {s: sum(a.status == s for a in accounts)
               for s in ("committed", "failed", "interrupted", "not reached")}
    err_console.print(", ".join(f"{n} {s}" for s, n in counted.items() if n)
                      + " (each file in its own transaction: a file not committed stored "
                      "nothing)", highlight=False)


def portal_table(resource: str, summary: dict[str, Any]) -> Table:
    t = account_table()
    t.add_row(resource, *(f"{summary[k]:,}" for k in COUNTS))
    return t


def portal_notes(run: Any, summary: dict[str, Any]) -> str:
    """The line below a portal run's table: pages, speed, filter, resume point, cursor."""
    notes = [f"{summary['pages']:,} page(s), {summary['rows_per_second']:,.0f} rows/s",
             f"where {run.where}" if run.where else "nothing new"]
    if run.resumed_at is not None:
        notes.append(f"resumed after {run.resumed_at:,} rows")
    if summary["quarantine_reasons"]:
        notes.append("quarantined: " + counts(summary["quarantine_reasons"]))
    if run.retries:
        notes.append(f"{run.retries} request(s) retried")
    if run.cursor:
        notes.append(f"next sync asks for updated_on > {run.cursor.isoformat()}")
    return "; ".join(notes)


def info_tables(data: dict[str, Any]) -> tuple[Table, Table]:
    """What a store holds (``Store.info()``), and its incidents by year."""
    t = Table(title=f"crimeclass store {data['store']}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("incidents", f"{data['rows']:,}")
    t.add_row("from", str(data["min_date"]))
    t.add_row("to", str(data["max_date"]))
    share = data["index_share"]
    t.add_row("index offenses", "-" if share is None else f"{share:.1%} of labeled")
    t.add_row("labeled by", counts(data["label_routes"]))
    t.add_row("keys derived (no ID)", f"{data['derived_keys']:,}")
    t.add_row("quarantined rows", f"{data['quarantined']:,}")
    for reason, n in data["quarantine_reasons"].items():
        t.add_row(f"  {reason}", f"{n:,}")
    t.add_row("sources / ingests", f"{data['sources']} / {data['ingests']}")
    years = Table(title="incidents by year")
    years.add_column("year")
    years.add_column("incidents", justify="right")
    for y, n in data["years"].items():
        years.add_row(str(y), f"{n:,}")
    return t, years


def quarantine_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="quarantined rows")
    for col in ("source", "line", "field", "reason", "row"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(Path(r["source"]).name, str(r["line"]), r["field"] or "", r["reason"],
                  (r["raw"] or "")[:160])
    return t


# ------------------------------------------------------------ train, evaluate


def _f3(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def comparison_table(metrics: dict[str, Any]) -> Table:
    """The models of a training run on its held-out period (``metrics.json``)."""
    from crimeclass.models import period_text
    hold = metrics["holdout"]
    baselines = [m["name"] for m in metrics["models"] if m["baseline"]]
    target = metrics.get("target", "index")
    share = hold.get("positive_share", hold.get("index_share"))
    t = Table(title=f"target {target}; held out {period_text(hold['since'], hold['until'])}: "
                    f"{hold['rows']:,} incidents, {share:.1%} "
                    + ("arrests" if target == "arrest" else "index"),
              caption=(f"baselines: {', '.join(baselines)}; " if baselines else "")
              + "AUC: ROC AUC, AP: average precision; F1 at the threshold chosen on "
                "validation folds; CV: mean±sd of the folds; s: seconds to search and fit",
              box=box.SIMPLE_HEAD)
    for col in ("model", "AUC", "AP", "log loss", "Brier", "F1", "CV", "s"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for m in metrics["models"]:
        h = m["metrics"]
        t.add_row(m["name"] + (" *" if m.get("best") else ""), _f3(h["roc_auc"]),
                  _f3(h["average_precision"]), _f3(h["log_loss"]), _f3(h["brier"]),
                  _f3(h["f1"]), f"{m['cv']['mean']:.3f}±{m['cv']['std']:.3f}",
                  f"{m['seconds']['search'] + m['seconds']['refit']:.0f}",
                  style="bold green" if m.get("best") else ("dim" if m["baseline"] else None))
    return t


def model_done_line(info: dict[str, Any]) -> str:
    """A model of a training run has finished (its ``model_done`` event), in one line."""
    return (f"{info['name']}: done in {info['seconds']:,.1f} s, held-out roc_auc "
            f"{_f3(info['metrics'].get('roc_auc'))}")


def print_comparison(metrics: dict[str, Any]) -> None:
    console.print(comparison_table(metrics))
    console.print(f"* best by held-out {metrics['primary_metric']}: {metrics['best_model']}")
    if metrics.get("allow_arrest"):
        console.print(f"[bold yellow]warning:[/] {metrics['arrest_warning']}")


def _interval(d: dict[str, float]) -> str:
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def evaluation_tables(doc: dict[str, Any]) -> tuple[Table, Table]:
    """Two tables that each fit an 80-column terminal: ranking (with intervals), then
    probabilities and the decision."""
    from crimeclass.models import period_text

    w = doc["window"]
    best = doc["best_model"]

    def style(r: dict[str, Any]) -> str | None:
        return "bold green" if r["name"] == best else ("dim" if r["baseline"] else None)

    def name(r: dict[str, Any]) -> str:
        return r["name"] + (" *" if r["name"] == best else "")

    rank = Table(title=f"{doc['source']['kind']}: "
                       f"{period_text(w['since'], w.get('until_excluded'), w['last'])}, "
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
        rank.add_row(name(r), _interval(m["roc_auc"]), _interval(m["average_precision"]),
                     style=style(r))
        probs.add_row(name(r), f"{m['log_loss']['value']:.3f}", f"{m['brier']['value']:.4f}",
                      f"{m['f1']['value']:.3f}", f"{c['brier_after']:.4f}", c["method"],
                      str(len(r["flagged"])), style=style(r))
    return rank, probs


def paired_line(doc: dict[str, Any]) -> str | None:
    """The paired bootstrap test of the two best models, if the evaluation has one."""
    if not doc["paired"]:
        return None
    test = doc["paired"]["tests"][0]
    d = test["difference"]
    return (f"{doc['paired']['a']} - {doc['paired']['b']} ROC AUC: {d['value']:+.4f} "
            f"[{d['low']:+.4f}, {d['high']:+.4f}], p = {test['p_value']:.3g} "
            "(paired bootstrap)")


def print_evaluation(doc: dict[str, Any]) -> None:
    for table in evaluation_tables(doc):
        console.print(table)
    line = paired_line(doc)
    if line:
        console.print(line)
    for note in doc["notes"]:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)


def prediction_lines(result: Any) -> list[str]:
    """What a batch prediction (:class:`~crimeclass.models.PredictResult`) wrote."""
    lines = [f"{result.scored:,} incidents scored by {result.model_id} "
             f"(target {result.target}, threshold {result.threshold:.3f}): "
             f"{result.positives:,} labeled positive; {result.seconds:.1f} s  ->  "
             f"{result.out}"]
    if result.quarantined:
        lines.append(f"[yellow]{result.quarantined:,} rows quarantined[/] "
                     f"({counts(result.quarantine_reasons)}) -> {result.quarantine_file}")
    return lines


# ------------------------------------------------------------------ notebooks


def _recorder(width: int) -> Console:
    return Console(record=True, file=io.StringIO(), width=width, color_system="truecolor",
                   force_terminal=False, force_jupyter=False)


def as_text(*parts: RenderableType, width: int = 100) -> str:
    """Renderables as plain text (for ``__repr__``)."""
    rec = _recorder(width)
    for part in parts:
        rec.print(part)
    return rec.export_text().rstrip("\n")


def as_html(*parts: RenderableType, width: int = 100) -> str:
    """Renderables as an HTML fragment (for a notebook's ``_repr_html_``)."""
    rec = _recorder(width)
    for part in parts:
        rec.print(part)
    return rec.export_html(inline_styles=True, code_format=(
        '<pre style="font-family: Menlo, \'DejaVu Sans Mono\', consolas, monospace; '
        'line-height: 1.2">{code}</pre>'))
