"""The report: ``report.html`` (one self-contained file) and every table as CSV and Parquet.

Rendering only reads an :class:`Exploration`; it computes nothing new. Plots
are PNG (matplotlib Agg) embedded as base64, so the page needs no other file.
"""

from __future__ import annotations

import base64
import functools
import json
import struct
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from crimeclass import __version__
from crimeclass.explore._catalog import CATALOG, Statistic
from crimeclass.explore._compute import Exploration
from crimeclass.explore._lookups import LOOKUP_SOURCES
from crimeclass.explore._painter import Painter
from crimeclass.explore._relations import COMPLETE_RULE
from crimeclass.explore._summary import Finding, summarize

__all__ = ["render_html", "write_report", "write_tables"]

_PERCENT = {"share", "arrest_rate", "domestic_share", "index_share"}
_SIGNED = {"change"}
_PLAIN_INT = {"year", "first_year", "last_year", "district", "community_area", "hour",
              "weekday", "month_of_year", "hex_col", "hex_row", "days_in_year", "days_covered",
              "months_covered", "offense_types"}
_LABELS = {"count": "incidents", "share": "share", "change": "change", "complete": "complete",
           "arrest_rate": "arrest rate", "domestic_share": "domestic", "index_share":
           "index share", "index_count": "index offenses", "column_name": "column",
           "day_name": "day", "month_of_year": "month no.", "with_district": "with district"}
_MAX_ROWS = {"incidents_by_month": 24, "hour_by_weekday": 24, "spatial_density": 15,
             "missing_by_year": 23, "incidents_by_community_area": 30}
_DEFAULT_ROWS = 40


def _cell(name: str, value: Any, keys: tuple[str, ...]) -> tuple[str, str]:
    if value is None:
        return ("(not recorded)" if name in keys else "—"), ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if name in _PERCENT or name in _SIGNED:
        text = f"{value:+.1%}" if name in _SIGNED else f"{value:.1%}"
        return ("0.0%" if text in ("+0.0%", "-0.0%") else text), "num"
    if isinstance(value, int):
        return (str(value) if name in _PLAIN_INT else f"{value:,}"), "num"
    if isinstance(value, float):
        return f"{value:.5f}", "num"
    if isinstance(value, datetime):
        return value.isoformat(sep=" "), ""
    if isinstance(value, date):
        return (value.strftime("%Y-%m") if name == "month" else value.isoformat()), ""
    if name == "source":
        return Path(str(value)).name, ""
    return str(value), ""


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _section(stat: Statistic, table: pa.Table, png: bytes | None) -> dict[str, Any]:
    limit = _MAX_ROWS.get(stat.name, _DEFAULT_ROWS)
    rows = table.slice(0, limit).to_pylist()
    names = table.schema.names
    numeric = {n for n in names if pa.types.is_integer(table.schema.field(n).type)
               or pa.types.is_floating(table.schema.field(n).type)}
    columns = [{"label": _LABELS.get(n, n.replace("_", " ")),
                "cls": "num" if n in numeric else ""} for n in names]
    body = []
    for r in rows:
        cells = [_cell(n, r[n], stat.keys) for n in names]
        body.append({"cells": cells, "partial": r.get("complete") is False})
    section: dict[str, Any] = {
        "name": stat.name, "title": stat.title, "description": stat.description,
        "columns": columns, "rows": body, "shown": len(rows), "total": table.num_rows,
        "image": None,
    }
    if png:
        section["image"] = base64.b64encode(png).decode("ascii")
        w, h = _png_size(png)
        section.update(width=w, height=h, alt=f"{stat.title}: chart of tables/{stat.name}.csv")
    return section


def _window(ex: Exploration) -> str:
    if ex.first is None or ex.last is None:
        f = ex.filters
        return f"{f.since or 'start'} to {f.until or 'end'} (no matching incidents)"
    return f"{ex.first:%Y-%m-%d} to {ex.last:%Y-%m-%d}"


def render_html(ex: Exploration, images: dict[str, bytes], findings: list[Finding]) -> str:
    """The report page as one HTML string."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("crimeclass.explore", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    stats = [s for s in CATALOG if s.name in ex.tables]
    sections = [_section(s, ex.tables[s.name], images.get(s.name)) for s in stats]
    sources = [{"name": Path(str(s["source"])).name, "loaded": f"{s['loaded']:,}"}
               for s in ex.sources]
    return env.get_template("report.html.j2").render(
        title="Chicago crime: exploration report",
        window=_window(ex), rows=f"{ex.rows:,}", filters=ex.filters.describe(),
        engine=ex.engine_detail, generated=datetime.now().strftime("%Y-%m-%d %H:%M"),
        version=__version__, findings=findings, empty=ex.empty, sections=sections,
        complete_rule="Complete and partial periods: " + COMPLETE_RULE + ".",
        sources=sources, lookups="; ".join(LOOKUP_SOURCES.values()))


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_csv(table: pa.Table, path: Path) -> None:
    pcsv.write_csv(table, path)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)


def _write_bytes(data: bytes, path: Path) -> None:
    path.write_bytes(data)


def write_tables(ex: Exploration, folder: Path) -> list[Path]:
    """Every table as ``folder/<statistic>.csv`` and ``.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in ex.tables.items():
        csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
        _replace(csv, functools.partial(_write_csv, table))
        _replace(parquet, functools.partial(_write_parquet, table))
        paths += [csv, parquet]
    return paths


def write_report(ex: Exploration, out: str | Path, *, plots: bool = True,
                 images: dict[str, bytes] | None = None,
                 on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Write ``out/report.html``, ``out/tables/*.csv|parquet``, ``out/plots/*.png`` and
    ``out/summary.json``.

    Parameters
    ----------
    ex : Exploration
        What :func:`compute` returned.
    out : str or pathlib.Path
        The folder (created if missing); files in it are replaced one by one,
        each through a temporary file.
    plots : bool, default=True
        Draw the figures (matplotlib); without, the report has tables only.
    images : dict of str to bytes, optional
        Figures already drawn (PNG by statistic, see :class:`Painter`); when not
        given and ``plots``, they are drawn here.
    on_progress : callable, optional
        ``on_progress(name, done, total)`` while drawing.

    Returns
    -------
    dict
        Paths written and the findings.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = write_tables(ex, out / "tables")
    if not plots or ex.empty:
        images = {}
    elif images is None:
        painter = Painter()
        for name, table in ex.tables.items():
            painter.submit(name, table)
        images = painter.results(on_progress)
    if images:
        (out / "plots").mkdir(exist_ok=True)
    for name, png in images.items():
        _replace(out / "plots" / f"{name}.png", functools.partial(_write_bytes, png))
    findings = summarize(ex)
    html = render_html(ex, images, findings)
    report = out / "report.html"
    _replace(report, lambda p: p.write_text(html, encoding="utf-8"))
    summary = {
        "report": str(report), "rows": ex.rows, "rows_window": ex.rows_window,
        "first": ex.first.isoformat() if ex.first else None,
        "last": ex.last.isoformat() if ex.last else None,
        "filters": ex.filters.to_dict(), "engine": ex.engine,
        "engine_detail": ex.engine_detail, "findings": [f.text for f in findings],
        "tables": sorted(str(p) for p in tables), "plots": sorted(images),
        "seconds": ex.seconds,
    }
    _replace(out / "summary.json",
             lambda p: p.write_text(json.dumps(summary, indent=2), encoding="utf-8"))
    return summary
