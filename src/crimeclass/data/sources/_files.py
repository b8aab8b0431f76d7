"""File sources: which files a path names, and the source that reads each (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

from crimeclass.data._errors import SourceError
from crimeclass.data.sources._base import FileSource
from crimeclass.data.sources._csv import CsvSource
from crimeclass.data.sources._parquet import ParquetSource

__all__ = ["expand_paths", "open_source"]

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".gz")


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files to ingest: each file as given, each folder's data files, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(_SUFFIXES))
            if not found:
                raise SourceError(str(p), None, None,
                                  "the folder holds no .csv, .csv.gz or .parquet file")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SourceError(str(p), None, None, "no such file")
    return out


def open_source(path: str | Path, *, block_bytes: int = 16 << 20) -> FileSource:
    """Open a CSV, CSV.gz or Parquet file, detected from its first bytes."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise SourceError(str(path), None, None, f"cannot open: {e.strerror}") from e
    if magic == _PARQUET_MAGIC:
        return ParquetSource(path)
    return CsvSource(path, compressed=magic[:2] == _GZIP_MAGIC, block_bytes=block_bytes)
