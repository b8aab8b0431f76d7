"""Build the small real sample shipped in src/crimeclass/data/sample/ from ../shared/data.

Rows are drawn at random (fixed seed) and kept verbatim: CSV lines are copied
as they are; the 2001-2011 Parquet rows (all text) are written as CSV lines of
the same 20-column layout. Run: ``python scripts/make_sample.py [DATA_DIR]``.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq

SEED = 20261125
OUT = Path(__file__).resolve().parents[1] / "src/crimeclass/data/sample"
PER_YEAR = {**dict.fromkeys(range(2001, 2012), 2000), **dict.fromkeys(range(2012, 2018), 4000)}
VARIANTS = {  # file in shared/data -> rows to keep
    "chicago_crimes_2022_slim.csv.gz": 1_000,
    "chicago_crimes_2023_11_oneyear_variant.csv.gz": 500,
    "chicago_crimes_2025_01_api_sample.csv.gz": 500,
    "chicago_crimes_2025_02.csv.gz": 1_000,
    "chicago_crimes_2026_05_partial.csv.gz": 500,
    "chicago_crimes_homicides_2001_2024.csv.gz": 500,
}


def _lines(path: Path) -> tuple[str, list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        header = f.readline()
        return header, f.readlines()


def _pick(lines: list[str], n: int, rng: random.Random) -> list[str]:
    keep = sorted(rng.sample(range(len(lines)), min(n, len(lines))))
    return [lines[i] for i in keep]


def _write(path: Path, header: str, lines: list[str]) -> None:
    with gzip.GzipFile(path, "wb", mtime=0, compresslevel=9) as f:  # reproducible bytes
        f.write((header + "".join(lines)).encode("utf-8"))
    print(f"{path.name}: {len(lines):,} rows")


def main(data_dir: Path) -> None:
    rng = random.Random(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    header = None
    rows: list[str] = []
    for year, n in PER_YEAR.items():
        parquet = data_dir / f"chicago_crimes_datastore_{year}.parquet"
        if parquet.exists():
            table = pq.read_table(parquet)
            keep = sorted(rng.sample(range(table.num_rows), n))
            picked = table.take(keep).to_pylist()
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            if header is None:
                w.writerow(table.column_names)
            for r in picked:
                w.writerow(["" if r[c] is None else r[c] for c in table.column_names])
            text = buf.getvalue().splitlines(keepends=True)
            if header is None:
                header, text = text[0], text[1:]
            rows += text
        else:
            h, lines = _lines(data_dir / f"chicago_crimes_datastore_{year}.csv.gz")
            assert header is None or h == header, (h, header)
            header = header or h
            rows += _pick(lines, n, rng)
    _write(OUT / "chicago_crimes_2001_2017_sample.csv.gz", header or "", rows)
    for name, n in VARIANTS.items():
        h, lines = _lines(data_dir / name)
        _write(OUT / name.replace(".csv.gz", "_sample.csv.gz")
               if "sample" not in name else OUT / name, h, _pick(lines, n, rng))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data"))
