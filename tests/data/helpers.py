"""Building small CSV files from real sample lines, for bad-input tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path

#: The per-year layout of the bundled main sample (20 columns), by position.
FIELD = {name: i for i, name in enumerate(
    ["ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description",
     "Location Description", "Arrest", "Domestic", "Beat", "District", "Ward",
     "Community Area", "FBI Code", "X Coordinate", "Y Coordinate", "Updated On",
     "Latitude", "Longitude"])}


def fields(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


def with_fields(line: str, **changes: str) -> str:
    """A CSV line with fields replaced, by portal name with spaces as underscores."""
    row = fields(line)
    for name, value in changes.items():
        row[FIELD[name.replace("_", " ")]] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    return out.getvalue()


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "".join(lines), encoding="utf-8")
    return path
