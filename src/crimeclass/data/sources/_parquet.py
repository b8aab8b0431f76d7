"""Parquet files as streams of raw Arrow batches (columns of any type read as text, or kept
typed where they convert exactly to the canonical type)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crimeclass.data._errors import SourceError
from crimeclass.data._schema import ARROW_TYPES, COLUMNS, resolve_header
from crimeclass.data.sources._base import Cursor, FileSource, raw_batch

__all__ = ["ParquetSource"]

_KIND = {c.name: c.kind for c in COLUMNS}
_PARSED_KINDS = ("id", "int", "year", "float", "bool", "timestamp")


@dataclass
class ParquetSource(FileSource):
    """A Parquet file of crime records; columns of any type are read as text.

    ``_line`` is the row's number in the file, counting from 1.
    """

    path: Path
    batch_rows: int = 131_072

    format = "parquet"

    def __post_init__(self) -> None:
        try:
            self._file = pq.ParquetFile(str(self.path))
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceError(self.name, None, None, f"not a readable Parquet file: {e}") from e
        names = self._file.schema_arrow.names
        self.header = resolve_header(names, source=self.name)
        self.cursor = Cursor()

    def size(self) -> int:
        return int(self._file.metadata.num_rows)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Raw batches, every column as text."""
        return self._batches(typed=False)

    def ingest_batches(self) -> Iterator[pa.RecordBatch]:
        """As :meth:`batches`, with the columns that the file stores in their canonical type
        (or one that converts to it exactly: int64 to int32, say) left typed."""
        return self._batches(typed=True)

    def _batches(self, typed: bool) -> Iterator[pa.RecordBatch]:
        first = 1
        mapping = self.header.mapping
        try:
            for batch in self._file.iter_batches(batch_size=self.batch_rows,
                                                 columns=list(mapping)):
                cols = {}
                for name in mapping:
                    arr = batch.column(name)
                    if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
                        arr = arr.cast(pa.timestamp(arr.type.unit))  # wall-clock time
                    cols[mapping[name]] = _as_parsed(arr, mapping[name]) if typed else None
                    if cols[mapping[name]] is None:
                        cols[mapping[name]] = (arr if arr.type == pa.string()
                                               else arr.cast(pa.string()))
                n = batch.num_rows
                self._advance(n)
                yield raw_batch(cols, pa.array(np.arange(first, first + n, dtype=np.int64)))
                first += n
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceError(self.name, first, None, f"cannot read the Parquet data: {e}") from e


def _as_parsed(arr: pa.Array, name: str) -> pa.Array | None:
    """``arr`` in the canonical type of column ``name``, if it is of a parsed kind and its
    values convert exactly (a safe cast); otherwise None (the column goes as text)."""
    if _KIND[name] not in _PARSED_KINDS:
        return None
    target = ARROW_TYPES[name]
    same_family = any(f(arr.type) and f(target) for f in (
        pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_timestamp))
    if not same_family:
        return None
    try:
        return arr.cast(target)  # safe: raises on overflow or lost precision
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
