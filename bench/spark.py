"""Spark benchmark: features and XGBoost on Spark (local[1], local[2]) against one machine.

Each method runs in a fresh process on the same data, one after the other, and reports its
wall seconds, the CPU seconds of the Python process, of Spark's JVM and of the Python workers
the JVM starts, and the peak memory (VmHWM) of each (of the workers: the largest peak and
the sum of their peaks, recorded since 2026-12-07); the ratios are taken within the run,
since the shared cores' speed drifts.

- ``single_features``: ``read_features`` of every feature on the store (DuckDB, the kernel).
- ``spark_features_1`` / ``_2``: the same feature query on Spark (``spark_features``, history
  as window frames) over the store's Parquet export, written to Spark's ``noop`` sink, on
  ``local[1]`` / ``local[2]``.
- ``single_xgb``: ``train`` of XGBoost alone (no baselines, one trial on a 50,000-row search
  sample; the refit on every training row is what grows).
- ``spark_xgb_1`` / ``_2``: ``spark_train`` of XGBoost (``num_workers`` 1 / 2).

The data is the scale set of ``--rows`` resampled rows (``crimeclass scaleset``, made once
under bench/data/ as bench/features.py makes it), or ``--store`` for a quick run on any
store (the bundled sample, say). Published for scale (szilard/GBM-perf, xgboost4j-spark on
one 8-core machine): 1M rows 51.8 s with 1 worker, 37.5 s with 4, against 12.7 s on one node;
10M rows 511 s with 1 worker, 126 s with 8.

Run: ``python bench/spark.py --data ../shared/data --rows 1000000 [--methods ...]`` for each
of 1M, 4M, 8M (and 16M where memory allows). Results: bench/results/spark.json, a key per
row count (and ``--driver-memory`` where set); a later run of some methods keeps the others.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "spark.json"
METHODS = ("single_features", "spark_features_1", "spark_features_2", "single_xgb",
           "spark_xgb_1", "spark_xgb_2")


def _status(pid: int | str) -> dict[str, float]:
    """CPU seconds and peak memory (MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    peak = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
                .splitlines() if line.startswith("VmHWM:"))
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / ticks, "peak_mb": peak / 1e3}


def _workers(jvm: int) -> dict[str, float]:
    """CPU seconds of the processes Spark's JVM started and still runs (its Python daemon
    and workers: encoding, scoring, XGBoost), which its own counters leave out, and the
    largest peak memory (VmHWM, MB) among them and the sum of their peaks."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    below = {jvm}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in below and pid not in below:
                below.add(pid)
                changed = True
    cpu, peaks = 0.0, [0.0]
    for pid in below - {jvm}:
        try:
            got = _status(pid)
        except (OSError, StopIteration):
            continue
        cpu += got["cpu_s"]
        peaks.append(got["peak_mb"])
    return {"cpu_s": cpu, "peak_mb": max(peaks), "peaks_sum_mb": sum(peaks)}


def _export(store: Path) -> Path:
    """The store's incidents as Parquet with key and label (made once, beside the store)."""
    from crimeclass.data import Store
    from crimeclass.engines import sql_literal

    out = store.with_suffix(".parquet.d")
    if not out.exists():
        with Store(store, read_only=True) as st:
            st.con.execute(f"COPY ({st.canonical_sql(extra=('key', 'is_index'))}) TO "
                           f"{sql_literal(out)} (FORMAT parquet, PARTITION_BY (year))")
    return out


