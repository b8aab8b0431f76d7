"""Errors of the engines stage."""

from __future__ import annotations

from crimeclass.data import CrimeclassError

__all__ = ["EngineError"]


class EngineError(CrimeclassError):
    """An engine cannot start, be set up or read its input.

    Attributes
    ----------
    engine : str
        ``"duckdb"`` or ``"spark"``.
    setting : str or None
        The setting or input at fault (``"memory_limit"``, ``"incidents"``, ...), if one is.
    value : str or None
        What was given for it.
    """

    def __init__(self, engine: str, message: str, *, setting: str | None = None,
                 value: object = None) -> None:
        self.engine = engine
        self.setting = setting
        self.value = None if value is None else str(value)
        super().__init__(message)
