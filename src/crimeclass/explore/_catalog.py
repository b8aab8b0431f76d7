"""The catalog of statistics: each defined once, as SQL over the relation ``incidents``.

Every statistic is one SELECT in DuckDB's dialect. The DuckDB engine runs it as
it is; the Spark engine compiles it with sqlglot (:func:`crimeclass.engines.to_spark_sql`).
The relations a statistic may read are defined once, for every engine, in
:mod:`crimeclass.explore._relations`:

``incidents``
    The canonical columns (``primary_type`` in today's spelling) of the incidents
    that pass all filters.
``incidents_window``
    The same, filtered by the date window only: what the data covers.
``daily_types``, ``month_coverage``, ``year_coverage``
    For each day x offense type, month and year of the window: rows, days with
    data, offense types, and whether the period is ``complete`` (see
    :data:`COMPLETE_RULE`). A partial period is drawn and labelled as such,
    never compared as if it were a drop in crime.
``missing_counts``
    Per year, the incidents that pass the filters and how many lack each column.
``community_areas``, ``police_districts``
    Names (:mod:`crimeclass.explore._lookups`).
``quarantine``
    The store's quarantined rows (source, line, field, reason).

Every result is sorted on all its keys, and ratios divide by ``NULLIF(n, 0)``,
so both engines return the same rows in the same order, with NULL where a
ratio has no denominator.

>>> [s.name for s in CATALOG][:3]
['incidents_by_year', 'incidents_by_month', 'hour_by_weekday']
>>> get("arrest_rate_by_district").keys
('district',)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crimeclass.explore._relations import COMPLETE_RULE, MISSING_COLUMNS

__all__ = ["CATALOG", "HEX_GRID", "Statistic", "get"]


@dataclass(frozen=True)
class Statistic:
    """One entry of the catalog.

    Parameters
    ----------
    name : str
        Identifier; also the file name of its table (``tables/<name>.csv``).
    title : str
        Heading in the report.
    description : str
        What it shows and how to read it.
    sql : str
        One SELECT in DuckDB's dialect over the relations of :func:`relations`.
    keys : tuple of str
        The columns that identify a row.
    """

    name: str
    title: str
    description: str
    sql: str
    keys: tuple[str, ...]


# ------------------------------------------------------------------ statistics

def _rates(key: str, join: str = "", extra: str = "", order: str = "") -> str:
    return f"""
SELECT {key}{extra},
       count(*) AS count,
       count(*) FILTER (WHERE arrest) AS arrests,
       CAST(count(*) FILTER (WHERE arrest) AS DOUBLE) / NULLIF(count(arrest), 0) AS arrest_rate,
       CAST(count(*) FILTER (WHERE domestic) AS DOUBLE) / NULLIF(count(domestic), 0)
           AS domestic_share
FROM incidents AS i{join}
GROUP BY {key}{extra}
ORDER BY {order or key} NULLS LAST"""


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: The hexagon grid of ``spatial_density``: pointy-top hexagons ``size_km`` apart
#: (centre to centre), on an equirectangular projection around Chicago.
HEX_GRID = {"lon0": -87.95, "lat0": 41.63, "size_km": 1.0,
       "km_per_lon": 111.320 * math.cos(math.radians(41.84)), "km_per_lat": 110.574}


def _hexbin_sql() -> str:
    # The hexbin of matplotlib: two rectangular lattices offset by half a cell;
    # each point goes to the nearer centre. Constants are literals computed here
    # so that both engines do the same IEEE arithmetic (no cos() in SQL).
    sx = HEX_GRID["size_km"]
    sy = sx * math.sqrt(3.0)
    fx = HEX_GRID["km_per_lon"] / sx  # cells per degree of longitude
    fy = HEX_GRID["km_per_lat"] / sy
    lon0, lat0 = HEX_GRID["lon0"], HEX_GRID["lat0"]
    return f"""
