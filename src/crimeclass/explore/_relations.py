"""The relations the statistics read, defined once for every engine.

``incidents`` and ``incidents_window`` select the canonical columns from the
engine's source; ``daily_types``, ``month_coverage``, ``year_coverage`` and
``missing_counts`` are small aggregates computed once per run. What each holds:
:mod:`crimeclass.explore._catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crimeclass.data import COLUMN_NAMES
from crimeclass.explore._filters import PRIMARY_TYPE_ALIASES, Filters

__all__ = ["COMPLETE_RULE", "MISSING_COLUMNS", "Relation", "relations"]

#: When a year or month counts as complete (the same rule on every engine).
COMPLETE_RULE = (
    "a period is complete when it has incidents on at least 90% of its days (and in all 12 "
    "months, for a year) and at least half as many offense types as the richest period; "
    "with a district filter, also a district on at least half of its incidents"
)

#: Columns whose missing values are counted: the 22 canonical ones and the label.
MISSING_COLUMNS: tuple[str, ...] = (*COLUMN_NAMES, "is_index")
_FLOAT_COLUMNS = {"x_coordinate", "y_coordinate", "latitude", "longitude"}


def _canonical_select(source: str) -> str:
    cases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in PRIMARY_TYPE_ALIASES.items())
    cols = [f"CASE primary_type {cases} ELSE primary_type END AS primary_type"
            if c == "primary_type" else c for c in COLUMN_NAMES]
    return f"SELECT {', '.join(cols)}, is_index, label_source FROM {source}"


@dataclass(frozen=True)
class Relation:
    """A relation the statistics read: a view, or a small table computed once per run.

    Parameters
    ----------
    name : str
    sql : str
        One SELECT in DuckDB's dialect.
    materialize : bool
        Compute once and keep (a small aggregate that several statistics read).
    """

    name: str
    sql: str
    materialize: bool = False


def _missing_counts_sql() -> str:
    def missing(c: str) -> str:
        if c == "location":
            # the store derives location from latitude and longitude (NULL when either
            # is); counting it that way spares building 8 million strings
            return ("count(*) FILTER (WHERE latitude IS NULL OR longitude IS NULL "
                    "OR isnan(latitude) OR isnan(longitude)) AS missing_location")
        nan = f" + count(*) FILTER (WHERE isnan({c}))" if c in _FLOAT_COLUMNS else ""
        return f"count(*) - count({c}){nan} AS missing_{c}"

    cols = ",\n       ".join(missing(c) for c in MISSING_COLUMNS)
    return f"SELECT year, count(*) AS n,\n       {cols}\nFROM incidents GROUP BY year"


def relations(filters: Filters, source: str) -> list[Relation]:
    """The relations the statistics read, in dependency order.

    Parameters
    ----------
    filters : Filters
        Checked filters (see :meth:`Filters.checked`).
    source : str
        The engine's relation holding the stored incidents.
    """
    by_district = bool(filters.districts)
    district_ok = " AND with_district >= 0.5 * count" if by_district else ""
    district_note = ("CASE WHEN with_district < 0.5 * count THEN 'district not recorded' END, "
                     if by_district else "")
    # one pass over the incidents for both coverages: days x offense types
    daily = """
SELECT CAST(date AS DATE) AS day, primary_type,
       count(*) AS count, count(district) AS with_district
FROM incidents_window
GROUP BY CAST(date AS DATE), primary_type"""
    month = f"""
WITH m AS (
    SELECT CAST(date_trunc('month', day) AS DATE) AS month,
           CAST(sum(count) AS BIGINT) AS count,
           count(DISTINCT day) AS days_covered,
           count(DISTINCT primary_type) AS offense_types,
           CAST(sum(with_district) AS BIGINT) AS with_district
    FROM daily_types
    GROUP BY CAST(date_trunc('month', day) AS DATE)
)
SELECT month, count, days_covered, day(last_day(month)) AS days_in_month, offense_types,
       with_district,
       days_covered >= 0.9 * day(last_day(month))
           AND offense_types >= 0.5 * max(offense_types) OVER (){district_ok} AS complete
FROM m"""
    year = f"""
WITH y AS (
    SELECT year(day) AS year,
           CAST(sum(count) AS BIGINT) AS count,
           count(DISTINCT day) AS days_covered,
           count(DISTINCT month(day)) AS months_covered,
           count(DISTINCT primary_type) AS offense_types,
           CAST(sum(with_district) AS BIGINT) AS with_district
    FROM daily_types
    GROUP BY year(day)
), d AS (
    SELECT *,
           CASE WHEN year % 4 = 0 AND (year % 100 <> 0 OR year % 400 = 0)
                THEN 366 ELSE 365 END AS days_in_year,
           max(offense_types) OVER () AS most_types
    FROM y
)
SELECT year, count, days_covered, days_in_year, months_covered, offense_types, with_district,
       months_covered = 12 AND days_covered >= 0.9 * days_in_year
           AND offense_types >= 0.5 * most_types{district_ok} AS complete,
       NULLIF(concat_ws('; ',
           CASE WHEN months_covered < 12 OR days_covered < 0.9 * days_in_year
                THEN CAST(days_covered AS VARCHAR) || ' of '
                     || CAST(days_in_year AS VARCHAR) || ' days' END,
           CASE WHEN offense_types < 0.5 * most_types
                THEN 'only ' || CAST(offense_types AS VARCHAR) || ' offense type'
                     || CASE WHEN offense_types > 1 THEN 's' ELSE '' END END,
           {district_note}NULL), '') AS note
FROM d"""
    return [
        Relation("incidents_window",
                 f"{_canonical_select(source)} WHERE {filters.window_sql()}"),
        Relation("incidents", f"SELECT * FROM incidents_window WHERE {filters.subset_sql()}"),
        Relation("daily_types", daily, materialize=True),
        Relation("month_coverage", month, materialize=True),
        Relation("year_coverage", year, materialize=True),
        Relation("missing_counts", _missing_counts_sql(), materialize=True),
    ]
