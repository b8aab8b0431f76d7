"""Validation: raw text columns -> typed canonical columns, or a quarantine reason.

The rules are one SQL query, generated from :data:`~crimeclass.data._schema.COLUMNS`,
that DuckDB runs over each Arrow batch of a source. For every row it yields the
typed values, ``_problems`` (``'Field:reason;...'``, empty when the row is fine),
``_flags`` (repairs: values nulled because they are out of range, or null) and,
for rows with problems, ``_raw``: the row's text as JSON, kept in the quarantine.

The query is written for speed on the common case: each value is parsed once,
each check reads the parsed value first (a cheap test that is false for good
rows), and the texts of problems and flags are built only for the rows that
have any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from crimeclass.data._reasons import Flag, Reason
from crimeclass.data._schema import COLUMNS, DATE_FORMATS, Column

__all__ = ["Bounds", "raw_json_sql", "validation_sql"]

_TRUE = ("true", "t", "y", "yes", "1")
_FALSE = ("false", "f", "n", "no", "0")


@dataclass(frozen=True)
class Bounds:
    """Plausible ranges; values outside are nulled and the row flagged."""

    latitude: tuple[float, float] = (41.60, 42.10)
    longitude: tuple[float, float] = (-88.00, -87.50)
    x_coordinate: tuple[float, float] = (1_080_000.0, 1_220_000.0)
    y_coordinate: tuple[float, float] = (1_800_000.0, 1_960_000.0)
    beat: tuple[int, int] = (111, 2535)
    district: tuple[int, int] = (1, 31)
    ward: tuple[int, int] = (1, 50)
    community_area: tuple[int, int] = (1, 77)
    earliest_year: int = 1990


def _q(text: str) -> str:
    """SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _unparsed(parsed: str, col: str) -> str:
    """The raw value is there (not null, not only spaces) but did not parse.

    CASE, unlike AND, evaluates its branch only for the rows that reach it: the
    trim runs for the few values that failed to parse, not for all.
    """
    return (f"CASE WHEN {parsed} IS NULL AND {col} IS NOT NULL "
            f"THEN trim({col}) <> '' ELSE false END")


@dataclass
class _Rules:
    """The pieces of :func:`validation_sql`, gathered column by column."""

    parsed: list[str] = field(default_factory=list)  # p_<col>: each value parsed once
    problems: list[tuple[str, str]] = field(default_factory=list)  # (condition, 'Field:reason')
    flags: list[tuple[str, str]] = field(default_factory=list)  # (condition, flag)
    final: list[str] = field(default_factory=list)  # output columns

    def problem(self, cond: str, field: str, reason: Reason) -> None:
        # a NULL condition counts as false: NULL OR true is true, NULL OR false is NULL
        self.problems.append((f"({cond})", _q(f"{field}:{reason}")))