WITH p AS (
    SELECT (longitude - CAST({lon0!r} AS DOUBLE)) * CAST({fx!r} AS DOUBLE) AS gx,
           (latitude - CAST({lat0!r} AS DOUBLE)) * CAST({fy!r} AS DOUBLE) AS gy
    FROM incidents
    WHERE latitude IS NOT NULL AND longitude IS NOT NULL
      AND NOT isnan(latitude) AND NOT isnan(longitude)
), c AS (
    SELECT gx, gy,
           CAST(floor(gx + 0.5) AS DOUBLE) AS x1, CAST(floor(gy + 0.5) AS DOUBLE) AS y1,
           CAST(floor(gx) AS DOUBLE) + 0.5 AS x2, CAST(floor(gy) AS DOUBLE) + 0.5 AS y2
    FROM p
), h AS (
    SELECT CASE WHEN (gx - x1) * (gx - x1) + 3 * (gy - y1) * (gy - y1)
                     <= (gx - x2) * (gx - x2) + 3 * (gy - y2) * (gy - y2)
                THEN x1 ELSE x2 END AS hx,
           CASE WHEN (gx - x1) * (gx - x1) + 3 * (gy - y1) * (gy - y1)
                     <= (gx - x2) * (gx - x2) + 3 * (gy - y2) * (gy - y2)
                THEN y1 ELSE y2 END AS hy
    FROM c
)
SELECT CAST(2 * hx AS BIGINT) AS hex_col, CAST(2 * hy AS BIGINT) AS hex_row,
       hx / CAST({fx!r} AS DOUBLE) + CAST({lon0!r} AS DOUBLE) AS longitude,
       hy / CAST({fy!r} AS DOUBLE) + CAST({lat0!r} AS DOUBLE) AS latitude,
       count(*) AS count
FROM h
GROUP BY hx, hy
ORDER BY hex_row, hex_col"""


def _missing_sql(by_year: bool) -> str:
    prefixed = ", ".join(f"missing_{c}" for c in MISSING_COLUMNS)
    order = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(MISSING_COLUMNS))
    if by_year:
        counts, group = "SELECT * FROM missing_counts", "year, "
    else:
        sums = ", ".join(f"CAST(sum(missing_{c}) AS BIGINT) AS missing_{c}"
                         for c in MISSING_COLUMNS)
        counts, group = f"SELECT CAST(sum(n) AS BIGINT) AS n, {sums} FROM missing_counts", ""
    return f"""
WITH m AS ({counts}), u AS (
    SELECT * FROM m UNPIVOT (missing FOR prefixed IN ({prefixed}))
), v AS (
    SELECT *, substring(prefixed, {len("missing_") + 1}) AS column_name FROM u
)
SELECT {group}column_name, missing, CAST(missing AS DOUBLE) / NULLIF(n, 0) AS share
FROM v
ORDER BY {group}CASE column_name {order} END"""


def _compare_to_previous(period: str, previous: str, coverage: str, counts: str,
                         columns: str, trailing: str = "") -> str:
    return f"""
WITH f AS ({counts})
SELECT {columns},
       coalesce(f.count, 0) AS count,
       CASE WHEN c.complete AND p.complete AND pf.count > 0
            THEN CAST(coalesce(f.count, 0) - pf.count AS DOUBLE) / pf.count END AS change,
       c.complete{trailing}
FROM {coverage} AS c
LEFT JOIN f ON f.{period} = c.{period}
LEFT JOIN {coverage} AS p ON p.{period} = {previous}
LEFT JOIN f AS pf ON pf.{period} = {previous}
ORDER BY c.{period}"""


CATALOG: tuple[Statistic, ...] = (
    Statistic(
        "incidents_by_year", "Incidents by year",
        "Incidents per year, the change from the year before (only between two complete "
        "years), and whether the data covers the whole year. Partial years are drawn "
        "hatched and labelled: they are gaps in the data, not drops in crime.",
        _compare_to_previous("year", "c.year - 1", "year_coverage",
                             "SELECT year, count(*) AS count FROM incidents GROUP BY year",
                             "c.year", trailing=", c.note"),
        ("year",)),
    Statistic(
        "incidents_by_month", "Incidents by month",
        "Incidents per calendar month and the change from the same month a year before "
        "(only between complete months).",
        _compare_to_previous(
            "month", "CAST(c.month - INTERVAL 1 YEAR AS DATE)", "month_coverage",
            "SELECT CAST(date_trunc('month', date) AS DATE) AS month, count(*) AS count "
            "FROM incidents GROUP BY CAST(date_trunc('month', date) AS DATE)",
            "c.month, year(c.month) AS year, month(c.month) AS month_of_year"),
        ("month",)),
    Statistic(
        "hour_by_weekday", "Hour of day by day of week",
        "Incidents by the hour of the day and the day of the week they occurred "
        "(Chicago local time), with their share of all incidents.",
        f"""
