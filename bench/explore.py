"""Benchmark of the exploration catalog: DuckDB engine vs PySpark local[2] vs pandas.

On the 8M-row scale set (``crimeclass scaleset``: real records resampled), in one
run, each engine as a separate process:

* ``duckdb``: the whole catalog with the DuckDB engine over the store;
* ``spark``: the whole catalog with the Spark engine (``local[2]``) over the
  store's Parquet export, compiled from the same SQL;
* ``pandas``: the same statistics written with pandas over the same Parquet
  export, as a pandas user would (read the columns, then group by);
* ``report``: ``crimeclass explore`` as a user runs it (DuckDB, plots, HTML).

For each: the whole process (start-up included), the queries alone (after the
engine is up; for pandas, reading the Parquet and computing), the CPU seconds
and the peak memory of the process tree (the JVM included). The machine is
shared: wall-clock ratios of one run are the figures to compare, and CPU
seconds say what the work costs whatever the load. Every engine writes its tables,
and the run checks that they agree with DuckDB's, so that the comparison is
between the same numbers. Prints the figures and writes bench/results/explore.json.

Usage::

    python bench/explore.py                   # 8M rows (makes the data the first time)
    python bench/explore.py --rows 1000000    # a smaller run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results" / "explore.json"
TARGETS = {"spark_over_duckdb": 20.0, "pandas_over_duckdb": 5.0, "report_seconds": 15.0,
           "peak_gb": 4.0}


# ------------------------------------------------------------------- pandas


def pandas_catalog(df: Any) -> dict[str, Any]:
    """The catalog's statistics written with pandas (what a pandas user would do).

    ``df`` holds the canonical columns and ``is_index``. Returns DataFrames with the
    catalog's columns, so that the run can compare them with DuckDB's.
    """
    import numpy as np
    import pandas as pd

    from crimeclass.explore import community_areas, police_districts
    from crimeclass.explore._catalog import HEX_GRID
    from crimeclass.explore._filters import PRIMARY_TYPE_ALIASES
    from crimeclass.explore._relations import MISSING_COLUMNS

    out: dict[str, pd.DataFrame] = {}
    df = df.assign(primary_type=df.primary_type.replace(PRIMARY_TYPE_ALIASES))
    n = len(df)
    day = df.date.dt.floor("D")

    # coverage (no filters: the window is everything)
    daily = df.groupby([day.rename("day"), "primary_type"], observed=True).agg(
        count=("date", "size"), with_district=("district", "count")).reset_index()
    ycov = daily.groupby(daily.day.dt.year.rename("year")).agg(
        count=("count", "sum"), days_covered=("day", "nunique"),
        months_covered=("day", lambda d: d.dt.month.nunique()),
        offense_types=("primary_type", "nunique"), with_district=("with_district", "sum"))
    ycov["days_in_year"] = np.where(pd.Index(ycov.index).map(
        lambda y: y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)), 366, 365)
    ycov["complete"] = ((ycov.months_covered == 12)
                        & (ycov.days_covered >= 0.9 * ycov.days_in_year)
                        & (ycov.offense_types >= 0.5 * ycov.offense_types.max()))
    mcov = daily.groupby(daily.day.dt.to_period("M").dt.to_timestamp().rename("month")).agg(
        count=("count", "sum"), days_covered=("day", "nunique"),
        offense_types=("primary_type", "nunique"))
    mcov["complete"] = ((mcov.days_covered >= 0.9 * mcov.index.days_in_month)
                        & (mcov.offense_types >= 0.5 * mcov.offense_types.max()))

    by_year = ycov[["count", "complete"]].copy()
    prev = by_year.shift(1)
    by_year["change"] = np.where(by_year.complete & prev.complete.fillna(False).astype(bool)
                                 & (prev["count"] > 0), by_year["count"] / prev["count"] - 1,
                                 np.nan)
    out["incidents_by_year"] = by_year.reset_index()
    by_month = mcov[["count", "complete"]].copy()
    last_year = by_month.reindex(by_month.index - pd.DateOffset(years=1))
    ok = by_month.complete.to_numpy() & last_year.complete.fillna(False).to_numpy(bool)
    by_month["change"] = np.where(ok, by_month["count"].to_numpy()
                                  / last_year["count"].to_numpy() - 1, np.nan)
    out["incidents_by_month"] = by_month.reset_index().assign(
        month=lambda x: x.month.dt.date)

    grid = df.groupby([df.date.dt.day_of_week + 1, df.date.dt.hour]).size()
    full = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["weekday", "hour"])
    hw = grid.reindex(full, fill_value=0).rename("count").reset_index()
    hw["share"] = hw["count"] / n
    out["hour_by_weekday"] = hw

    t = df.date
    midnight = (t.dt.hour == 0) & (t.dt.minute == 0) & (t.dt.second == 0)
    noon = (t.dt.hour == 12) & (t.dt.minute == 0) & (t.dt.second == 0)
    hour = (t.dt.minute == 0) & (t.dt.second == 0)
    first = midnight & (t.dt.day == 1)
    tp = pd.DataFrame({"recorded_as": ["exactly_midnight", "exactly_noon", "on_the_hour",
                                       "first_of_month_midnight"],
                       "count": [midnight.sum(), noon.sum(), hour.sum(), first.sum()]})
    tp["share"] = tp["count"] / n
    out["time_precision"] = tp

    g = df.groupby("primary_type", dropna=False)
    types = pd.DataFrame({"count": g.size(), "index_count": g.is_index.sum(),
                          "index_share": g.is_index.mean()})
    types["share"] = types["count"] / n
    out["top_primary_types"] = types.reset_index().sort_values(
        ["count", "primary_type"], ascending=[False, True])

    idx = df.groupby("year", observed=True).is_index.agg(["count", "sum"])
    out["index_share_by_year"] = pd.DataFrame({
        "labeled": idx["count"], "index_count": idx["sum"],
        "share": idx["sum"] / idx["count"]}).reset_index()

    def rates(key: str) -> pd.DataFrame:
        g = df.groupby(key, dropna=False, observed=True)
        return pd.DataFrame({"count": g.size(), "arrests": g.arrest.sum(),
                             "arrest_rate": g.arrest.mean(),
                             "domestic_share": g.domestic.mean()}).reset_index()

    out["arrest_rate_by_year"] = rates("year")
    out["arrest_rate_by_type"] = rates("primary_type")
    out["arrest_rate_by_district"] = rates("district").merge(
        police_districts().to_pandas(), on="district", how="left")

    loc = df.location_description.value_counts(dropna=False)
    places = pd.DataFrame({"count": loc, "share": loc / n})
    places["arrest_rate"] = df.groupby("location_description", dropna=False).arrest.mean()
    out["top_location_descriptions"] = places.reset_index().sort_values(
        ["count", "location_description"], ascending=[False, True]).head(25)

    d = df.groupby("district", dropna=False)
    out["incidents_by_district"] = pd.DataFrame({
        "count": d.size(), "first_year": d.year.min(), "last_year": d.year.max()}
    ).assign(share=lambda x: x["count"] / n).reset_index()
    a = df.community_area.value_counts(dropna=False).rename("count").reset_index()
    out["incidents_by_community_area"] = a.assign(share=a["count"] / n).merge(
        community_areas().to_pandas(), on="community_area", how="left")

    pts = df[["longitude", "latitude"]].dropna()
    sy = HEX_GRID["size_km"] * np.sqrt(3.0)
    gx = (pts.longitude.to_numpy() - HEX_GRID["lon0"]) * (HEX_GRID["km_per_lon"]
                                                          / HEX_GRID["size_km"])
    gy = (pts.latitude.to_numpy() - HEX_GRID["lat0"]) * (HEX_GRID["km_per_lat"] / sy)
    x1, y1 = np.floor(gx + 0.5), np.floor(gy + 0.5)
    x2, y2 = np.floor(gx) + 0.5, np.floor(gy) + 0.5
    first_lattice = (gx - x1) ** 2 + 3 * (gy - y1) ** 2 <= (gx - x2) ** 2 + 3 * (gy - y2) ** 2
    hx, hy = np.where(first_lattice, x1, x2), np.where(first_lattice, y1, y2)
    hexes = pd.DataFrame({"hex_col": (2 * hx).astype("int64"),
                          "hex_row": (2 * hy).astype("int64")})
    out["spatial_density"] = hexes.value_counts().rename("count").reset_index()

    out["coverage_by_year"] = ycov.reset_index()
    miss = pd.DataFrame({c: (df[c].isna() if c != "location" else
                             (df.latitude.isna() | df.longitude.isna()))
                         for c in MISSING_COLUMNS if c in df.columns or c == "location"})
    per_year = miss.groupby(df.year, observed=True).sum()
    out["missing_by_year"] = (per_year.div(df.groupby("year", observed=True).size(), axis=0)
                              .stack().rename("share").reset_index()
                              .rename(columns={"level_1": "column_name"}))
    out["missing_by_column"] = pd.DataFrame({"missing": miss.sum(),
                                             "share": miss.mean()}
                                            ).rename_axis("column_name").reset_index()
    out["quarantine_summary"] = pd.DataFrame(columns=["source", "reason", "field", "count"])
    return out


# ------------------------------------------------------------------ workers


def worker(engine: str, args: argparse.Namespace) -> None:
    """One engine in its own process: prints {"queries_s": ...}; writes its tables."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables_dir = Path(args.tables)
    tables_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    if engine == "duckdb":
        from crimeclass.engines import DuckDBEngine
        from crimeclass.explore import compute

        with DuckDBEngine.open_store(args.store) as eng:
            t0 = time.perf_counter()
            ex = compute(eng)
            result["queries_s"] = time.perf_counter() - t0
        tables = ex.tables
    elif engine == "spark":
        from crimeclass.engines import SparkEngine, spark_session
        from crimeclass.explore import compute

        session = spark_session("local[2]", conf={"spark.driver.memory": "3g"})
        with SparkEngine(args.export, session=session) as eng:
            t0 = time.perf_counter()
            ex = compute(eng)
            result["queries_s"] = time.perf_counter() - t0
        session.stop()
        tables = ex.tables
    elif engine == "pandas":
        import pandas as pd

        t0 = time.perf_counter()
        df = pd.read_parquet(args.export)
        df["year"] = df["year"].astype("int64")
        result["load_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        frames = pandas_catalog(df)
        result["compute_s"] = time.perf_counter() - t1
        result["queries_s"] = time.perf_counter() - t0
        tables = {k: pa.Table.from_pandas(v, preserve_index=False) for k, v in frames.items()}
    else:
        raise SystemExit(f"unknown engine {engine}")
    for name, table in tables.items():
        pq.write_table(table, tables_dir / f"{name}.parquet")
    print(json.dumps(result))


# ------------------------------------------------------------------- parent


_TICK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> dict[int, tuple[int, float]]:
    """Resident memory (kB) and CPU seconds of a process and all its descendants (/proc)."""
    out: dict[int, tuple[int, float]] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        try:
            with open(f"/proc/{p}/status") as f:
                rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[p] = (rss, (int(fields[11]) + int(fields[12])) / _TICK)  # utime + stime
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return out


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``: wall seconds, CPU seconds and peak memory of its process tree (the JVM
    included), and the JSON line it prints."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    peak = [0]
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            tree = _tree(proc.pid)
            peak[0] = max(peak[0], sum(rss for rss, _ in tree.values()))
            for p, (_, seconds) in tree.items():
                cpu[p] = max(cpu.get(p, 0.0), seconds)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    last = [line for line in out.splitlines() if line.startswith("{")]
    return {"whole_s": round(wall, 3), "cpu_s": round(sum(cpu.values()), 2),
            "peak_mb": round(peak[0] / 1024, 1), **(json.loads(last[-1]) if last else {})}


def ensure_data(rows: int, data_dir: Path, env: dict[str, str]) -> tuple[Path, Path, Path]:
    """The scale set, its store and its Parquet export (made the first time)."""
    DATA.mkdir(parents=True, exist_ok=True)
    tag = f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else str(rows)
    source, store = DATA / f"scale_{tag}.parquet", DATA / f"scale_{tag}.duckdb"
    export = DATA / f"scale_{tag}_export"
    cli = [sys.executable, "-m", "crimeclass.cli"]
    if not source.exists():
        print(f"making the scale set {source} ...", flush=True)
        subprocess.run([*cli, "scaleset", str(rows), str(source), "--data-dir",
                        str(data_dir)], check=True, env=env, cwd=ROOT)
    if not store.exists():
        print(f"loading it into {store} (about a minute for 8M rows) ...", flush=True)
        subprocess.run([*cli, "ingest", str(source), "--store", str(store), "--json"],
                       check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    if not export.exists():
        print(f"exporting Parquet for Spark and pandas to {export} ...", flush=True)
        subprocess.run([*cli, "export", "--store", str(store), "--out", str(export)],
                       check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return source, store, export


def compare(reference: Path, other: Path) -> dict[str, str]:
    """Which tables of ``other`` differ from DuckDB's (same keys, same values)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from crimeclass.explore import CATALOG

    verdict = {}
    for stat in CATALOG:
        ref = pq.read_table(reference / f"{stat.name}.parquet").to_pandas()
        got = pq.read_table(other / f"{stat.name}.parquet").to_pandas()
        cols = [c for c in ref.columns if c in got.columns]
        keys = [k for k in stat.keys if k in cols]
        try:
            a = ref[cols].sort_values(keys, na_position="last").reset_index(drop=True)
            b = got[cols].sort_values(keys, na_position="last").reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False,
                                          rtol=1e-6, check_categorical=False)
            verdict[stat.name] = "same"
        except (AssertionError, KeyError, ValueError, TypeError) as e:
            verdict[stat.name] = "differs: " + str(e).splitlines()[0][:120]
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["spark", "pandas", "report"], help="leave an engine out")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    parser.add_argument("--tables", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
        return

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    _, store, export = ensure_data(args.rows, args.data, env)
    tmp = Path(tempfile.mkdtemp(prefix="crimeclass-bench-"))
    load = os.getloadavg()
    results: dict[str, Any] = {}
    engines = ["duckdb"] + [e for e in ("spark", "pandas") if e not in args.skip]
    for engine in engines:
        print(f"{engine}: the whole catalog ...", flush=True)
        results[engine] = measure([sys.executable, __file__, "--worker", engine, "--store",
                                   str(store), "--export", str(export), "--tables",
                                   str(tmp / engine)], env)
        print(f"  {results[engine]}", flush=True)
    if "report" not in args.skip:
        print("report: crimeclass explore (DuckDB, plots, HTML) ...", flush=True)
        results["report"] = measure([sys.executable, "-m", "crimeclass.cli", "explore",
                                     "--store", str(store), "--out", str(tmp / "report"),
                                     "--json"], env)
        results["report"] = {k: v for k, v in results["report"].items()
                             if k in ("whole_s", "cpu_s", "peak_mb")}
        print(f"  {results['report']}", flush=True)
    agree = {e: compare(tmp / "duckdb", tmp / e) for e in engines[1:]}

    duck = results["duckdb"]
    ratios: dict[str, Any] = {}
    for e in engines[1:]:
        ratios[f"{e}_over_duckdb"] = {
            "whole": round(results[e]["whole_s"] / duck["whole_s"], 1),
            "queries": round(results[e]["queries_s"] / duck["queries_s"], 1),
            "cpu": round(results[e]["cpu_s"] / duck["cpu_s"], 1)}
    peak_gb = max(r["peak_mb"] for k, r in results.items() if k in ("duckdb", "report")) / 1024
    targets = {
        "spark_over_duckdb >= 20 (whole)": ratios.get("spark_over_duckdb", {}).get("whole"),
        "pandas_over_duckdb >= 5 (whole)": ratios.get("pandas_over_duckdb", {}).get("whole"),
        "report < 15 s": results.get("report", {}).get("whole_s"),
        "peak < 4 GB (DuckDB, report)": round(peak_gb, 2),
    }
    met = {
        "spark_over_duckdb >= 20 (whole)": (targets["spark_over_duckdb >= 20 (whole)"] or 0)
        >= TARGETS["spark_over_duckdb"],
        "pandas_over_duckdb >= 5 (whole)": (targets["pandas_over_duckdb >= 5 (whole)"] or 0)
        >= TARGETS["pandas_over_duckdb"],
        "report < 15 s": (targets["report < 15 s"] or 1e9) < TARGETS["report_seconds"],
        "peak < 4 GB (DuckDB, report)": peak_gb < TARGETS["peak_gb"],
    }
    summary = {
        "benchmark": "exploration catalog", "rows": args.rows,
        "data": "crimeclass scaleset (real records resampled)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_avg_at_start": load,
                    "load_avg_at_end": os.getloadavg()},
        "statistics": len(__import__("crimeclass.explore", fromlist=["CATALOG"]).CATALOG),
        "results": results, "ratios": ratios, "targets": targets, "met": met,
        "tables_agree_with_duckdb": agree,
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"ratios": ratios, "targets": targets, "met": met,
                      "agree": agree}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
