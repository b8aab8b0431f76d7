"""Online history index benchmark: one incident at a time against a whole store.

Builds :class:`~crimeclass.features.HistoryIndex` from the incidents of a store up to 30 days
before its newest, then asks the history sums of the incidents of those last 30 days one at a
time, in date order, adding each after its query (as a service that also takes new incidents
would), and records the build time, the index's array bytes, the process's peak memory
(VmHWM) and the latency of each query (p50, p99, max). A bounded loop: ``--incidents`` queries
at most.

The store is the 8M-row scale set of bench/features.py (``crimeclass scaleset``: real rows
resampled with fresh IDs), made there on its first run.

Run: ``python bench/online.py [--rows 8000000] [--incidents 5000]``.
Results: bench/results/online.json (one entry per row count).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "online.json"


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    return float("nan")  # pragma: no cover


def measure(store: Path, incidents: int) -> dict[str, Any]:
    import duckdb

    from crimeclass.features import FeatureSpec, HistoryIndex

    con = duckdb.connect(str(store), read_only=True)
    newest = con.sql("SELECT max(date) FROM incidents").fetchall()[0][0]
    cut = (newest - dt.timedelta(days=30)).isoformat(sep=" ")
    t0 = time.perf_counter()
    index = HistoryIndex.from_connection(con, FeatureSpec(), until=cut)
    built = time.perf_counter() - t0
    con.execute(f"CREATE TEMP VIEW recent AS SELECT * FROM incidents "
                f"WHERE date >= TIMESTAMP '{cut}'")
    rows = index.rows(con, "recent")[:incidents]
    latency = np.empty(len(rows))
    for i, row in enumerate(rows):
        t = time.perf_counter()
        index.sums(row)
        latency[i] = time.perf_counter() - t
        index.add(row)
    ms = latency * 1e3
    return {"held": len(index) - len(rows), "queries": len(rows), "build_s": round(built, 1),
            "arrays_gb": round(index.nbytes() / 1e9, 2), "peak_gb": round(_peak_mb() / 1e3, 2),
            "p50_ms": round(float(np.median(ms)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "max_ms": round(float(ms.max()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--incidents", type=int, default=5_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    a = parser.parse_args()
    from features import scale_store  # bench/features.py: the same scale set

    entry = {"rows": a.rows, "load_before": os.getloadavg()[0],
             "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             **measure(scale_store(a.data, a.rows), a.incidents)}
    print(json.dumps(entry))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[str(a.rows)] = entry
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
