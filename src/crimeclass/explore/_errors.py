"""Errors of the exploration stage."""

from __future__ import annotations

from collections.abc import Sequence

from crimeclass.data import CrimeclassError

__all__ = ["ExploreError", "FilterError"]


class ExploreError(CrimeclassError):
    """The exploration cannot run (no data, no engine, nothing to read)."""


class FilterError(ExploreError, ValueError):
    """A filter value is not valid: names the option and lists the valid values.

    Attributes
    ----------
    option : str
        The filter, e.g. ``"district"``.
    value : str
        What was given.
    valid : list of str
        The values the data holds (empty when the fault is not a value, e.g. since > until).
    """

    def __init__(self, option: str, value: object, message: str,
                 valid: Sequence[object] = ()) -> None:
        self.option = option
        self.value = str(value)
        self.valid = [str(v) for v in valid]
        if self.valid:
            message += f"; valid {option} values are: {', '.join(self.valid)}"
        super().__init__(message)
