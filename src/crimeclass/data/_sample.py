"""The small real sample shipped with crimeclass (see sample/README.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["sample_files"]


def sample_files() -> list[Path]:
    """Paths of the bundled sample files, the main 2001-2017 file first."""
    folder = Path(str(resources.files("crimeclass.data").joinpath("sample")))
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".csv.gz", ".parquet")))
    main = [p for p in files if p.name.startswith("chicago_crimes_2001_2017")]
    return main + [p for p in files if p not in main]
