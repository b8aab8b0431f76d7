"""Figures of the catalog's tables (matplotlib, Agg), one function per statistic.

Every figure has a title, labelled axes with units, and colours a colour-blind
reader can tell apart: the Okabe-Ito palette for categories and ``cividis``
for quantities. Partial periods are drawn in grey with hatching and said to be
partial in the legend, so that a gap in the data never reads as a drop in crime.

Each function takes the statistic's table and returns a figure, or ``None``
when there is nothing to draw.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from crimeclass.explore._catalog import HEX_GRID

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["OKABE_ITO", "PLOTS", "figure_png"]

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with any colour vision.
OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "vermillion": "#D55E00", "purple": "#CC79A7", "yellow": "#F0E442",
             "black": "#000000", "grey": "#999999"}
_PARTIAL: dict[str, Any] = {"facecolor": "#DDDDDD", "edgecolor": "#777777", "hatch": "///",
                            "linewidth": 0.5}
_WIDTH = 9.0


def _figure(height: float = 3.6, width: float = _WIDTH) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#E5E5E5", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _barh_figure(n: int, per_row: float = 0.28) -> tuple[Figure, Any, np.ndarray]:
    """A figure for ``n`` horizontal bars (gridlines along x), and their positions."""
    fig, ax = _figure(height=per_row * n + 1.2)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#E5E5E5", linewidth=0.8)
    return fig, ax, np.arange(n)


def _cols(table: pa.Table, *names: str) -> list[list[Any]]:
    return [table.column(n).to_pylist() for n in names]


def _percent_axis(ax: Any, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(
        PercentFormatter(1.0, decimals=0))


def _thousands(ax: Any, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _short(label: Any, width: int = 32) -> str:
    text = "(not recorded)" if label is None else str(label)
    return text if len(text) <= width else text[: width - 1] + "…"


def _legend(ax: Any, handles: list[Any] | None = None) -> None:
    """A legend below the axes, where it never hides data."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    ax.figure.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)),
                     frameon=False, fontsize=8)


def _partial_legend(ax: Any, complete_label: str, color: str, partial: bool) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=color, label=complete_label)]
    if partial:
        handles.append(Patch(**_PARTIAL, label="partial year: a gap in the data, not a drop"))
    _legend(ax, handles)


def plot_incidents_by_year(t: pa.Table) -> Figure | None:
    if not t.num_rows or not any(t.column("count").to_pylist()):
        return None
    years, counts, complete = _cols(t, "year", "count", "complete")
    fig, ax = _figure()
    for y, n, ok in zip(years, counts, complete, strict=True):
        style = {"color": OKABE_ITO["blue"]} if ok else _PARTIAL
        ax.bar(y, n, width=0.8, **style)
    present = set(years)
    for y in range(min(years), max(years) + 1):
        if y not in present:
            ax.text(y, 0, "no data", rotation=90, ha="center", va="bottom", fontsize=7,
                    color="#555555")
    ax.set_title("Incidents by year")
    ax.set_xlabel("year")
    ax.set_ylabel("incidents")
    _thousands(ax)
    ax.set_xticks(range(min(years), max(years) + 1, max(1, math.ceil(len(present) / 14))))
    _partial_legend(ax, "complete year", OKABE_ITO["blue"], not all(complete))
    return fig


def plot_incidents_by_month(t: pa.Table) -> Figure | None:
    if not t.num_rows or not any(t.column("count").to_pylist()):
        return None
    months, counts, complete = _cols(t, "month", "count", "complete")
    full = np.array([n if ok else np.nan for n, ok in zip(counts, complete, strict=True)],
                    dtype=float)
    fig, ax = _figure()
    # a complete calendar, so that months without data break the line
    idx = {m: i for i, m in enumerate(months)}
    start, end = months[0], months[-1]
    cal, m = [], start
    while m <= end:
        cal.append(m)
        m = m.replace(year=m.year + (m.month == 12), month=m.month % 12 + 1)
    line = [full[idx[c]] if c in idx else np.nan for c in cal]
    ax.plot(cal, line, color=OKABE_ITO["blue"], linewidth=1.2, label="complete month")
    part = [(mm, n) for mm, n, ok in zip(months, counts, complete, strict=True) if not ok]
    if part:
        ax.scatter([p[0] for p in part], [p[1] for p in part], s=14, marker="o",
                   facecolor="white", edgecolor="#555555", linewidth=0.8,
                   label="partial month: a gap in the data, not a drop", zorder=3)
    ax.set_title("Incidents by month")
    ax.set_xlabel("month")
    ax.set_ylabel("incidents per month")
    _thousands(ax)
    ax.set_ylim(bottom=0)
    _legend(ax)
    return fig