def _rules(date_formats: Sequence[str], bounds: Bounds, now: str, typed: frozenset[str]
           ) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """The pieces of :func:`validation_sql`: parsed values, problems, flags, outputs.

    A column in ``typed`` arrives parsed already (its canonical type, see
    ``CsvSource``): it is its own parsed value and cannot fail to parse; its
    range and consistency checks apply as to a parsed text.
    """
    fmts = _list(date_formats)
    r = _Rules()
    parsed, final, problem = r.parsed, r.final, r.problem
    for c in COLUMNS:
        n = c.name
        if c.kind in ("id", "int", "year"):
            _number_rules(r, c, bounds, typed)
        elif c.kind in ("timestamp", "bool", "float") and n in typed:
            parsed.append(f"{n} AS p_{n}")
            if c.kind == "float":
                problem(f"NOT isfinite(p_{n})", c.portal, Reason.NOT_A_NUMBER)
            else:
                final.append(f"p_{n} AS {n}")
        elif c.kind == "timestamp":
            parsed.append(f"coalesce(try_strptime({n}, {fmts}), "
                          f"try_strptime(trim({n}), {fmts})) AS p_{n}")
            problem(_unparsed(f"p_{n}", n), c.portal, Reason.UNPARSEABLE_DATE)
            final.append(f"p_{n} AS {n}")
        elif c.kind == "bool":
            general = (f"CASE WHEN lower(trim({n})) IN {_TRUE} THEN true "
                       f"WHEN lower(trim({n})) IN {_FALSE} THEN false END")
            parsed.append(f"CASE {n} WHEN 'true' THEN true WHEN 'false' THEN false "
                          f"ELSE {general} END AS p_{n}")
            problem(_unparsed(f"p_{n}", n), c.portal, Reason.BAD_BOOLEAN)
            final.append(f"p_{n} AS {n}")
        elif c.kind == "code":  # IUCR: 3-4 letters or digits, zero-padded to 4
            parsed.append(f"CASE WHEN regexp_full_match({n}, '[0-9A-Z]{{4}}') THEN {n} "
                          f"WHEN regexp_full_match(upper(trim({n})), '[0-9A-Z]{{3,4}}') "
                          f"THEN lpad(upper(trim({n})), 4, '0') END AS p_{n}")
            problem(_unparsed(f"p_{n}", n), c.portal, Reason.BAD_CODE)
            final.append(f"p_{n} AS {n}")
        elif c.kind == "fbi":  # FBI code: 1-2 digits and an optional letter: 2 -> 02
            parsed.append(f"CASE WHEN regexp_full_match({n}, '[0-9]{{2}}[A-Z]?') THEN {n} "
                          f"WHEN regexp_full_match(upper(trim({n})), '[0-9][A-Z]?') "
                          f"THEN '0' || upper(trim({n})) "
                          f"WHEN regexp_full_match(upper(trim({n})), '[0-9]{{2}}[A-Z]?') "
                          f"THEN upper(trim({n})) END AS p_{n}")
            problem(_unparsed(f"p_{n}", n), c.portal, Reason.BAD_CODE)
            final.append(f"p_{n} AS {n}")
        elif c.kind == "float":
            parsed.append(f"TRY_CAST({n} AS DOUBLE) AS p_{n}")
            problem(f"{_unparsed(f'p_{n}', n)} OR NOT isfinite(p_{n})", c.portal,
                    Reason.NOT_A_NUMBER)
        elif c.kind == "text":
            # trim only the values that need it: trimming all would copy every string
            final.append(f"nullif(CASE WHEN starts_with({n}, ' ') OR ends_with({n}, ' ') "
                         f"THEN trim({n}) ELSE {n} END, '') AS {n}")
        elif c.kind == "derived":
            pass  # Location is computed from Latitude and Longitude in the store
        else:  # pragma: no cover - a new kind must be handled above
            raise AssertionError(c.kind)

    _row_rules(r, bounds, now, typed)
    return r.parsed, r.problems, r.flags, r.final


def _number_rules(r: _Rules, c: Column, bounds: Bounds, typed: frozenset[str]) -> None:
    """Rules of a column of whole numbers (ID, codes of places, Year)."""
    n = c.name
    # BIGINT for every column: a code beyond INTEGER (a Beat of 99999999999) must reach the
    # range check below (nulled and flagged), not fail the whole ingest in a cast
    sql_type = "BIGINT"
    if n in typed:
        r.parsed.append(f"{n} AS p_{n}")
    else:
        r.parsed.append(f"TRY_CAST({n} AS DOUBLE) AS d_{n}")  # the cast ignores spaces
        r.parsed.append(f"CASE WHEN d_{n} = trunc(d_{n}) AND abs(d_{n}) < 9.0e15 "
                        f"THEN CAST(d_{n} AS {sql_type}) END AS p_{n}")
        r.problem(f"{_unparsed(f'd_{n}', n)} OR NOT isfinite(d_{n})", c.portal,
                  Reason.NOT_A_NUMBER)
        r.problem(f"isfinite(d_{n}) AND d_{n} <> trunc(d_{n})", c.portal,
                  Reason.NOT_A_WHOLE_NUMBER)
    if c.kind == "year":
        r.problem(f"CASE WHEN p_{n} IS NOT NULL THEN p_{n} <> year(p_date) END", c.portal,
                  Reason.YEAR_MISMATCH)
        r.final.append(f"CAST(year(p_date) AS INTEGER) AS {n}")
    elif hasattr(bounds, n):
        lo, hi = getattr(bounds, n)
        r.final.append(f"CASE WHEN p_{n} BETWEEN {lo} AND {hi} THEN p_{n} END AS {n}")
        r.flags.append((f"(p_{n} NOT BETWEEN {lo} AND {hi})",
                        _q(Flag(f"{n}_out_of_range"))))
    else:
        r.final.append(f"p_{n} AS {n}")


