"""Which rows a live source asks for: one definition, written in each server's dialect.

A year range and "updated after" are pushed down to the server, so that only
the rows wanted travel: into SoQL's ``$where`` for the portal's web API, and
into the ``row_restriction`` of a BigQuery read session.

>>> f = RowFilter(from_year=2020, to_year=2024, updated_since=datetime(2025, 6, 1))
>>> f.where_soda()
"year >= 2020 AND year <= 2024 AND updated_on > '2025-06-01T00:00:00.000'"
>>> f.where_bigquery()
"year >= 2020 AND year <= 2024 AND updated_on > TIMESTAMP '2025-06-01 00:00:00.000000'"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["RowFilter", "parse_timestamp", "soda_timestamp"]


def soda_timestamp(ts: datetime) -> str:
    """A SoQL floating-timestamp literal's text, to the millisecond: ``2025-06-01T00:00:00.000``."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


def parse_timestamp(text: str) -> datetime:
    """A Chicago wall-clock time from ISO text (``2025-06-01`` or ``2025-06-01T08:30:00``).

    Raises
    ------
    ValueError
        If the text is not an ISO date or time, or names a time zone: the data's
        times are Chicago wall-clock times without one.
    """
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or time, e.g. 2025-06-01 or "
                         "2025-06-01T08:30:00") from None
    if ts.tzinfo is not None:
        raise ValueError(f"{text!r} names a time zone; give Chicago wall-clock time without "
                         "one (the dataset's times have no zone)")
    return ts


@dataclass(frozen=True)
class RowFilter:
    """Rows to read from a live source: a year range and a lower bound on ``updated_on``.

    Parameters
    ----------
    from_year, to_year : int or None
        First and last year (of ``Date``) to read; None: unbounded.
    updated_since : datetime or None
        Only rows updated after this Chicago wall-clock time.
    """

    from_year: int | None = None
    to_year: int | None = None
    updated_since: datetime | None = None

    def __post_init__(self) -> None:
        if (self.from_year is not None and self.to_year is not None
                and self.from_year > self.to_year):
            raise ValueError(f"the year range {self.from_year}-{self.to_year} is empty")

    def _terms(self, timestamp: str) -> list[str]:
        terms = []
        if self.from_year is not None:
            terms.append(f"year >= {int(self.from_year)}")
        if self.to_year is not None:
            terms.append(f"year <= {int(self.to_year)}")
        if self.updated_since is not None:
            terms.append(f"updated_on > {timestamp}")
        return terms

    def where_soda(self) -> str:
        """The filter as a SoQL ``$where`` (empty when there is none)."""
        ts = self.updated_since
        return " AND ".join(self._terms(f"'{soda_timestamp(ts)}'" if ts else ""))

    def where_bigquery(self) -> str:
        """The filter as a BigQuery ``row_restriction`` (empty when there is none).

        The table's TIMESTAMPs hold Chicago wall-clock times labelled UTC, so the
        bound is written as the same wall-clock time in UTC.
        """
        ts = self.updated_since
        literal = f"TIMESTAMP '{ts.strftime('%Y-%m-%d %H:%M:%S.%f')}'" if ts else ""
        return " AND ".join(self._terms(literal))

    def describe(self) -> str:
        """Short text for source names and messages."""
        return self.where_soda() or "all rows"
