"""Errors of the features stage."""

from __future__ import annotations

from crimeclass.data import CrimeclassError

__all__ = ["FeaturesError"]


class FeaturesError(CrimeclassError, ValueError):
    """A feature specification or input is not valid (a ValueError too, as scikit-learn
    expects of an estimator's bad input).

    Attributes
    ----------
    option : str or None
        The setting or input at fault (``"target"``, ``"grid_feet"``, ``"X"``, ...).
    value : str or None
        What was given for it.
    """

    def __init__(self, message: str, *, option: str | None = None,
                 value: object = None) -> None:
        self.option = option
        self.value = None if value is None else str(value)
        super().__init__(message)
