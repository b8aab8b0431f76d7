"""Scoring service load test: ``crimeclass serve`` on loopback, driven by ``hey``.

Starts the service (``crimeclass serve``, keys on) with the XGBoost model of a run and a
store as history, then, each load bounded in time:

(a) one incident a request, ``--clients`` concurrent clients, ``--seconds`` seconds:
    requests per second, p50 and p99 latency, failed requests;
(b) batches of 1,000 incidents: incidents per second;
(c) a reload (``POST /v1/admin/reload``) in the middle of (a): failed requests during it;
(d) the service's resident memory before and after the loads.

The same load (a) then runs against the service a user would write instead: a FastAPI
endpoint that builds a DataFrame of the incidents and calls today's batch ``predict``
per request (``--naive-seconds``). The incidents scored are the store's newest, with IDs
of their own (new incidents, as a dispatch system sends them).

By default the history is the 8M-row scale set of bench/features.py and the run is
trained on it (one trial of XGBoost, 2 folds, 2015-2016: minutes). ``--small`` uses the
bundled sample instead (seconds): a check that the bench runs, not figures to quote.
``hey`` is Debian's (``make hey``).

Run: ``python bench/serve.py [--small] [--run RUN] [--seconds 60]``.
Results: bench/results/serve.json (one entry per history size).
"""

# no ``from __future__ import annotations``: FastAPI reads naive_app's annotations