def _row_rules(r: _Rules, bounds: Bounds, now: str, typed: frozenset[str]) -> None:
    """Rules across columns: coordinate pairs, the date's presence and range, the field count."""
    # Coordinates: each pair is checked on its own; a pair outside Chicago is nulled.
    for a, b in (("latitude", "longitude"), ("x_coordinate", "y_coordinate")):
        (alo, ahi), (blo, bhi) = getattr(bounds, a), getattr(bounds, b)
        inside = f"(p_{a} BETWEEN {alo} AND {ahi} AND p_{b} BETWEEN {blo} AND {bhi})"
        for n in (a, b):
            r.final.append(f"CASE WHEN {inside} THEN p_{n} END AS {n}")
        present = f"(p_{a} IS NOT NULL OR p_{b} IS NOT NULL)"
        r.flags.append((f"(NOT coalesce({inside}, false) AND {present})",
                        _q(Flag.COORDINATES_OUTSIDE_CHICAGO)))

    r.problem("p_date IS NULL" if "date" in typed else
              "CASE WHEN p_date IS NULL THEN date IS NULL OR trim(date) = '' ELSE false END",
              "Date", Reason.MISSING_DATE)
    r.problem(f"p_date < TIMESTAMP '{bounds.earliest_year}-01-01' OR p_date > {now}",
              "Date", Reason.DATE_OUT_OF_RANGE)
    r.problem("_reject IS NOT NULL", "", Reason.WRONG_FIELD_COUNT)


def raw_json_sql() -> str:
    """SQL of a row's fields as a JSON object by their portal names (the quarantine's ``raw``)."""
    return "to_json({" + ", ".join(f"{_q(c.portal)}: {c.name}" for c in COLUMNS) + "})"


# A row the source could not take apart is reported by the source's verdict alone (its
# other fields may be empty): a bare reason (a CSV line with the wrong number of fields)
# or 'field:reason;...' (a web API record of the wrong shape, see sources/_soda_records.py).
_REJECT_PROBLEMS = "CASE WHEN contains(_reject, ':') THEN _reject ELSE ':' || _reject END"


def validation_sql(
    relation: str,
    *,
    date_formats: Sequence[str] = tuple(DATE_FORMATS.values()),
    bounds: Bounds = Bounds(),
    now: str = "now()::TIMESTAMP",
    typed: frozenset[str] = frozenset(),
) -> str:
    """The SELECT that validates and types the raw rows of ``relation``.

    Parameters
    ----------
    relation : str
        Name of a relation with the columns of :data:`RAW_SCHEMA`, those named in
        ``typed`` already of their canonical type.
    date_formats : sequence of str
        ``strptime`` formats to try, most likely first.
    bounds : Bounds
        Ranges outside which values are nulled and flagged.
    now : str
        SQL expression for the time of ingest (dates after it are quarantined).
    typed : frozenset of str
        Columns that arrive parsed (see :meth:`Source.ingest_batches`).
    """
    parsed, problems, flags, final = _rules(date_formats, bounds, now, typed)
    raw_json = raw_json_sql()
    # Most rows are fine: test one boolean, and build the texts only for the others.
    any_problem = " OR ".join(c for c, _ in problems)
    any_flag = " OR ".join(c for c, _ in flags)
    problem_text = ", ".join(f"CASE WHEN {c} THEN {t} END" for c, t in problems)
    flag_list = ", ".join(f"CASE WHEN {c} THEN {t} END" for c, t in flags)
    return f"""
WITH p AS (
    SELECT r.*, {", ".join(parsed)}
    FROM {relation} AS r
), q AS (
    SELECT p.*, ({any_problem}) AS _bad, ({any_flag}) AS _flagged
    FROM p
)
SELECT
    {", ".join(final)},
    _line,
    CASE WHEN _reject IS NOT NULL THEN {_REJECT_PROBLEMS}
         WHEN _bad THEN concat_ws(';', {problem_text}) ELSE '' END AS _problems,
    CASE WHEN _flagged THEN list_sort(list_distinct(
        list_filter([{flag_list}], lambda f: f IS NOT NULL))) END AS _flags,
    CASE WHEN _bad THEN coalesce(_raw, {raw_json}) END AS _raw
FROM q
"""
