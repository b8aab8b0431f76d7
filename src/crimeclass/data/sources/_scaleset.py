"""Scale sets: N rows resampled from real records, for benchmarks.

A scale set is **resampled**, not real: every row is a copy of a real CPD record
(drawn with replacement, uniformly over all the records of the complete years),
with a fresh ``ID`` from 100,000,000 up so that copies never meet real IDs.
The sidecar ``<OUT>.resampled.json`` (and, for Parquet, the file's metadata)
says so, with the seed and the sources.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from crimeclass.data._errors import SourceError
from crimeclass.data._schema import COLUMNS
from crimeclass.data.sources._files import open_source

__all__ = ["FIRST_SCALE_ID", "scaleset", "scaleset_sources"]

FIRST_SCALE_ID = 100_000_000
_PORTAL_COLUMNS = [c.portal for c in COLUMNS]


def scaleset_sources(data_dir: str | Path) -> list[Path]:
    """The complete-year files of a ``shared/data`` folder (``chicago_crimes_datastore_*``)."""
    files = sorted(Path(data_dir).glob("chicago_crimes_datastore_*"))
    if not files:
        raise SourceError(str(data_dir), None, None,
                          "no chicago_crimes_datastore_* files to resample from")
    return files


def _read_raw(path: Path) -> pa.Table:
    """All rows of a source as canonical text columns (no validation: rows are copied)."""
    src = open_source(path)
    table = pa.Table.from_batches(list(src.batches()))
    return table.select([c.name for c in COLUMNS])


def _portal_text(table: pa.Table, ids: np.ndarray) -> pa.Table:
    """Rows as the portal's 22-column export: fresh IDs, Year and Location filled in."""
    cols: dict[str, pa.Array] = {}
    for c in COLUMNS:
        col = table.column(c.name)
        if c.name == "id":
            col = pa.array(ids.astype(str))
        elif c.name == "year":
            # Year is the year of Date (MM/DD/YYYY ... in the per-year files)
            col = pc.if_else(pc.is_null(col), pc.utf8_slice_codeunits(table.column("date"), 6, 10),
                             col)
        elif c.name == "location":
            lat, lon = table.column("latitude"), table.column("longitude")
            both = pc.and_(pc.is_valid(lat), pc.is_valid(lon))
            text = pc.binary_join_element_wise("(", lat, ", ", lon, ")", "")
            col = pc.if_else(both, text, pa.scalar(None, pa.string()))
        cols[c.portal] = col
    return pa.table(cols)


def scaleset(
    n: int,
    out: str | Path,
    sources: Sequence[str | Path],
    *,
    seed: int = 0,
    chunk_rows: int = 500_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``n`` rows resampled with replacement from ``sources`` to ``out``.

    Parameters
    ----------
    n : int
        Rows to write (up to 20 million and beyond; memory holds one source at a time).
    out : path
        ``.csv``, ``.csv.gz`` (the portal's 22-column format) or ``.parquet``.
    sources : sequence of paths
        Real files to draw from; each row of each is equally likely.
    seed : int
        The same seed gives the same rows.

    Returns
    -------
    dict
        The manifest written beside ``out``.
    """
    out = Path(out)
    name = out.name.lower()
    if not name.endswith((".csv", ".csv.gz", ".parquet")):
        raise ValueError(f"{out}: the output must end in .csv, .csv.gz or .parquet")
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    sizes: list[int | None] = [pq.ParquetFile(p).metadata.num_rows
                               if str(p).endswith(".parquet") else None for p in sources]
    tables: dict[int, pa.Table] = {}
    for i, size in enumerate(sizes):  # CSV sizes need a read; Parquet has them in metadata
        if size is None:
            tables[i] = _read_raw(Path(sources[i]))
            sizes[i] = tables[i].num_rows
    known = [int(s or 0) for s in sizes]
    counts = rng.multinomial(n, np.asarray(known, dtype=float) / sum(known))

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    writer: Any = None
    written = 0
    next_id = FIRST_SCALE_ID
    try:
        for i, path in enumerate(sources):
            if not counts[i]:
                tables.pop(i, None)
                continue
            table = tables.pop(i, None)
            if table is None:
                table = _read_raw(Path(path))
            picks = np.sort(rng.integers(0, table.num_rows, size=counts[i]))
            for start in range(0, len(picks), chunk_rows):
                idx = picks[start:start + chunk_rows]
                ids = np.arange(next_id, next_id + len(idx), dtype=np.int64)
                next_id += len(idx)
                chunk = _portal_text(table.take(pa.array(idx)), ids)
                if writer is None:
                    writer = _writer(tmp, name, chunk.schema, seed)
                writer.write_table(chunk)
                written += len(idx)
                if on_progress:
                    on_progress(written, n)
        writer.close()
        writer = None
        tmp.replace(out)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    manifest = {
        "resampled": True,
        "rows": int(written),
        "seed": seed,
        "first_id": FIRST_SCALE_ID,
        "sources": [Path(p).name for p in sources],
        "rows_per_source": {Path(p).name: int(c) for p, c in zip(sources, counts, strict=True)},
        "note": "Rows drawn with replacement from real Chicago Police Department records "
                "(Chicago Data Portal, 'Crimes - 2001 to Present'); each is a copy of a real "
                "record with a fresh ID. For benchmarks only: not a record of real incidents.",
    }
    Path(f"{out}.resampled.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


class _CsvFile:
    """A CSV writer that closes its (possibly gzipped) file with itself."""

    def __init__(self, tmp: Path, schema: pa.Schema, gzip: bool) -> None:
        self.sink = (pa.CompressedOutputStream(str(tmp), "gzip") if gzip
                     else pa.OSFile(str(tmp), "wb"))
        self.writer = pcsv.CSVWriter(self.sink, schema,
                                     write_options=pcsv.WriteOptions(quoting_style="needed"))

    def write_table(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


def _writer(tmp: Path, name: str, schema: pa.Schema, seed: int) -> Any:
    if name.endswith(".parquet"):
        meta = {b"crimeclass.resampled": b"true", b"crimeclass.seed": str(seed).encode()}
        return pq.ParquetWriter(tmp, schema.with_metadata(meta), compression="zstd")
    return _CsvFile(tmp, schema, gzip=name.endswith(".gz"))