def plot_hour_by_weekday(t: pa.Table) -> Figure | None:
    if not t.num_rows or not sum(t.column("count").to_pylist()):
        return None
    days, hours, counts = _cols(t, "weekday", "hour", "count")
    names = dict(zip(days, t.column("day_name").to_pylist(), strict=True))
    grid = np.zeros((7, 24))
    for d, h, n in zip(days, hours, counts, strict=True):
        grid[d - 1, h] = n
    fig, ax = _figure(height=3.4)
    ax.grid(False)
    im = ax.imshow(grid, aspect="auto", cmap="cividis", interpolation="nearest")
    ax.set_yticks(range(7), [names[d] for d in range(1, 8)])
    ax.set_xticks(range(24), [str(h) for h in range(24)])
    ax.set_xlabel("hour of day (Chicago local time, 0 = midnight to 1 am)")
    ax.set_title("Incidents by hour and day of week")
    cb = fig.colorbar(im, ax=ax, pad=0.01)
    cb.set_label("incidents")
    return fig


def _stacked_types(t: pa.Table, top: int = 15) -> Figure | None:
    if not t.num_rows:
        return None
    t = t.slice(0, top)
    types, counts, index = _cols(t, "primary_type", "count", "index_count")
    other = [n - i for n, i in zip(counts, index, strict=True)]
    fig, ax, y = _barh_figure(len(types))
    y = y[::-1]
    ax.barh(y, index, color=OKABE_ITO["vermillion"], label="index offense (FBI Part I)")
    ax.barh(y, other, left=index, color=OKABE_ITO["sky"], label="not index (or unlabeled)")
    ax.set_yticks(y, [_short(s) for s in types], fontsize=8)
    ax.set_xlabel("incidents")
    _thousands(ax, "x")
    ax.set_title(f"Top {len(types)} primary types, split by index offense")
    ax.margins(x=0.02)
    _legend(ax)
    return fig


def plot_top_primary_types(t: pa.Table) -> Figure | None:
    return _stacked_types(t)


def _share_lines(t: pa.Table, series: list[tuple[str, str, str]], title: str,
                 ylabel: str) -> Figure | None:
    if not t.num_rows:
        return None
    years, complete = _cols(t, "year", "complete")
    fig, ax = _figure()
    drawn = False
    for col, label, color in series:
        values = t.column(col).to_pylist()
        full = [v if (ok and v is not None) else np.nan
                for v, ok in zip(values, complete, strict=True)]
        part = [(y, v) for y, v, ok in zip(years, values, complete, strict=True)
                if not ok and v is not None]
        if all(math.isnan(v) for v in full) and not part:
            continue
        drawn = True
        ax.plot(years, full, color=color, marker="o", markersize=3.5, linewidth=1.4,
                label=label)
        if part:
            ax.scatter([p[0] for p in part], [p[1] for p in part], s=22, facecolor="white",
                       edgecolor=color, linewidth=1.0, zorder=3,
                       label=f"{label}, partial year")
    if not drawn:
        return None
    ax.set_title(title)
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, None)
    _percent_axis(ax)
    _legend(ax)
    return fig


def plot_index_share_by_year(t: pa.Table) -> Figure | None:
    return _share_lines(t, [("share", "index share", OKABE_ITO["vermillion"])],
                        "Share of incidents that are index offenses, by year",
                        "index offenses (% of labeled incidents)")


def plot_arrest_rate_by_year(t: pa.Table) -> Figure | None:
    return _share_lines(t, [("arrest_rate", "arrest rate", OKABE_ITO["blue"]),
                            ("domestic_share", "domestic share", OKABE_ITO["orange"])],
                        "Arrest rate and domestic share by year", "% of incidents")


