"""Errors of the scoring service: one class, :class:`ServeError`, carrying its answer."""

from __future__ import annotations

from crimeclass.data import CrimeclassError

__all__ = ["ServeError"]


class ServeError(CrimeclassError):
    """A request or a start of the service that cannot be served.

    Attributes
    ----------
    status : int
        The HTTP status of the answer (400s: the caller's; 503: try again later).
    field : str or None
        The field of the request concerned, if one.
    retry_after : int or None
        Seconds after which a retry may succeed (503, 429).
    """

    def __init__(self, message: str, *, status: int = 400, field: str | None = None,
                 retry_after: int | None = None) -> None:
        self.status = status
        self.field = field
        self.retry_after = retry_after
        super().__init__(message)