def _child(method: str, store: Path, runs: Path, driver_memory: str) -> dict[str, Any]:
    from crimeclass.engines import DuckDBEngine, SparkEngine, spark_session
    from crimeclass.features import FeatureSpec, read_features, spark_features
    from crimeclass.models import TrainConfig, spark_train, train

    spec = FeatureSpec()
    config = TrainConfig(models=("xgb",), baselines=False, trials=1, folds=2,
                         search_sample=50_000, features=spec)
    parquet = _export(store)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if method == "single_features":
        import duckdb

        with duckdb.connect(str(store), read_only=True) as con:
            out["rows"] = len(read_features(DuckDBEngine(con), spec, memory_limit="3GB"))
    elif method == "single_xgb":
        result = train(store, config, runs_dir=runs)
        out["rows"] = result.metrics["train"]["rows"]
        out["roc_auc"] = result.metrics["models"][0]["metrics"]["roc_auc"]
    else:
        workers = int(method[-1])
        # local mode runs the executors inside the driver's JVM: its heap is Spark's memory
        session = spark_session(f"local[{workers}]",
                                conf={"spark.driver.memory": driver_memory})
        jvm = session.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
        t0 = time.perf_counter()
        if method.startswith("spark_features"):
            with SparkEngine.from_input(parquet, session=session) as engine:
                frame = spark_features(engine, spec)
                frame.write.format("noop").mode("overwrite").save()
                out["rows"] = frame.count()
        else:
            result = spark_train(parquet, config, runs_dir=runs, session=session,
                                 num_workers=workers)
            out["rows"] = result.metrics["train"]["rows"]
            out["roc_auc"] = result.metrics["models"][0]["metrics"]["roc_auc"]
        out["jvm"] = {k: round(v, 1) for k, v in _status(jvm).items()}
        workers_used = _workers(jvm)
        out["spark_python_cpu_s"] = round(workers_used["cpu_s"], 1)
        out["spark_python_peak_mb"] = round(workers_used["peak_mb"], 1)
        out["spark_python_peaks_sum_mb"] = round(workers_used["peaks_sum_mb"], 1)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["python"] = {k: round(v, 1) for k, v in _status("self").items()}
    return out


def _run(method: str, store: Path, runs: Path, limit: float, driver_memory: str
         ) -> dict[str, Any]:
    try:
        done = subprocess.run([sys.executable, __file__, "--child", method, "--store",
                               str(store), "--runs", str(runs), "--driver-memory",
                               driver_memory], capture_output=True,
                              text=True, timeout=limit, check=False, env=_env())
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "limit_s": limit}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"status": "error", "error": done.stderr[-1500:]}
    return {"status": "ok", **json.loads(lines[-1])}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _ratios(entry: dict[str, Any]) -> None:
    """Each Spark method's wall time over the single machine's, within this run."""
    for spark, single in (("spark_features_1", "single_features"),
                          ("spark_features_2", "single_features"),
                          ("spark_xgb_1", "single_xgb"), ("spark_xgb_2", "single_xgb")):
        a, b = entry.get(spark, {}), entry.get(single, {})
        if a.get("status") == b.get("status") == "ok":
            entry[f"{spark}_over_single"] = round(a["seconds"] / b["seconds"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, help="a store to use instead of the scale set")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--limit", type=float, default=3600, help="seconds per method")
    parser.add_argument("--driver-memory", default="1g",
                        help="spark.driver.memory: the heap of local mode's one JVM (Spark's "
                             "default, 1g; another value is kept under its own key)")
    parser.add_argument("--child")
    parser.add_argument("--runs", type=Path)
    a = parser.parse_args()
    if a.child:
        print(json.dumps(_child(a.child, a.store, a.runs, a.driver_memory)))
        return
    key = str(a.rows) if a.store is None else a.store.name
    if a.driver_memory != "1g":
        key += f"_driver-memory-{a.driver_memory}"
    if a.store is None:
        sys.path.insert(0, str(ROOT / "bench"))
        from features import scale_store  # the scale set, made once (bench/features.py)

        a.store = scale_store(a.data, a.rows)
    runs = ROOT / "bench" / "data" / "spark-runs"
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    # the methods of an earlier run of the same key are kept; each method says when it ran
    entry: dict[str, Any] = results.get(key) or {
        "store": str(a.store), "driver_memory": a.driver_memory,
        "load_before": os.getloadavg()[0],
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for method in a.methods.split(","):
        started = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "load_before": os.getloadavg()[0]}
        entry[method] = {**started, **_run(method, a.store, runs, a.limit, a.driver_memory)}
        print(method, json.dumps(entry[method]), flush=True)
    _ratios(entry)
    results[key] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