WITH f AS (
    SELECT isodow(date) AS weekday, hour(date) AS hour, count(*) AS count
    FROM incidents GROUP BY isodow(date), hour(date)
), grid AS (
    SELECT w.weekday, w.day_name, h.hour
    FROM (VALUES {", ".join(f"({i}, '{d}')" for i, d in enumerate(_WEEKDAYS, 1))})
        AS w(weekday, day_name)
    CROSS JOIN (VALUES {", ".join(f"({h})" for h in range(24))}) AS h(hour)
)
SELECT g.weekday, g.day_name, g.hour, coalesce(f.count, 0) AS count,
       CAST(coalesce(f.count, 0) AS DOUBLE) / NULLIF((SELECT count(*) FROM incidents), 0)
           AS share
FROM grid AS g LEFT JOIN f ON f.weekday = g.weekday AND f.hour = g.hour
ORDER BY g.weekday, g.hour""",
        ("weekday", "hour")),
    Statistic(
        "time_precision", "How precisely times are recorded",
        "Incidents whose time is exactly midnight, exactly noon, on the hour, or midnight "
        "on the first of a month. Many records carry such a time when the real one is "
        "unknown, which piles incidents up at hour 0 and hour 12.",
        """
WITH t AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE hour(date) = 0 AND minute(date) = 0 AND second(date) = 0)
               AS exactly_midnight,
           count(*) FILTER (WHERE hour(date) = 12 AND minute(date) = 0 AND second(date) = 0)
               AS exactly_noon,
           count(*) FILTER (WHERE minute(date) = 0 AND second(date) = 0) AS on_the_hour,
           count(*) FILTER (WHERE day(date) = 1 AND hour(date) = 0 AND minute(date) = 0
                            AND second(date) = 0) AS first_of_month_midnight
    FROM incidents
), u AS (
    SELECT * FROM t UNPIVOT (count FOR recorded_as
        IN (exactly_midnight, exactly_noon, on_the_hour, first_of_month_midnight))
)
SELECT recorded_as, count, CAST(count AS DOUBLE) / NULLIF(n, 0) AS share
FROM u
ORDER BY CASE recorded_as WHEN 'exactly_midnight' THEN 1 WHEN 'exactly_noon' THEN 2
              WHEN 'on_the_hour' THEN 3 ELSE 4 END""",
        ("recorded_as",)),
    Statistic(
        "top_primary_types", "Primary types and their index share",
        "Incidents by primary type (old spellings merged into today's), their share of all "
        "incidents, and the share of them that are index offenses (FBI Part I).",
        """
SELECT primary_type,
       count(*) AS count,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share,
       count(*) FILTER (WHERE is_index) AS index_count,
       CAST(count(*) FILTER (WHERE is_index) AS DOUBLE) / NULLIF(count(is_index), 0)
           AS index_share
FROM incidents
GROUP BY primary_type
ORDER BY count DESC, primary_type NULLS LAST""",
        ("primary_type",)),
    Statistic(
        "index_share_by_year", "Index share by year",
        "Share of labeled incidents that are index offenses (FBI Part I: homicide, "
        "criminal sexual assault, robbery, aggravated assault and battery, burglary, "
        "theft, motor vehicle theft, arson), per year.",
        """
WITH f AS (
    SELECT year, count(is_index) AS labeled, count(*) FILTER (WHERE is_index) AS index_count
    FROM incidents GROUP BY year
)
SELECT c.year, coalesce(f.labeled, 0) AS labeled, coalesce(f.index_count, 0) AS index_count,
       CAST(f.index_count AS DOUBLE) / NULLIF(f.labeled, 0) AS share,
       c.complete
FROM year_coverage AS c LEFT JOIN f ON f.year = c.year
ORDER BY c.year""",
        ("year",)),
    Statistic(
        "arrest_rate_by_year", "Arrest rate and domestic share by year",
        "Share of incidents with an arrest recorded, and share flagged domestic, per year. "
        "Arrests are recorded after the fact: recent incidents may still gain some.",
        f"""
