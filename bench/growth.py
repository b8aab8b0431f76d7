"""Cost growth: each step of crimeclass's batch path at 1M, 4M, 8M and 16M resampled rows.

For each size, the steps a user runs, each in a process of its own (its wall and CPU
seconds, and its peak memory, VmHWM):

1. ``scaleset``: ``crimeclass scaleset N``, real 2001-2017 rows of ../shared/data resampled
   with fresh IDs, written as Parquet;
2. ``ingest``: ``crimeclass ingest`` of that file into a new store;
3. ``features``: every feature of every incident from the store (``read_features`` on
   DuckDB, the history windows by the kernel, as ``crimeclass train`` computes them);
4. ``xgb_fit``: crimeclass's XGBoost pipeline (untuned defaults: XGBoost's own, 100
   trees of depth 6) fitted on that frame, every core.

Steps 1 and 2 are timed as the user waits for them (the imports included); steps 3 and 4
from their start, with the libraries imported, the frame in memory for the fit, and its
Parquet written after step 3 is timed (``process_s`` is each process's whole time).

A step that passes ``--limit`` seconds is stopped, and the larger sizes are not tried.
The figures go into bench/results/growth.json after every step, and the plot into
docs/img/growth.png (``--plot-only`` redraws it from the JSON).

Run: ``python bench/growth.py [--sizes 1000000,4000000,8000000,16000000]`` (about an hour
on 2 cores). The scale sets and stores are written under bench/data/ and removed after
their size unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from train import _cpu_s, _env, _peak_mb  # noqa: E402 - the other benchmark's helpers

WORK = HERE / "data"
RESULTS = HERE / "results" / "growth.json"
PLOT = ROOT / "docs" / "img" / "growth.png"
SIZES = (1_000_000, 4_000_000, 8_000_000, 16_000_000)
STEPS = ("scaleset", "ingest", "features", "xgb_fit")


# ----------------------------------------------------------------- children


def _since(t0: float, c0: float) -> dict[str, Any]:
    """Wall and CPU seconds since ``t0``/``c0``, and the peak memory so far."""
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu_s() - c0, 1),
            "peak_mb": round(_peak_mb())}


def _child_cli(args: list[str]) -> dict[str, Any]:
    """A crimeclass command, as ``crimeclass ARGS`` would run it (imports included)."""
    t0, c0 = time.perf_counter(), _cpu_s()
    from crimeclass.cli import app

    app(args, standalone_mode=False)
    return _since(t0, c0)


def _child_features(store: str, frame: str) -> dict[str, Any]:
    """``read_features`` alone: the imports before it and the frame's Parquet after it are
    not part of the step (``process_s`` has them)."""
    import duckdb

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features
    from crimeclass.models import TrainConfig

    t0, c0 = time.perf_counter(), _cpu_s()
    con = duckdb.connect(store, read_only=True)
    df = read_features(DuckDBEngine(con), memory_limit=TrainConfig().memory_limit)
    con.close()
    figures = {**_since(t0, c0), "rows": len(df), "columns": df.shape[1]}
    df.to_parquet(frame)
    return figures


def _child_fit(frame: str) -> dict[str, Any]:
    """The pipeline's fit alone, on the frame in memory, as ``crimeclass train`` holds it
    after the features (reading it from Parquet is ``read_s``)."""
    import pandas as pd

    from crimeclass.features import feature_catalog
    from crimeclass.models import make_model

    feats = feature_catalog()
    cols = ["date", *[f.name for f in feats]]
    t0 = time.perf_counter()
    df = pd.read_parquet(frame, columns=[*cols, "is_index"])
    y = df.pop("is_index").to_numpy().astype(int)
    read_s = round(time.perf_counter() - t0, 1)
    t0, c0 = time.perf_counter(), _cpu_s()
    model = make_model("xgb", feats, n_jobs=os.cpu_count())
    model.fit(df[cols], y)
    return {**_since(t0, c0), "read_s": read_s, "rows": len(df),
            "trees": int(model[-1].best_iteration_) + 1}


def child(argv: list[str]) -> None:
    """In the child process: run one step, then print its figures as JSON."""
    what, rest = argv[0], argv[1:]
    if what == "cli":
        figures = _child_cli(rest)
    elif what == "features":
        figures = _child_features(*rest)
    else:
        figures = _child_fit(*rest)
    print(json.dumps(figures))


# ------------------------------------------------------------------ driver


def _step(args: list[str], limit: float) -> dict[str, Any]:
    """One step in a fresh process (its last stdout line is its JSON)."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, "_child", *args], capture_output=True,
                             text=True, timeout=limit, env=_env(), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "limit_s": limit}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return {"status": "error", "error": out.stderr[-2000:]}
    return {"status": "ok", "process_s": round(time.perf_counter() - t0, 1),
            **json.loads(lines[-1])}


