"""The account of one ingest: every row read is inserted, updated, unchanged or quarantined."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from crimeclass.data._reasons import Reason

__all__ = ["IngestAccount", "Status", "total"]

#: What became of a source: stored; failed (nothing of it stored); interrupted by Ctrl-C
#: (nothing of it stored); not reached (a command stopped before it).
Status = Literal["committed", "failed", "interrupted", "not reached"]


@dataclass
class IngestAccount:
    """What one ingest of one source did.

    ``read = inserted + updated + unchanged + quarantined`` always holds
    (:meth:`check`). ``stale`` (a row older than the stored one) and
    ``matched_by_derived_key`` (a row without ID that is an incident already
    stored) are parts of ``unchanged``. ``warnings`` says what the counts alone do
    not (a file that holds no row). ``status`` says whether the source was stored
    (``"committed"``) and, if not, ``error`` why: then every count is 0.
    """

    source: str
    format: str = ""
    variant: str = ""
    ingest_id: int | None = None
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    stale: int = 0
    matched_by_derived_key: int = 0
    derived_keys: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    label_routes: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    date_format: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    status: Status = "committed"
    error: str | None = None

    @property
    def balanced(self) -> bool:
        """Whether every row read is accounted for."""
        return self.read == self.inserted + self.updated + self.unchanged + self.quarantined

    def check(self) -> IngestAccount:
        """Raise ``AssertionError`` unless the account adds up; return self."""
        if not self.balanced:
            raise AssertionError(f"account of {self.source} does not add up: {self.to_dict()}")
        return self

    @property
    def appended_only(self) -> bool:
        """Whether the ingest only added rows (deleted none: nothing for a vacuum to reclaim)."""
        return not (self.updated or self.unchanged
                    or self.quarantine_reasons.get(Reason.DUPLICATE_ID))

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows_per_second"] = round(self.rows_per_second)
        d["seconds"] = round(self.seconds, 3)
        return d


_COUNTS = ("read", "inserted", "updated", "unchanged", "quarantined", "stale",
           "matched_by_derived_key", "derived_keys")
_DICTS = ("quarantine_reasons", "label_routes", "flags")


def total(accounts: list[IngestAccount]) -> dict[str, Any]:
    """The sum of several accounts, with each file's account under ``files``."""
    out: dict[str, Any] = {k: sum(getattr(a, k) for a in accounts) for k in _COUNTS}
    for k in _DICTS:
        merged: dict[str, int] = {}
        for a in accounts:
            for key, n in getattr(a, k).items():
                merged[key] = merged.get(key, 0) + n
        out[k] = merged
    seconds = sum(a.seconds for a in accounts)
    out["seconds"] = round(seconds, 3)
    out["rows_per_second"] = round(out["read"] / seconds) if seconds else 0
    out["warnings"] = [f"{a.source}: {w}" for a in accounts for w in a.warnings]
    out["status"] = {s: sum(a.status == s for a in accounts)
                     for s in ("committed", "failed", "interrupted", "not reached")}
    out["files"] = [a.to_dict() for a in accounts]
    return out
