"""Filters of an exploration: a date window, primary types and districts.

A filter is one WHERE clause over the canonical columns, the same text on every
engine. Values are checked against the data before anything runs, so a typo
gives an error listing the valid values rather than an empty report.

>>> f = Filters(since=date(2012, 1, 1), until=date(2012, 12, 31), types=("theft",))
>>> f.window_sql()[:82]
"date >= TIMESTAMP '2012-01-01 00:00:00' AND date < TIMESTAMP '2013-01-01 00:00:00'"
>>> f.checked(["THEFT", "BATTERY"], [1, 2]).subset_sql()
"primary_type IN ('THEFT')"
>>> Filters().describe()
'none'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from crimeclass.data._labels import _PRIMARY_ALIASES
from crimeclass.explore._errors import FilterError

__all__ = ["PRIMARY_TYPE_ALIASES", "Filters", "normalize_primary_type"]

#: Old spellings of primary types and the spelling the portal uses today.
PRIMARY_TYPE_ALIASES: dict[str, str] = dict(_PRIMARY_ALIASES)


def normalize_primary_type(value: str) -> str:
    """Upper case, single spaces, today's spelling: ``'crim sexual assault'`` ->
    ``'CRIMINAL SEXUAL ASSAULT'``."""
    v = re.sub(r"\s+", " ", value.strip().upper())
    return PRIMARY_TYPE_ALIASES.get(v, v)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@dataclass(frozen=True)
class Filters:
    """Which incidents an exploration looks at.

    Parameters
    ----------
    since, until : datetime.date, optional
        First and last day (both included).
    types : tuple of str, default=()
        Primary types to keep (any spelling: case and old names are normalised).
        Empty: all.
    districts : tuple of int, default=()
        Police districts to keep. Empty: all. Incidents without a district
        (before 2011 the portal published none) are then left out.
    """

    since: date | None = None
    until: date | None = None
    types: tuple[str, ...] = ()
    districts: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.since or self.until or self.types or self.districts)

    def checked(self, valid_types: Iterable[str], valid_districts: Iterable[int]) -> Filters:
        """These filters with primary types in the data's spelling, or :class:`FilterError`.

        Parameters
        ----------
        valid_types : iterable of str
            The (normalised) primary types the data holds.
        valid_districts : iterable of int
            The districts the data holds.
        """
        if self.since and self.until and self.since > self.until:
            raise FilterError("since", self.since,
                              f"--since {self.since} is after --until {self.until}")
        known = sorted(set(valid_types))
        types = []
        for t in self.types:
            norm = normalize_primary_type(t)
            if norm not in known:
                raise FilterError("type", t, f"unknown primary type {t!r}", known)
            if norm not in types:
                types.append(norm)
        districts_known = sorted(set(valid_districts))
        for d in self.districts:
            if d not in districts_known:
                raise FilterError("district", d, f"unknown district {d}", districts_known)
        return replace(self, types=tuple(types), districts=tuple(sorted(set(self.districts))))

    def window_sql(self) -> str:
        """The date window as a SQL condition (``TRUE`` when unbounded)."""
        parts = []
        if self.since:
            parts.append(f"date >= TIMESTAMP '{self.since.isoformat()} 00:00:00'")
        if self.until:
            end = self.until + timedelta(days=1)
            parts.append(f"date < TIMESTAMP '{end.isoformat()} 00:00:00'")
        if self.since or self.until:
            # Year is the year of Date; this lets Spark skip year=YYYY partitions.
            lo = self.since.year if self.since else 1900
            hi = self.until.year if self.until else 9999
            parts.append(f"year BETWEEN {lo} AND {hi}")
        return " AND ".join(parts) or "TRUE"

    def subset_sql(self) -> str:
        """The primary-type and district filters as a SQL condition (``TRUE`` when none)."""
        parts = []
        if self.types:
            parts.append(f"primary_type IN ({', '.join(_quote(t) for t in self.types)})")
        if self.districts:
            parts.append(f"district IN ({', '.join(str(int(d)) for d in self.districts)})")
        return " AND ".join(parts) or "TRUE"

    def describe(self) -> str:
        """The filters in words, for the report."""
        parts = []
        if self.since or self.until:
            parts.append(f"from {self.since or 'the first day'} to {self.until or 'the last day'}")
        if self.types:
            parts.append("primary type " + " or ".join(self.types))
        if self.districts:
            parts.append("district " + " or ".join(str(d) for d in self.districts))
        return "; ".join(parts) or "none"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "types": list(self.types), "districts": list(self.districts)}


def parse_date(value: str, option: str) -> date:
    """``YYYY-MM-DD`` or ``YYYY`` (``--until 2017`` means the end of 2017)."""
    v = value.strip()
    try:
        if re.fullmatch(r"\d{4}", v):
            return date(int(v), 12, 31) if option == "until" else date(int(v), 1, 1)
        if re.fullmatch(r"\d{4}-\d{2}", v):
            y, m = map(int, v.split("-"))
            if option == "until":
                nxt = date(y + (m == 12), m % 12 + 1, 1)
                return nxt - timedelta(days=1)
            return date(y, m, 1)
        return date.fromisoformat(v)
    except ValueError:
        raise FilterError(option, value, f"--{option} {value!r} is not a date "
                          "(YYYY-MM-DD, YYYY-MM or YYYY)") from None


def parse_filters(since: str | None = None, until: str | None = None,
                  types: Sequence[str] = (), districts: Sequence[int] = ()) -> Filters:
    """Filters from command-line text."""
    return Filters(since=parse_date(since, "since") if since else None,
                   until=parse_date(until, "until") if until else None,
                   types=tuple(types), districts=tuple(int(d) for d in districts))
