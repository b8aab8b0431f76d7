"""Exceptions of crimeclass: one base class, one subclass per kind of failure.

Each carries its context as attributes (``attrs()``), and its message names the
file, line and field where it has them, so that a user can find the fault.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CrimeclassError",
    "EmptyStoreError",
    "HeaderError",
    "SourceError",
    "StoreError",
]


class CrimeclassError(Exception):
    """Base class of every error that crimeclass raises on purpose."""

    def attrs(self) -> dict[str, Any]:
        """The error's context, for logs and ``--json`` output."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class SourceError(CrimeclassError):
    """A source cannot be read: names the file, the line and the field if known.

    Nothing of the source is stored when this is raised during an ingest.
    """

    def __init__(
        self, source: str, line: int | None, field: str | None, message: str
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.message = message
        where = source if line is None else f"{source}, line {line}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class HeaderError(SourceError):
    """The header does not describe a Chicago crime export."""


class StoreError(CrimeclassError):
    """The store cannot be opened, read or written."""


class EmptyStoreError(StoreError):
    """The store holds no incidents yet."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"the store {path} holds no incidents; load some first with "
            f"'crimeclass ingest FILE --store {path}'"
        )
