"""The written summary of a report: sentences computed from the catalog's tables.

Nothing here is hard-coded about Chicago: every number, year, type and place
comes from the tables of an :class:`Exploration`, so the summary follows the
filters and the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimeclass.explore._compute import Exploration

__all__ = ["Finding", "summarize", "year_ranges"]

#: A column counts as not published in a year when at least this share is missing.
NOT_PUBLISHED = 0.5


@dataclass(frozen=True)
class Finding:
    """One sentence of the summary, with its topic (``window``, ``trend``, ...)."""

    topic: str
    text: str


def year_ranges(years: Iterable[int]) -> str:
    """``[2001, 2002, 2003, 2005]`` -> ``'2001–2003, 2005'``.

    >>> year_ranges([2001, 2002, 2003, 2005])
    '2001–2003, 2005'
    """
    ys = sorted(set(years))
    parts: list[str] = []
    start = prev = None
    for y in [*ys, None]:
        if start is None:
            start = prev = y
        elif y is not None and prev is not None and y == prev + 1:
            prev = y
        else:
            parts.append(str(start) if start == prev else f"{start}–{prev}")
            start = prev = y
    return ", ".join(parts)


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def _rows(ex: Exploration, name: str) -> list[dict[str, Any]]:
    table = ex.tables.get(name)
    return table.to_pylist() if table is not None else []


def _day(d: Any) -> str:
    return f"{d:%d %B %Y}".lstrip("0") if d is not None else "?"


def summarize(ex: Exploration) -> list[Finding]:
    """The main findings of ``ex``, as sentences, most general first."""
    out: list[Finding] = []
    _window(ex, out)
    if ex.empty:
        return out
    for add in (_sample, _trend, _index, _types, _arrests, _time, _places, _missing,
                _quarantine):
        add(ex, out)
    return out


def _complete_years(ex: Exploration) -> list[int]:
    return [r["year"] for r in _rows(ex, "coverage_by_year") if r["complete"]]


def _window(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the incidents, their window and which years are complete."""
    coverage = _rows(ex, "coverage_by_year")
    complete = [r["year"] for r in coverage if r["complete"]]
    partial = [r for r in coverage if not r["complete"]]
    filt = ex.filters.describe()
    if ex.empty:
        out.append(Finding("window", (
            f"No incidents match the filters ({filt}). The date window holds "
            f"{ex.rows_window:,} incidents" + (
                f" in {year_ranges(r['year'] for r in coverage)}" if coverage else "")
            + "; widen the filters to see statistics.")))
        return
    text = (f"{ex.rows:,} incidents from {_day(ex.first)} to {_day(ex.last)} "
            f"(filters: {filt}).")
    if complete:
        text += f" Complete years: {year_ranges(complete)}."
    if partial:
        text += (f" Partial years: {year_ranges(r['year'] for r in partial)}; they are "
                 "gaps in the data, not drops in crime, and are left out of comparisons.")
    out.append(Finding("window", text))