WITH r AS ({_rates("year")})
SELECT r.year, c.complete, r.count, r.arrests, r.arrest_rate, r.domestic_share
FROM r JOIN year_coverage AS c ON c.year = r.year
ORDER BY r.year""",
        ("year",)),
    Statistic(
        "arrest_rate_by_type", "Arrest rate and domestic share by primary type",
        "Share of incidents with an arrest, and share flagged domestic, per primary type.",
        _rates("primary_type", order="count DESC, primary_type"),
        ("primary_type",)),
    Statistic(
        "arrest_rate_by_district", "Arrest rate and domestic share by district",
        "Share of incidents with an arrest, and share flagged domestic, per police district. "
        "Incidents without a district (none was published before 2011) form the last row.",
        _rates("i.district", join=" LEFT JOIN police_districts AS d ON d.district = i.district",
               extra=", d.name").replace("SELECT i.district", "SELECT i.district AS district",
                                         1),
        ("district",)),
    Statistic(
        "top_location_descriptions", "Top location descriptions",
        "The 25 most common kinds of place, with their share of all incidents and arrest "
        "rate. The portal reworded some descriptions in 2019 (e.g. parking lots).",
        """
SELECT location_description,
       count(*) AS count,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share,
       CAST(count(*) FILTER (WHERE arrest) AS DOUBLE) / NULLIF(count(arrest), 0) AS arrest_rate
FROM incidents
GROUP BY location_description
ORDER BY count DESC, location_description NULLS LAST
LIMIT 25""",
        ("location_description",)),
    Statistic(
        "incidents_by_district", "Incidents by police district",
        "Incidents per police district, their share of all incidents, and the first and "
        "last year with incidents there (districts 13, 21 and 23 were merged into others in "
        "2012-2013). The row without a district holds the incidents that have none.",
        """
SELECT i.district AS district, d.name,
       count(*) AS count,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share,
       min(i.year) AS first_year, max(i.year) AS last_year
FROM incidents AS i LEFT JOIN police_districts AS d ON d.district = i.district
GROUP BY i.district, d.name
ORDER BY i.district NULLS LAST""",
        ("district",)),
    Statistic(
        "incidents_by_community_area", "Incidents by community area",
        "Incidents per community area (Chicago's 77 official areas), with its name and "
        "share of all incidents. The row without an area holds the incidents that have "
        "none (none was published before 2011).",
        """
SELECT i.community_area AS community_area, a.name,
       count(*) AS count,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share
FROM incidents AS i LEFT JOIN community_areas AS a ON a.community_area = i.community_area
GROUP BY i.community_area, a.name
ORDER BY count DESC, i.community_area NULLS LAST""",
        ("community_area",)),
    Statistic(
        "spatial_density", "Where incidents happen",
        "Incidents counted in hexagons about 1 km across (latitude and longitude as "
        "published, which the portal shifts slightly from the exact place). Incidents "
        "without coordinates are not counted.",
        _hexbin_sql(),
        ("hex_col", "hex_row")),
    Statistic(
        "coverage_by_year", "Data coverage by year",
        "What the data holds for each year of the window, whatever the type and district "
        "filters: incidents, days and months with data, offense types, incidents with a "
        "district, and whether the year is complete. " + COMPLETE_RULE[0].upper()
        + COMPLETE_RULE[1:] + ".",
        "SELECT * FROM year_coverage ORDER BY year",
        ("year",)),
    Statistic(
        "missing_by_column", "Missing values per column",
        "Incidents with no value in each column (NaN counts as missing). Some columns were "
        "not published for whole periods: see the next table.",
        _missing_sql(by_year=False),
        ("column_name",)),
    Statistic(
        "missing_by_year", "Missing values per column and year",
        "Share of incidents with no value, per column and year: a column that was not "
        "published for some years shows as missing there, not as zero.",
        _missing_sql(by_year=True),
        ("year", "column_name")),
    Statistic(
        "quarantine_summary", "Quarantined rows",
        "Rows of the loaded files that were not loaded, by source, reason and field (the "
        "latest ingest of each source). They have no trusted date, type or district, so "
        "the filters do not apply to them.",
        """
SELECT source, reason, field, count(*) AS count
FROM quarantine
GROUP BY source, reason, field
ORDER BY count DESC, source, reason, field NULLS LAST""",
        ("source", "reason", "field")),
)

_BY_NAME = {s.name: s for s in CATALOG}


def get(name: str) -> Statistic:
    """The catalog entry called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no statistic {name!r}; the catalog holds: "
                       + ", ".join(_BY_NAME)) from None