def _rates_barh(t: pa.Table, key: str, title: str, top: int = 15) -> Figure | None:
    rows = [r for r in t.to_pylist() if r["arrest_rate"] is not None][:top]
    if not rows:
        return None
    rows.sort(key=lambda r: r["arrest_rate"])
    fig, ax, y = _barh_figure(len(rows), 0.3)
    h = 0.4
    ax.barh(y + h / 2, [r["arrest_rate"] for r in rows], height=h, color=OKABE_ITO["blue"],
            label="arrest rate")
    ax.barh(y - h / 2, [r["domestic_share"] or 0 for r in rows], height=h,
            color=OKABE_ITO["orange"], label="domestic share")
    ax.set_yticks(y, [_short(r[key]) for r in rows], fontsize=8)
    ax.set_xlabel("% of incidents")
    _percent_axis(ax, "x")
    ax.set_title(title)
    _legend(ax)
    return fig


def plot_arrest_rate_by_type(t: pa.Table) -> Figure | None:
    return _rates_barh(t, "primary_type",
                       "Arrest rate and domestic share, 15 most common primary types")


def plot_arrest_rate_by_district(t: pa.Table) -> Figure | None:
    rows = [r for r in t.to_pylist() if r["district"] is not None and r["arrest_rate"]
            is not None]
    if not rows:
        return None
    x = np.arange(len(rows))
    fig, ax = _figure()
    w = 0.4
    ax.bar(x - w / 2, [r["arrest_rate"] for r in rows], width=w, color=OKABE_ITO["blue"],
           label="arrest rate")
    ax.bar(x + w / 2, [r["domestic_share"] or 0 for r in rows], width=w,
           color=OKABE_ITO["orange"], label="domestic share")
    ax.set_xticks(x, [str(r["district"]) for r in rows], fontsize=8)
    ax.set_xlabel("police district")
    ax.set_ylabel("% of incidents")
    _percent_axis(ax)
    ax.set_title("Arrest rate and domestic share by police district")
    _legend(ax)
    return fig


def plot_top_location_descriptions(t: pa.Table, top: int = 15) -> Figure | None:
    if not t.num_rows:
        return None
    rows = t.slice(0, top).to_pylist()[::-1]
    fig, ax, y = _barh_figure(len(rows))
    ax.barh(y, [r["count"] for r in rows], color=OKABE_ITO["green"])
    ax.set_yticks(y, [_short(r["location_description"], 40) for r in rows], fontsize=8)
    ax.set_xlabel("incidents")
    _thousands(ax, "x")
    ax.set_title(f"Top {len(rows)} location descriptions")
    return fig


def plot_incidents_by_district(t: pa.Table) -> Figure | None:
    rows = [r for r in t.to_pylist() if r["district"] is not None]
    if not rows:
        return None
    fig, ax = _figure()
    x = np.arange(len(rows))
    ax.bar(x, [r["count"] for r in rows], color=OKABE_ITO["blue"])
    ax.set_xticks(x, [str(r["district"]) for r in rows], fontsize=8)
    ax.set_xlabel("police district")
    ax.set_ylabel("incidents")
    _thousands(ax)
    missing = sum(r["count"] for r in t.to_pylist() if r["district"] is None)
    title = "Incidents by police district"
    if missing:
        title += f" ({missing:,} incidents without a district not shown)"
    ax.set_title(title)
    return fig


def plot_incidents_by_community_area(t: pa.Table, top: int = 20) -> Figure | None:
    rows = [r for r in t.to_pylist() if r["community_area"] is not None][:top]
    if not rows:
        return None
    rows = rows[::-1]
    fig, ax, y = _barh_figure(len(rows), 0.26)
    ax.barh(y, [r["count"] for r in rows], color=OKABE_ITO["blue"])
    ax.set_yticks(y, [f"{r['name'] or '?'} ({r['community_area']})" for r in rows],
                  fontsize=8)
    ax.set_xlabel("incidents")
    _thousands(ax, "x")
    ax.set_title(f"Top {len(rows)} community areas by incidents")
    return fig


