"""crimeclass: Chicago crime records into trustworthy statistics and index-offense classifiers.

The command line's verbs are here for notebooks and scripts, imported when first
used (so that ``import crimeclass`` stays light)::

    import crimeclass

    crimeclass.ingest(sample=True, store="crimes.duckdb")
    crimeclass.info("crimes.duckdb")          # shows itself as a table

See docs/python.md.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Store", "__version__", "evaluate", "explore", "info", "ingest", "predict", "train"]

_LAZY = {
    "Store": "crimeclass.data",
    "ingest": "crimeclass._api",
    "info": "crimeclass._api",
    "train": "crimeclass._api",
    "evaluate": "crimeclass._api",
    "predict": "crimeclass._api",
}

if TYPE_CHECKING:
    from crimeclass._api import evaluate, info, ingest, predict, train
    from crimeclass.data import Store


def __getattr__(name: str) -> Any:
    """Import the verbs on first use (PEP 562)."""
    import importlib

    if name == "explore":  # the stage's package, callable as the verb
        return importlib.import_module("crimeclass.explore")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'crimeclass' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "explore"])


class _ExplorePackage(types.ModuleType):
    """``crimeclass.explore`` is the exploration stage's package and, called, the verb
    :func:`crimeclass._api.explore` (the name of both)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from crimeclass._api import explore

        return explore(*args, **kwargs)


class _Package(types.ModuleType):
    """This package: makes its subpackage ``explore`` callable when it is imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "explore" and type(value) is types.ModuleType:
            value.__class__ = _ExplorePackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
