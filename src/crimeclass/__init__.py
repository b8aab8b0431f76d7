"""crimeclass: Chicago crime records into trustworthy statistics and index-offense classifiers.

The command line's verbs are here for notebooks and scripts, imported when first
used (so that ``import crimeclass`` stays light)::

    import crimeclass

    crimeclass.ingest(sample=True, store="crimes.duckdb")
    crimeclass.info("crimes.duckdb")          # shows itself as a table

See docs/python.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Store", "__version__", "evaluate", "explore", "info", "ingest", "predict", "train"]

_LAZY = {
    "Store": "crimeclass.data",
    "ingest": "crimeclass._api",
    "info": "crimeclass._api",
    "explore": "crimeclass._api",
    "train": "crimeclass._api",
    "evaluate": "crimeclass._api",
    "predict": "crimeclass._api",
}

if TYPE_CHECKING:
    from crimeclass._api import evaluate, explore, info, ingest, predict, train
    from crimeclass.data import Store


def __getattr__(name: str) -> Any:
    """Import the verbs on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'crimeclass' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
