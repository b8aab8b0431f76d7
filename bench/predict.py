"""Batch prediction: throughput and peak memory of ``crimeclass predict`` on a large export.

Compared, in the same run, with what a user would write instead: ingest the file
into a store, compute every feature into one pandas frame (``read_features``) and
call ``predict_proba`` on it. Each way runs in its own process; its peak resident
memory is the process's ``ru_maxrss``.

    python bench/predict.py --run runs/<id> --input bench/data/crimes_2012_2017.csv \
        --store history.duckdb --rows 500000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "predict.json"


def _head(src: Path, rows: int, dst: Path) -> int:
    """The header and the first ``rows`` lines of a CSV export."""
    n = 0
    with src.open("rb") as f, dst.open("wb") as out:
        for line in f:
            out.write(line)
            n += 1
            if n > rows:
                break
    return n - 1


def _child(mode: str, args: argparse.Namespace, inp: Path, work: Path) -> dict:
    code = {"stream": _STREAM, "in_memory": _IN_MEMORY}[mode]
    t0 = time.perf_counter()
    out, err = work / "stdout", work / "stderr"
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen([sys.executable, "-c", code, str(args.run), str(inp),
                                 str(work), str(args.store or ""), str(args.chunk_rows),
                                 args.memory_limit],
                                stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{mode} failed:\n{err.read_text()[-3000:]}")
    info = json.loads(out.read_text().strip().splitlines()[-1])
    return {**info, "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


_STREAM = """
import json, sys
from pathlib import Path
from crimeclass.models import PredictOptions, predict
run, inp, work, store, chunk, limit = sys.argv[1:]
r = predict(run, inp, Path(work) / "out.parquet", history_store=store or None,
            options=PredictOptions(chunk_rows=int(chunk), memory_limit=limit))
print(json.dumps({"rows": r.scored, "quarantined": r.quarantined, "seconds": r.seconds}))
"""

_IN_MEMORY = """
import json, sys, time
from pathlib import Path
from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine
from crimeclass.features import read_features
from crimeclass.models import open_run
run, inp, work, store, chunk, limit = sys.argv[1:]
t0 = time.perf_counter()
m = open_run(run).load_model()
model, manifest, spec = m.pipeline, m.manifest, m.spec
with Store(Path(work) / "s.duckdb") as s:
    s.ingest_path(inp)
    frame = read_features(DuckDBEngine.from_store(s), spec, labeled_only=False)
p = model.predict_proba(frame[["date", *manifest["features"]]])[:, 1]
print(json.dumps({"rows": len(p), "seconds": round(time.perf_counter() - t0, 2)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--store", type=Path, default=None, help="history store for predict")
    ap.add_argument("--rows", type=int, default=0, help="first N rows only (0: all)")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--memory-limit", default="1GB", help="DuckDB's limit in predict")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="copy the predictions here")
    ap.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as d:  # scratch on this disk
        work = Path(d)
        inp = args.input
        if args.rows:
            inp = work / "input.csv"
            _head(args.input, args.rows, inp)
        (work / "a").mkdir()
        (work / "b").mkdir()
        result = {"input": str(args.input), "rows_limit": args.rows, "run": str(args.run),
                  "chunk_rows": args.chunk_rows, "memory_limit": args.memory_limit,
                  "history_store": str(args.store) if args.store else None,
                  "cpus": os.cpu_count()}
        result["stream"] = _child("stream", args, inp, work / "a")
        result["stream"]["rows_per_s"] = round(result["stream"]["rows"]
                                               / result["stream"]["wall_s"])
        print(json.dumps(result["stream"]), flush=True)
        if args.keep:
            shutil.copy(work / "a" / "out.parquet", args.keep)
        if not args.no_baseline:
            result["in_memory"] = _child("in_memory", args, inp, work / "b")
            print(json.dumps(result["in_memory"]))
    args.json.parent.mkdir(exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
