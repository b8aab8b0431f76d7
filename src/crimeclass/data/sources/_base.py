"""The one shape of every source: a generator of Arrow batches, and its cursor.

A source (a file, a page-by-page web API, a BigQuery read session) is read by
iterating :meth:`Source.batches`: raw :class:`pyarrow.RecordBatch` objects of
:data:`~crimeclass.data._schema.RAW_SCHEMA`. As each batch is handed over, the
source's :attr:`Source.cursor` moves past it: the work done (bytes of a file,
or rows), the rows handed over, and, for a source read in the order of a key
(the portal), the last key read. This is dlt's ``Incremental`` idea: a source
that can resume says where it stands, and whoever stores its batches stores the
cursor with them (the portal's run commits each page with its cursor, so that an
interrupted run resumes after the last page stored).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from crimeclass.data._schema import COLUMN_NAMES, RAW_SCHEMA, HeaderMapping

__all__ = ["BatchSource", "Cursor", "FileSource", "Source", "raw_batch"]


@dataclass(frozen=True)
class Cursor:
    """Where a source stands after the batches it has handed over.

    Parameters
    ----------
    position : int
        Work done, in the unit of :meth:`Source.size` (bytes of a file, or rows).
    rows : int
        Rows handed over.
    key : str or None
        The last key handed over, for a source read in key order; else None.
    """

    position: int = 0
    rows: int = 0
    key: str | None = None


class Source:
    """A stream of raw Arrow batches, with the cursor of what it has handed over.

    Attributes
    ----------
    header : HeaderMapping
        How the source's columns map onto the canonical schema.
    format : str
        ``"csv"``, ``"parquet"``, ``"soda"`` or ``"bigquery"``.
    cursor : Cursor
        Where the source stands (see the module's docstring).

    Examples
    --------
    >>> from crimeclass.data import open_source, sample_files
    >>> source = open_source(sample_files()[-1])
    >>> batch = next(source.batches())
    >>> source.cursor.rows == batch.num_rows, source.cursor.key
    (True, None)
    """

    header: HeaderMapping
    format: str
    cursor: Cursor = Cursor()

    @property
    def name(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def batches(self) -> Iterator[pa.RecordBatch]:  # pragma: no cover - interface
        raise NotImplementedError

    def ingest_batches(self) -> Iterator[pa.RecordBatch]:
        """The batches the ingest validates: :meth:`batches`, except that a source may
        hand over some columns already parsed, in their canonical Arrow type, where it
        parsed them exactly as validation would (CSV: see :class:`CsvSource`)."""
        return self.batches()

    def text_rows(self, lines: Sequence[int]) -> pa.RecordBatch | None:
        """The rows at ``lines`` as text (:data:`RAW_SCHEMA`), for the quarantine's copy of
        rows that :meth:`ingest_batches` handed over typed; None if the source has no text."""
        return None

    def size(self) -> int:  # pragma: no cover - interface
        """Total work, in the unit of :attr:`Cursor.position` (bytes, or rows)."""
        raise NotImplementedError

    def position(self) -> int:
        """Work done so far: ``cursor.position``."""
        return self.cursor.position

    def _advance(self, rows: int, position: int | None = None, key: str | None = None) -> None:
        """Move the cursor past ``rows`` rows handed over."""
        c = self.cursor
        done = c.rows + rows
        self.cursor = Cursor(done if position is None else position, done,
                             c.key if key is None else key)


class FileSource(Source):
    """A source that is one file (:attr:`path`)."""

    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def size(self) -> int:
        return self.path.stat().st_size


def raw_batch(columns: dict[str, pa.Array], lines: pa.Array, reject: pa.Array | None = None,
              raw: pa.Array | None = None) -> pa.RecordBatch:
    """A batch of :data:`RAW_SCHEMA`'s columns (a column may be typed, see
    :meth:`Source.ingest_batches`; a missing one is null text)."""
    n = len(lines)
    arrays = [columns.get(c) or pa.nulls(n, pa.string()) for c in COLUMN_NAMES]
    arrays += [lines, reject if reject is not None else pa.nulls(n, pa.string()),
               raw if raw is not None else pa.nulls(n, pa.string())]
    fields = [RAW_SCHEMA.field(i).with_type(a.type) for i, a in enumerate(arrays)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


class BatchSource(Source):
    """One batch already read from another source, as a source: what a run that commits
    batch by batch (the portal's) hands to the store.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        The raw rows.
    name : str
        Where they came from (the quarantine shows it).
    header : HeaderMapping
        The header of the source they came from.
    format : str
        That source's format.
    """

    def __init__(self, batch: pa.RecordBatch, *, name: str, header: HeaderMapping,
                 format: str) -> None:
        self.batch = batch
        self.header = header
        self.format = format
        self._name = name
        self.cursor = Cursor()

    @property
    def name(self) -> str:
        return self._name

    def size(self) -> int:
        return self.batch.num_rows

    def batches(self) -> Iterator[pa.RecordBatch]:
        self._advance(self.batch.num_rows)
        yield self.batch
