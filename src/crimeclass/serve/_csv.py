"""An uploaded CSV export, scored: read by the data layer's CSV source, as ingest reads it."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crimeclass.data import SourceError, open_source
from crimeclass.serve._errors import ServeError
from crimeclass.serve._incidents import blank_ignored, validate_batch
from crimeclass.serve._schemas import MAX_INCIDENTS
from crimeclass.serve._scoring import Serving

__all__ = ["OUTPUT_FIELDS", "score_csv_bytes"]

#: Columns of the scored CSV.
OUTPUT_FIELDS = ("line", "id", "probability", "probability_calibrated", "decision",
                 "history_complete", "reason_1", "reason_2", "reason_3", "errors")


def _read(data: bytes) -> tuple[pa.RecordBatch, list[int]]:
    """The file's raw rows as one batch (``_line``: 0, 1, ...), and their file lines."""
    fd, name = tempfile.mkstemp(suffix=".csv", prefix="crimeclass-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        batches = list(open_source(Path(name)).batches())
    except SourceError as e:
        raise ServeError(f"the file cannot be read as a crimeclass CSV: {e.message}",
                         field="file") from e
    finally:
        os.unlink(name)
    table = pa.Table.from_batches(batches).combine_chunks() if batches else None
    if table is None or not table.num_rows:
        raise ServeError("the file holds no incident", field="file")
    if table.num_rows > MAX_INCIDENTS:
        raise ServeError(f"the file holds {table.num_rows:,} incidents; at most "
                         f"{MAX_INCIDENTS:,} at a time", field="file")
    lines = table.column("_line").to_pylist()
    i = table.schema.get_field_index("_line")
    table = table.set_column(i, "_line", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    return table.to_batches()[0], lines


def _reason(r: dict[str, Any]) -> str:
    return f"{r['feature']} ({r['contribution']:+.3f})"


def score_csv_bytes(serving: Serving, data: bytes) -> tuple[str, int]:
    """The scored CSV of an uploaded export, and how many incidents it held."""
    batch, lines = _read(data)
    results = serving.score(validate_batch(blank_ignored(batch)), batch.num_rows)
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=OUTPUT_FIELDS, lineterminator="\n")
    w.writeheader()
    for line, r in zip(lines, results, strict=True):
        reasons = [_reason(x) for x in r.get("reasons", [])] + ["", "", ""]
        w.writerow({"line": line, "id": r.get("id"), "probability": r.get("probability"),
                    "probability_calibrated": r.get("probability_calibrated"),
                    "decision": r.get("decision"), "history_complete": r.get("history_complete"),
                    "reason_1": reasons[0], "reason_2": reasons[1], "reason_3": reasons[2],
                    "errors": ";".join(f"{e['field']}:{e['reason']}"
                                       for e in r.get("errors", []))})
    return out.getvalue(), batch.num_rows
