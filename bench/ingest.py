"""Ingest benchmark: crimeclass against what users run instead, in the same run.

Each tool runs as a whole process (start-up included) on the same input; the
script records wall time, rows per second and peak memory (max RSS) and the
ratio of each tool's time to crimeclass's. Inputs:

- ``ref``: 2012-2017 of ../shared/data as one plain CSV (1.7M real rows, 345 MB),
  the file of the figures quoted in issue 2;
- ``all``: every crime file of ../shared/data (29 files, 6.8M real rows, every
  header variant; other tools read each file as it is);
- ``scale``: an 8M-row scale set (``crimeclass scaleset``: real rows resampled
  with fresh IDs), as one portal CSV.

Besides the readers, ``pyarrow_into_duckdb`` reads each file whole with pyarrow (types
inferred) and copies it into a DuckDB file, with no validation, labels or keys: the least a
DuckDB store of the rows costs, for scale.

Each tool's figure is the fastest of ``--repeat`` runs (the usual way to take the
noise of shared cores out of a timing), with its CPU seconds (user + system, its
children included), which another process on the same cores disturbs far less
than wall time; the load average before each set is recorded beside it.

Run: ``python bench/ingest.py --data ../shared/data [--sets ref,all,scale] [--repeat N] [--quick]``.
Results: bench/results/ingest.json and bench/results/ingest.md; a run of some
sets replaces those sets and keeps the others.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORTAL_FORMAT = "%m/%d/%Y %I:%M:%S %p"

# Each tool is a Python program reading the files in sys.argv[2:] (sys.argv[1]: a work folder)
# and printing the number of rows it loaded.
TOOLS: dict[str, str] = {
    "crimeclass": """
import sys
from pathlib import Path
from crimeclass.data import Store, expand_paths
n = 0
with Store(Path(sys.argv[1]) / "bench.duckdb") as store:  # what `crimeclass ingest` runs
    for f in expand_paths(sys.argv[2:]):
        n += store.ingest_path(f).check().read
print(n)
""",
    "duckdb_read_csv": """
import sys, duckdb
con = duckdb.connect(sys.argv[1] + "/bare.duckdb")
n = 0
for i, f in enumerate(sys.argv[2:]):
    reader = "read_parquet" if f.endswith(".parquet") else "read_csv"
    con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {reader}('{f}')")
    n += con.execute(f"SELECT count(*) FROM t{i}").fetchall()[0][0]
print(n)
""",
    "pyarrow_into_duckdb": """
import sys, duckdb, pyarrow.csv as pcsv, pyarrow.parquet as pq
con = duckdb.connect(sys.argv[1] + "/arrow.duckdb")
n = 0
for i, f in enumerate(sys.argv[2:]):
    t = pq.read_table(f) if f.endswith(".parquet") else pcsv.read_csv(f)  # types inferred
    con.execute(f"CREATE TABLE t{i} AS SELECT * FROM t")  # no validation, labels or keys
    n += t.num_rows
    del t
print(n)
""",
    "polars": f"""
import sys, polars as pl
n = 0
for f in sys.argv[2:]:
    if f.endswith(".parquet"):
        df = pl.read_parquet(f)
    else:
        df = pl.read_csv(f, infer_schema_length=10000)
    for col in ("Date", "Updated On"):
        if col in df.columns and df[col].dtype == pl.String:
            df = df.with_columns(pl.col(col).str.to_datetime("{PORTAL_FORMAT}", strict=False))
    n += df.height
print(n)
""",
    "pandas_pyarrow_engine": f"""
import sys, pandas as pd
n = 0
for f in sys.argv[2:]:
    df = pd.read_parquet(f) if f.endswith(".parquet") else pd.read_csv(f, engine="pyarrow")
    for col in ("Date", "Updated On"):
        if col in df.columns and df[col].dtype == object:
            df[col] = pd.to_datetime(df[col], format="{PORTAL_FORMAT}", errors="coerce")
    n += len(df)
print(n)
""",
    "pandas_explicit_format": f"""
import sys, pandas as pd
n = 0
for f in sys.argv[2:]:
    df = pd.read_parquet(f) if f.endswith(".parquet") else pd.read_csv(f, low_memory=False)
    for col in ("Date", "Updated On"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], format="{PORTAL_FORMAT}", errors="coerce")
    n += len(df)
print(n)
""",
    "pandas_parse_dates": """
import sys, pandas as pd
n = 0
for f in sys.argv[2:]:
    if f.endswith(".parquet"):
        df = pd.read_parquet(f)
    else:
        head = pd.read_csv(f, nrows=0).columns
        df = pd.read_csv(f, parse_dates=[c for c in ("Date", "Updated On") if c in head],
                         low_memory=False)
    n += len(df)
