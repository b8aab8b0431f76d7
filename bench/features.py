"""Feature benchmark: the history windows by kernel, by DuckDB's window frames, and by polars.

Each method runs in a fresh process on the same store, one after the other, and reports
its wall and CPU seconds and its peak memory (VmHWM); the ratios are taken within the run,
since the shared cores' speed drifts between runs.

- ``kernel``: ``read_features`` of every feature, history by the vectorized kernel (the
  default path of ``crimeclass train``).
- ``window_sql``: the same frame with the history windows as DuckDB window frames (the
  path before the kernel; the definition that Spark runs).
- ``kernel_sums``: the history sums alone, by the kernel.
- ``polars_sums``: the same sums as a user would write them instead: for each kind of
  place, polars' ``rolling`` over the rows sorted by place and time (``closed="left"``,
  the same strict window), one aggregation per window length.

The store is the 8M-row scale set (``crimeclass scaleset``: real rows resampled with fresh
IDs), made and ingested under bench/data/ on the first run.

Run: ``python bench/features.py --data ../shared/data [--rows 8000000] [--methods ...]``.
Results: bench/results/features.json (one entry per row count).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "features.json"
METHODS = ("kernel", "window_sql", "kernel_sums", "polars_sums")


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM, not ru_maxrss: see bench/train.py)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # pragma: no cover


def scale_store(data_dir: Path, rows: int) -> Path:
    """The scale set of ``rows`` resampled rows, ingested into a store (made once)."""
    folder = ROOT / "bench" / "data"
    store = folder / f"scale_{rows}.duckdb"
    if store.exists():
        return store
    folder.mkdir(parents=True, exist_ok=True)
    parquet = folder / f"scale_{rows}.parquet"
    cli = [sys.executable, "-m", "crimeclass"]
    if not parquet.exists():
        subprocess.run([*cli, "scaleset", str(rows), str(parquet), "--data-dir", str(data_dir)],
                       check=True, env=_env())
    subprocess.run([*cli, "ingest", str(parquet), "--store", str(store)], check=True,
                   env=_env())
    return store


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ------------------------------------------------------------------ children


def _child(method: str, store: str) -> dict[str, Any]:
    import duckdb

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import FeatureSpec, history_sums, read_features

    con = duckdb.connect(store, read_only=True)
    spec = FeatureSpec()
    t0, c0 = time.perf_counter(), time.process_time()
    if method in ("kernel", "window_sql"):
        frame = read_features(DuckDBEngine(con), spec,
                              history="kernel" if method == "kernel" else "sql",
                              memory_limit="3GB")
        rows, cols = frame.shape
    elif method == "kernel_sums":
        sums = history_sums(con, spec)
        rows, cols = sums.num_rows, sums.num_columns - 1
    else:
        rows, cols = _polars_sums(con, spec)
    return {"rows": rows, "columns": cols, "seconds": round(time.perf_counter() - t0, 1),
            "cpu_s": round(time.process_time() - c0, 1), "peak_mb": round(_peak_mb())}


def _polars_sums(con: Any, spec: Any) -> tuple[int, int]:
    """The history sums with polars' rolling windows, one kind of place at a time."""
    import polars as pl

    from crimeclass.features._sql import history_rows_sql

    rows = pl.from_arrow(con.sql(history_rows_sql(spec)).to_arrow_table())
    rows = rows.with_columns(pl.from_epoch("_us", time_unit="us").alias("t"),
                             pl.col("is_index").fill_null(False).cast(pl.Int32))
    columns = 0
    for place in sorted({w.place for w in spec.history}):
        part = rows.filter(pl.col(f"p_{place}").is_not_null()).sort(f"p_{place}", "t")
        for w in (w for w in spec.history if w.place == place):
            sums = part.rolling(index_column="t", period=f"{w.days}d", closed="left",
                                group_by=f"p_{place}").agg(pl.len().alias("n"),
                                                           pl.col("is_index").sum().alias("k"))
            columns += 2
            del sums
    return rows.height, columns


# ------------------------------------------------------------------ parent


def _run(method: str, store: Path, limit: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, "--child", method, "--store",
                              str(store)], capture_output=True, text=True, timeout=limit,
                             env=_env(), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "limit_s": limit}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"status": "error", "error": out.stderr[-1500:]}
    return {"status": "ok", "process_s": round(time.perf_counter() - t0, 1),
            **json.loads(lines[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--limit", type=float, default=1800, help="seconds per method")
    parser.add_argument("--child")
    parser.add_argument("--store")
    a = parser.parse_args()
    if a.child:
        print(json.dumps(_child(a.child, a.store)))
        return
    store = scale_store(a.data, a.rows)
    entry: dict[str, Any] = {"rows": a.rows, "load_before": os.getloadavg()[0],
                             "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for method in a.methods.split(","):
        entry[method] = _run(method, store, a.limit)
        print(method, json.dumps(entry[method]))
    _ratios(entry)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[str(a.rows)] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def _ratios(entry: dict[str, Any]) -> None:
    """Each comparison's time over crimeclass's, within this run."""
    pairs = {"window_sql_over_kernel": ("window_sql", "kernel"),
             "polars_over_kernel_sums": ("polars_sums", "kernel_sums")}
    for name, (other, ours) in pairs.items():
        a, b = entry.get(other, {}), entry.get(ours, {})
        if a.get("status") == b.get("status") == "ok":
            entry[name] = {"wall": round(a["seconds"] / b["seconds"], 2),
                           "cpu": round(a["cpu_s"] / b["cpu_s"], 2)}
            print(f"{name}: {entry[name]['wall']}x wall, {entry[name]['cpu']}x CPU")


if __name__ == "__main__":
    main()