def _size(rows: int, data: Path, work: Path, limit: float, keep: bool,
          out: Path) -> dict[str, Any]:
    parquet, store = work / f"growth_{rows}.parquet", work / f"growth_{rows}.duckdb"
    frame = work / f"growth_{rows}_features.parquet"
    files = (parquet, parquet.with_name(parquet.name + ".resampled.json"), store, frame)
    for p in files:
        p.unlink(missing_ok=True)
    commands = {
        "scaleset": ["cli", "scaleset", str(rows), str(parquet), "--data-dir", str(data)],
        "ingest": ["cli", "ingest", str(parquet), "--store", str(store)],
        "features": ["features", str(store), str(frame)],
        "xgb_fit": ["fit", str(frame)],
    }
    entry: dict[str, Any] = {"rows": rows, "when": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime())}
    try:
        for name in STEPS:
            entry["load_before_" + name] = round(os.getloadavg()[0], 2)
            entry[name] = _step(commands[name], limit)
            print(f"  {rows:>10,} {name:9} {json.dumps(entry[name])[:160]}", flush=True)
            _save(out, rows, entry)
            if entry[name]["status"] != "ok":
                break
    finally:
        if not keep:
            for p in files:
                p.unlink(missing_ok=True)
    return entry


def _save(out: Path, rows: int, entry: dict[str, Any]) -> None:
    """Merge one size into the JSON (read now: an earlier run's other sizes stay)."""
    results = json.loads(out.read_text()) if out.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "memory_gb": round(os.sysconf("SC_PAGE_SIZE")
                                             * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)}
    results.setdefault("sizes", {})[str(rows)] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def _extrapolate(ax: Any, x: list[float], gb: list[float], memory: float,
                 colour: str) -> None:
    """The straight line through the last two sizes, up to the machine's memory."""
    slope = (gb[-1] - gb[-2]) / (x[-1] - x[-2])
    if slope <= 0 or gb[-1] >= memory:
        return
    end = x[-1] + (memory - gb[-1]) / slope
    ax.plot([x[-1], end], [gb[-1], memory], ":", color=colour)
    ax.annotate(f"straight-line extrapolation:\n{memory:.0f} GB at ~{end:.0f}M rows",
                (end, memory), xytext=(-14, -50), textcoords="offset points", ha="right",
                fontsize=8, color=colour, bbox={"fc": "white", "ec": "none", "alpha": 0.9})


def plot(results: dict[str, Any], out: Path) -> None:
    """Wall seconds, CPU seconds and peak memory of each step against the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results["sizes"].values(), key=lambda e: e["rows"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, colour in zip(STEPS, ("#999999", "#1f77b4", "#2ca02c", "#d62728"),
                            strict=True):
        done = [e for e in sizes if e.get(name, {}).get("status") == "ok"]
        x = [e["rows"] / 1e6 for e in done]
        axes[0].plot(x, [e[name]["seconds"] for e in done], "o-", color=colour,
                     label=f"{name} (wall)")
        axes[0].plot(x, [e[name]["cpu_s"] for e in done], "o:", color=colour, alpha=0.6,
                     label=f"{name} (CPU)")
        gb = [e[name]["peak_mb"] / 1e3 for e in done]
        axes[1].plot(x, gb, "o-", color=colour, label=name)
        if name == "xgb_fit" and len(done) >= 2:
            _extrapolate(axes[1], x, gb, results["machine"]["memory_gb"], colour)
    memory = results["machine"]["memory_gb"]
    axes[1].axhline(memory, color="black", lw=1, ls="--")
    axes[1].text(0.03, memory * 0.94, f"this machine's memory ({memory:.0f} GB)", fontsize=8,
                 transform=axes[1].get_yaxis_transform())
    axes[0].set(title="Time per step", xlabel="rows (millions, resampled)",
                ylabel="seconds (solid: wall, dotted: CPU)", xscale="log", yscale="log")
    axes[1].set(title="Peak memory per step", xlabel="rows (millions, resampled)",
                ylabel="GB (VmHWM of the step's process)")
    for ax in axes:
        ticks = [e["rows"] / 1e6 for e in sizes]
        if ax is axes[1]:
            ticks = [t for t in ticks if t >= ticks[-1] / 8]  # linear axis: no crowding
        ax.set_xticks(ticks, [f"{t:g}M" for t in ticks])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"crimeclass on {results['machine']['cpus']} cores: cost as the rows grow "
                 "(bench/growth.py)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    p.add_argument("--limit", type=float, default=2400, help="seconds per step")
    p.add_argument("--keep", action="store_true", help="keep the scale sets and stores")
    p.add_argument("--plot-only", action="store_true", help="redraw the plot from the JSON")
    p.add_argument("--work", type=Path, default=WORK, help="folder of the scale sets, stores")
    p.add_argument("--out", type=Path, default=RESULTS, help="the JSON of the figures")
    p.add_argument("--plot", type=Path, default=PLOT, help="the PNG of the figures")
    a = p.parse_args(argv)
    if not a.plot_only:
        a.work.mkdir(parents=True, exist_ok=True)
        for rows in (int(s) for s in a.sizes.split(",")):
            entry = _size(rows, a.data, a.work, a.limit, a.keep, a.out)
            if any(entry.get(s, {}).get("status") != "ok" for s in STEPS):
                print(f"stopped at {rows:,} rows: a step did not finish", flush=True)
                break
    plot(json.loads(a.out.read_text()), a.plot)
    print(f"wrote {a.out} and {a.plot}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2:])
    else:
        main()