print(n)
""",
}
SLOW_TOOLS = {"pandas_parse_dates", "pandas_explicit_format"}


def run_best(name: str, files: list[Path], work: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` runs of a tool, with every run's wall seconds."""
    runs = [run_tool(name, files, work) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "runs_seconds": [r["seconds"] for r in runs]}


def run_tool(name: str, files: list[Path], work: Path) -> dict:
    """Run one tool as a process; wall and CPU seconds and peak RSS of it and its children."""
    folder = Path(tempfile.mkdtemp(dir=work))
    script = folder / "tool.py"
    script.write_text(TOOLS[name])
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), str(folder), *map(str, files)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    shutil.rmtree(folder, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name} failed:\n{err[-2000:]}")
    rows = int(out.strip().splitlines()[-1])
    return {"tool": name, "seconds": round(seconds, 2), "rows": rows,
            "rows_per_second": round(rows / seconds),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def make_inputs(data: Path, work: Path, sets: list[str], scale_rows: int) -> dict[str, list[Path]]:
    inputs: dict[str, list[Path]] = {}
    if "ref" in sets:
        ref = work / "crimes_2012_2017.csv"
        if not ref.exists():
            with ref.open("wb") as out:
                for i, year in enumerate(range(2012, 2018)):
                    with gzip.open(data / f"chicago_crimes_datastore_{year}.csv.gz", "rb") as f:
                        if i:
                            f.readline()
                        shutil.copyfileobj(f, out, 1 << 24)
        inputs["ref"] = [ref]
    if "all" in sets:
        inputs["all"] = sorted(data.glob("chicago_crimes_*"))
    if "scale" in sets:
        scale = work / f"scale_{scale_rows // 1_000_000}m.csv"
        if not scale.exists():
            subprocess.run([sys.executable, "-m", "crimeclass.cli", "scaleset", str(scale_rows),
                            str(scale), "--data-dir", str(data), "--json"], check=True,
                           capture_output=True)
        inputs["scale"] = [scale]
    return inputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--sets", default="ref,all,scale")
    ap.add_argument("--scale-rows", type=int, default=8_000_000)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--quick", action="store_true",
                    help="skip the slow pandas variants on the 'all' and 'scale' sets")
    ap.add_argument("--work", type=Path, default=HERE / "data")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each tool; the fastest is reported")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sets = args.sets.split(",")
    inputs = make_inputs(args.data, args.work, sets, args.scale_rows)
    out = HERE / "results"
    previous = out / "ingest.json"
    results: dict = json.loads(previous.read_text()) if previous.exists() else {}
    results.update({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%d %H:%M"),
    })
    results.setdefault("sets", {})
    for name, files in inputs.items():
        size = sum(f.stat().st_size for f in files)
        load = os.getloadavg()
        print(f"\n== {name}: {len(files)} file(s), {size / 1e6:,.0f} MB, load {load}", flush=True)
        rows = []
        for tool in args.tools.split(","):
            if args.quick and name != "ref" and tool in SLOW_TOOLS:
                continue
            r = run_best(tool, files, args.work, args.repeat)
            rows.append(r)
            print(f"{tool:24s} {r['seconds']:8.2f} s {r['cpu_seconds']:8.2f} cpu "
                  f"{r['rows']:>11,} rows "
                  f"{r['rows_per_second']:>11,} rows/s {r['peak_rss_mb']:>6,} MB", flush=True)
        ours = next(r for r in rows if r["tool"] == "crimeclass")["seconds"]
        for r in rows:
            r["time_vs_crimeclass"] = round(r["seconds"] / ours, 2)
        results["sets"][name] = {"files": len(files), "bytes": size, "results": rows,
                                 "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                 "repeat": args.repeat, "load_before": load}
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "ingest.md").write_text(markdown(results))
    print("\n" + markdown(results))


def markdown(results: dict) -> str:
    lines = []
    for name, s in results["sets"].items():
        when = f", {s['when']}, best of {s['repeat']}" if "when" in s else ""
        lines.append(f"\n**{name}** ({s['files']} file(s), {s['bytes'] / 1e6:,.0f} MB{when})\n")
        lines.append("| tool | seconds | CPU s | rows/s | peak MB | time ÷ crimeclass |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for r in s["results"]:
            cpu = f"{r['cpu_seconds']:.1f}" if "cpu_seconds" in r else "–"
            lines.append(f"| {r['tool']} | {r['seconds']:.1f} | {cpu} | {r['rows_per_second']:,} | "
                         f"{r['peak_rss_mb']:,} | {r['time_vs_crimeclass']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