def _sample(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on a warning when the store holds the bundled sample."""
    if any(_is_bundled_sample(s["source"]) for s in ex.sources):
        out.append(Finding("sample", (
            "This store holds the sample bundled with crimeclass, drawn with a fixed number "
            "of rows per year: counts by year show how it was drawn, not how crime changed. "
            "Shares, rates and patterns within a year are meaningful.")))


def _trend(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the change over the complete years."""
    complete = _complete_years(ex)
    by_year = {r["year"]: r for r in _rows(ex, "incidents_by_year")}
    full = [by_year[y] for y in complete if y in by_year]
    if len(full) >= 2:
        first, last = full[0], full[-1]
        busiest = max(full, key=lambda r: (r["count"], -r["year"]))
        quietest = min(full, key=lambda r: (r["count"], r["year"]))
        change = ((last["count"] - first["count"]) / first["count"]) if first["count"] else None
        out.append(Finding("trend", (
            f"Over the complete years, incidents went from {first['count']:,} in "
            f"{first['year']} to {last['count']:,} in {last['year']} ({_pct(change, True)}); "
            f"the busiest year was {busiest['year']} ({busiest['count']:,}) and the quietest "
            f"{quietest['year']} ({quietest['count']:,}).")))


def _index(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the share of index offenses."""
    shares = {r["year"]: r for r in _rows(ex, "index_share_by_year")
              if r["complete"] and r["share"] is not None}
    types = _rows(ex, "top_primary_types")
    labeled = sum(r["index_count"] for r in types)
    total_labeled = sum(r["labeled"] for r in _rows(ex, "index_share_by_year"))
    if shares and total_labeled:
        ys = sorted(shares)
        text = (f"Index offenses (FBI Part I) are {_pct(labeled / total_labeled)} of labeled "
                "incidents")
        if len(ys) >= 2:
            text += (f"; {_pct(shares[ys[0]]['share'])} in {ys[0]} and "
                     f"{_pct(shares[ys[-1]]['share'])} in {ys[-1]}")
        out.append(Finding("index", text + "."))


def _types(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the most common primary types."""
    types = _rows(ex, "top_primary_types")
    if types:
        top = ", ".join(f"{r['primary_type']} ({_pct(r['share'])})" for r in types[:3])
        out.append(Finding("types", f"The most common primary types are {top}."))


def _arrests(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the arrest rate, by year and district."""
    arrests = _rows(ex, "arrest_rate_by_year")
    n = sum(r["count"] for r in arrests)
    if n:
        share = sum(r["arrests"] for r in arrests) / n
        text = f"Arrests are recorded for {_pct(share)} of incidents"
        rates = [r for r in arrests if r["complete"] and r["arrest_rate"] is not None]
        if len(rates) >= 2:
            text += (f" ({_pct(rates[0]['arrest_rate'])} in {rates[0]['year']}, "
                     f"{_pct(rates[-1]['arrest_rate'])} in {rates[-1]['year']})")
        districts = [r for r in _rows(ex, "arrest_rate_by_district")
                     if r["district"] is not None and r["arrest_rate"] is not None]
        recorded = sum(r["count"] for r in districts)
        big = [r for r in districts if r["count"] >= 0.01 * recorded]
        if len(big) >= 2:
            hi = max(big, key=lambda r: (r["arrest_rate"], -r["district"]))
            lo = min(big, key=lambda r: (r["arrest_rate"], r["district"]))
            text += (f"; by district, highest in {_district(hi)}{_pct(hi['arrest_rate'])}) "
                     f"and lowest in {_district(lo)}{_pct(lo['arrest_rate'])})")
        out.append(Finding("arrests", text + "."))


def _time(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the busiest hour and day, and placeholder times."""
    grid = _rows(ex, "hour_by_weekday")
    if grid and sum(r["count"] for r in grid):
        hours: dict[int, int] = {}
        days: dict[str, int] = {}
        for r in grid:
            hours[r["hour"]] = hours.get(r["hour"], 0) + r["count"]
            days[r["day_name"]] = days.get(r["day_name"], 0) + r["count"]
        h = max(hours, key=lambda k: (hours[k], -k))
        d = max(days, key=lambda k: days[k])
        text = (f"The busiest hour is {h:02d}:00–{(h + 1) % 24:02d}:00 and the busiest day "
                f"{d}")
        precision = {r["recorded_as"]: r for r in _rows(ex, "time_precision")}
        if "exactly_midnight" in precision:
            text += (f"; {_pct(precision['exactly_midnight']['share'])} of incidents are timed "
                     f"exactly at midnight and {_pct(precision['exactly_noon']['share'])} at "
                     "noon, often a placeholder for an unknown time")
        out.append(Finding("time", text + "."))


def _places(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on the most common place and community area."""
    places = _rows(ex, "top_location_descriptions")
    areas = [r for r in _rows(ex, "incidents_by_community_area")
             if r["community_area"] is not None]
    if places or areas:
        parts = []
        if places:
            p = places[0]
            parts.append(f"the most common place is {p['location_description'] or '(not recorded)'}"
                         f" ({_pct(p['share'])})")
        if areas:
            a = areas[0]
            parts.append(f"the community area with the most incidents is {a['name']} "
                         f"({a['community_area']}, {_pct(a['share'])} of all incidents)")
        text = "; ".join(parts)
        out.append(Finding("places", text[0].upper() + text[1:] + "."))


def _missing(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on columns not published in complete years."""
    complete = _complete_years(ex)
    gaps = _unpublished([r for r in _rows(ex, "missing_by_year") if r["year"] in complete])
    if gaps:
        out.append(Finding("missing", (
            "Not published in complete years (over half missing): " + "; ".join(gaps)
            + ". Those years show as missing, not as zero; the chart of missing values "
            "shows the partial years too.")))


def _quarantine(ex: Exploration, out: list[Finding]) -> None:
    """Add the finding on rows quarantined at ingest."""
    q = _rows(ex, "quarantine_summary")
    if q:
        reasons: dict[str, int] = {}
        for r in q:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + r["count"]
        top_reason = max(reasons, key=lambda k: reasons[k])
        out.append(Finding("quarantine", (
            f"{sum(reasons.values()):,} rows were quarantined at ingest (not loaded), most "
            f"for {top_reason} ({reasons[top_reason]:,}).")))
    elif ex.quarantine_available:
        out.append(Finding("quarantine", "No rows were quarantined at ingest."))


def _district(r: dict[str, Any]) -> str:
    return (f"{r['name']} (district {r['district']}" if r.get("name")
            else f"district {r['district']} (") + ", "


def _unpublished(rows: list[dict[str, Any]]) -> list[str]:
    """Columns missing in some years (not all), grouped by the years they miss."""
    years_all = sorted({r["year"] for r in rows})
    missing: dict[str, list[int]] = {}
    for r in rows:
        if r["share"] is not None and r["share"] >= NOT_PUBLISHED:
            missing.setdefault(r["column_name"], []).append(r["year"])
    groups: dict[str, list[str]] = {}
    for col, ys in missing.items():
        if len(ys) < len(years_all):
            groups.setdefault(year_ranges(ys), []).append(col)
    return [f"{', '.join(cols)} in {ys}" for ys, cols in groups.items()]


def _is_bundled_sample(source: str) -> bool:
    from crimeclass.data import sample_files

    return Path(source).name in {p.name for p in sample_files()}