import argparse
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serve.json"
CLI = [sys.executable, "-m", "crimeclass"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e3
    return float("nan")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service stopped (status {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} not ready after {seconds:.0f} s")


def _post(url: str, body: dict[str, Any], key: str) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def hey(url: str, body: Path, key: str, seconds: float, clients: int) -> dict[str, Any]:
    """``hey`` for ``seconds`` with ``clients`` workers; figures from its per-request CSV."""
    out = subprocess.run(
        ["hey", "-z", f"{seconds:g}s", "-c", str(clients), "-m", "POST", "-T",
         "application/json", "-D", str(body), "-H", f"Authorization: Bearer {key}",
         "-t", "60", "-o", "csv", url], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    ms = np.array([float(r["response-time"]) * 1e3 for r in rows]) if rows else np.zeros(1)
    failed = sum(1 for r in rows if r["status-code"] != "200")
    return {"requests": len(rows), "seconds": seconds, "failed": failed,
            "requests_per_s": round(len(rows) / seconds, 1),
            "p50_ms": round(float(np.median(ms)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def incidents(store: Path, n: int) -> list[dict[str, Any]]:
    """The store's ``n`` newest incidents as web API records, with IDs of their own."""
    import duckdb

    cols = ("case_number, date, block, location_description, domestic, beat, district, "
            "ward, community_area, x_coordinate, y_coordinate, latitude, longitude")
    con = duckdb.connect(str(store), read_only=True)
    rows = con.sql(f"SELECT {cols} FROM incidents WHERE beat IS NOT NULL AND x_coordinate IS NOT "
                   f"NULL ORDER BY date DESC LIMIT {n}"
                   ).to_arrow_table().to_pylist()
    con.close()
    out = []
    for i, r in enumerate(rows):
        rec = {k: (v.strftime("%Y-%m-%dT%H:%M:%S.000") if k == "date" else v)
               for k, v in r.items() if v is not None}
        rec["id"] = str(3_000_000_000 + i)
        out.append(rec)
    return out


# ------------------------------------------------------------------ the naive service


def naive_app() -> Any:
    """What a user would write: a DataFrame of the incidents, today's batch predict."""
    import pandas as pd
    from fastapi import FastAPI, Request

    from crimeclass.data import COLUMNS
    from crimeclass.models import predict

    run, store = os.environ["BENCH_RUN"], os.environ["BENCH_STORE"]
    portal = {c.name: c.portal for c in COLUMNS if c.kind != "derived"}
    app = FastAPI()

    @app.post("/v1/score")
    async def score(request: Request) -> Any:
        body = await request.json()
        with tempfile.TemporaryDirectory() as tmp:
            frame = pd.DataFrame(body["incidents"]).rename(columns=portal).reindex(
                columns=list(portal.values()))
            frame.to_csv(Path(tmp) / "in.csv", index=False)
            predict(run, Path(tmp) / "in.csv", Path(tmp) / "out.csv", model_name="xgb",
                    history_store=store)
            out = pd.read_csv(Path(tmp) / "out.csv")
        return {"results": out[["id", "probability", "label"]].to_dict("records")}

    return app


# ------------------------------------------------------------------ the run


def _start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def measure(run: Path, store: Path, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    keys = work / "keys.json"
    user = subprocess.run([*CLI, "serve", "keys", "add", "bench", "--admin", "--api-keys",
                           str(keys)], capture_output=True, text=True, check=True).stdout.strip()
    recs = incidents(store, 1000)
    one, batch = work / "one.json", work / "batch.json"
    one.write_text(json.dumps({"incidents": recs[:1]}))
    batch.write_text(json.dumps({"incidents": recs}))
    port = _port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = _start([*CLI, "serve", "--run", str(run), "--store", str(store), "--model", "xgb",
                   "--port", str(port), "--api-keys", str(keys), "--follow", "0",
                   "--rate-limit", "1000000", "--workers", str(a.workers),
                   "--scorers", str(a.scorers)])
    try:
        _wait_ready(base + "/health/ready", proc)
        entry: dict[str, Any] = {"start_s": round(time.perf_counter() - t0, 1)}
        _post(base + "/v1/score", {"incidents": recs[:10]}, user)  # warm
        entry["rss_mb_before"] = round(_rss_mb(proc.pid), 1)
        reload_codes: list[int] = []

        def reload_midway() -> None:
            time.sleep(a.seconds / 2)
            reload_codes.append(_post(base + "/v1/admin/reload",
                                      {"run": str(run), "model": "xgb"}, user))

        reloader = threading.Thread(target=reload_midway)
        reloader.start()
        entry["single"] = hey(base + "/v1/score", one, user, a.seconds, a.clients)
        reloader.join()
        entry["single"]["reload_status"] = reload_codes[0] if reload_codes else None
        b = hey(base + "/v1/score", batch, user, a.batch_seconds, 2)
        b["incidents_per_s"] = round(b["requests_per_s"] * len(recs), 1)
        entry["batch_1000"] = b
        entry["rss_mb_after"] = round(_rss_mb(proc.pid), 1)
    finally:
        _stop(proc)
    entry["naive"] = naive(run, store, one, user, a)
    return entry


def naive(run: Path, store: Path, one: Path, key: str, a: argparse.Namespace) -> dict[str, Any]:
    port = _port()
    proc = _start([sys.executable, "-m", "uvicorn", "--factory", "serve:naive_app", "--port",
                   str(port), "--app-dir", str(ROOT / "bench"), "--log-level", "warning"],
                  env={"BENCH_RUN": str(run), "BENCH_STORE": str(store)})
    try:
        _wait_ready(f"http://127.0.0.1:{port}/docs", proc)
        return hey(f"http://127.0.0.1:{port}/v1/score", one, key, a.naive_seconds, a.clients)
    finally:
        _stop(proc)


def _train(store: Path, runs: Path) -> Path:
    out = subprocess.run([*CLI, "train", "--store", str(store), "--models", "xgb", "--trials",
                          "1", "--folds", "2", "--since", "2015-01-01", "--until",
                          "2017-01-01", "--runs-dir", str(runs), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return Path(json.loads(out)["run_dir"])


def _small_store(work: Path) -> Path:
    from crimeclass.data import Store, sample_files

    path = work / "sample.duckdb"
    with Store(path) as s:
        for f in sample_files():
            s.ingest_path(f)
    return path


def history_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the history and the run (read by :func:`store_and_run`)."""
    parser.add_argument("--small", action="store_true", help="the bundled sample as history")
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--run", type=Path, help="a run with an xgb model (else trained)")


def store_and_run(a: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    """The history store (``--small``: the sample; else the scale set of ``--rows``) and
    the run (``--run``, else trained on the store under ``work``)."""
    if a.small:
        store = _small_store(work)
    else:
        from features import scale_store  # bench/features.py: the same scale set

        store = scale_store(a.data, a.rows)
    return store, a.run or _train(store, work / "runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    history_arguments(parser)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch-seconds", type=float, default=30)
    parser.add_argument("--naive-seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scorers", type=int, default=0, help="serve --scorers (0: its default)")
    a = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit("hey is missing: make hey (Debian's package)")
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        store, run = store_and_run(a, work)
        with __import__("duckdb").connect(str(store), read_only=True) as con:
            rows = int(con.sql("SELECT count(*) FROM incidents").fetchall()[0][0])
        entry = {"rows": rows, "cores": os.cpu_count(), "load_before": os.getloadavg()[0],
                 "clients": a.clients, "workers": a.workers, "scorers": a.scorers,
                 "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 **measure(run, store, a, work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(entry))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    name = "small" if a.small else str(a.rows)
    if a.workers != 1:
        name += f"_workers{a.workers}"
    if a.scorers:
        name += f"_scorers{a.scorers}"
    results[name] = entry
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