def plot_spatial_density(t: pa.Table) -> Figure | None:
    if not t.num_rows:
        return None
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm

    lon, lat, counts = (np.asarray(c, dtype=float) for c in
                        _cols(t, "longitude", "latitude", "count"))
    kx, ky = HEX_GRID["km_per_lon"], HEX_GRID["km_per_lat"]
    r = HEX_GRID["size_km"] / math.sqrt(3.0)  # centre to corner, km
    angles = np.radians(90 + 60 * np.arange(6))
    dx, dy = r * np.cos(angles) / kx, r * np.sin(angles) / ky
    polys = np.stack([np.column_stack([x + dx, y + dy]) for x, y in zip(lon, lat, strict=True)])
    fig, ax = _figure(height=7.0, width=6.6)
    ax.grid(False)
    coll = PolyCollection(list(polys), array=counts, cmap="cividis", edgecolors="none",
                          norm=LogNorm(vmin=1, vmax=max(2.0, counts.max())))
    ax.add_collection(coll)
    pad = 0.01
    ax.set_xlim(lon.min() - pad, lon.max() + pad)
    ax.set_ylim(lat.min() - pad, lat.max() + pad)
    ax.set_aspect(ky / kx)  # a km is as long north-south as east-west
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(f"Incidents per hexagon of {HEX_GRID['size_km']:g} km (log scale)")
    cb = fig.colorbar(coll, ax=ax, shrink=0.7, pad=0.01)
    cb.set_label("incidents per hexagon")
    return fig


def plot_missing_by_column(t: pa.Table) -> Figure | None:
    rows = [r for r in t.to_pylist() if r["share"]]
    if not rows:
        return None
    rows.sort(key=lambda r: r["share"])
    fig, ax, y = _barh_figure(len(rows), 0.26)
    ax.barh(y, [r["share"] for r in rows], color=OKABE_ITO["purple"])
    ax.set_yticks(y, [r["column_name"] for r in rows], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("incidents without a value (%)")
    _percent_axis(ax, "x")
    ax.set_title("Missing values per column (columns with none missing not shown)")
    return fig


def plot_missing_by_year(t: pa.Table) -> Figure | None:
    if not t.num_rows:
        return None
    years = sorted(set(t.column("year").to_pylist()))
    cols = list(dict.fromkeys(t.column("column_name").to_pylist()))
    grid = np.full((len(cols), len(years)), np.nan)
    yi, ci = {y: i for i, y in enumerate(years)}, {c: i for i, c in enumerate(cols)}
    for y, c, s in zip(*_cols(t, "year", "column_name", "share"), strict=True):
        grid[ci[c], yi[y]] = s
    fig, ax = _figure(height=0.2 * len(cols) + 1.6)
    ax.grid(False)
    im = ax.imshow(grid, aspect="auto", cmap="cividis_r", vmin=0, vmax=1,
                   interpolation="nearest")
    ax.set_yticks(range(len(cols)), cols, fontsize=7)
    step = max(1, math.ceil(len(years) / 20))
    ax.set_xticks(range(0, len(years), step), [str(y) for y in years[::step]], fontsize=7,
                  rotation=90)
    ax.set_xlabel("year")
    ax.set_title("Missing values by column and year (dark: not published)")
    cb = fig.colorbar(im, ax=ax, pad=0.01)
    cb.set_label("incidents without a value")
    from matplotlib.ticker import PercentFormatter

    cb.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig


#: Statistic name -> function drawing its table.
PLOTS: dict[str, Callable[[pa.Table], Figure | None]] = {
    "incidents_by_year": plot_incidents_by_year,
    "incidents_by_month": plot_incidents_by_month,
    "hour_by_weekday": plot_hour_by_weekday,
    "top_primary_types": plot_top_primary_types,
    "index_share_by_year": plot_index_share_by_year,
    "arrest_rate_by_year": plot_arrest_rate_by_year,
    "arrest_rate_by_type": plot_arrest_rate_by_type,
    "arrest_rate_by_district": plot_arrest_rate_by_district,
    "top_location_descriptions": plot_top_location_descriptions,
    "incidents_by_district": plot_incidents_by_district,
    "incidents_by_community_area": plot_incidents_by_community_area,
    "spatial_density": plot_spatial_density,
    "missing_by_column": plot_missing_by_column,
    "missing_by_year": plot_missing_by_year,
}


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
