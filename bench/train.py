"""Training benchmark: each model family against its plain library default, as rows grow.

Three parts, each run on demand (``--parts families,search,scale``):

``families``
    Each family (lr, rf, svm, xgb, nn) fitted with crimeclass's defaults (its
    pipeline, untuned) and, on the same feature frame and the same encoders,
    with the plain library default a user would pick instead (scikit-learn's
    ``LogisticRegression()``, ``RandomForestClassifier()``, ``SVC()``,
    ``xgboost.XGBClassifier()``, a plain Keras network with Keras' defaults),
    on 100,000 rows, 1,000,000 rows and all the real rows of the complete
    years in ../shared/data before the held-out year 2017 (2001-2016). Each
    fit runs in a process of its own (peak memory = that process's max RSS);
    a fit that passes ``--limit`` seconds is stopped and the larger sizes of
    that variant are skipped. ROC AUC on 50,000 incidents of 2017 says the
    fits are real.
``search``
    ``crimeclass train`` of all five models with a 20-trial search each on
    1,000,000 training rows (2012-2016, 2017 held out): wall time and peak
    memory against the target of 30 minutes on 2 cores.
``scale``
    XGBoost on the 8M-row scale set (``crimeclass scaleset``: real 2001-2017
    records resampled), target 10 minutes and 8 GB: crimeclass end to end in
    one process (features from the store with DuckDB, then the xgb pipeline;
    wall, CPU and memory of each step), then ``XGBClassifier()`` behind the
    same encoders on the same frame (written by the first).

Run: ``python bench/train.py --data ../shared/data [--parts ...] [--limit 900]``.
Results: bench/results/train.json (and a table on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "data"
RESULTS = HERE / "results"
FAMILIES = ("lr", "rf", "svm", "xgb", "nn")
SIZES = (100_000, 1_000_000, None)  # None: every real training row


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: its own address space's high-water mark).

    Not ``ru_maxrss``: Linux carries that over from the parent through fork and exec, so a
    child started by a parent that once held 6.5 GB would report 6.5 GB whatever it used.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # pragma: no cover


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run_child(args: list[str], limit: float) -> dict[str, Any]:
    """Run ``bench/train.py _child ...`` in a fresh process; its last stdout line is JSON."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                             timeout=limit, env=_env(), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "limit_s": limit}
    wall = time.perf_counter() - t0
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"status": "error", "error": out.stderr[-2000:], "wall_s": wall}
    return {"status": "ok", "wall_s": round(wall, 1), **json.loads(lines[-1])}


# ------------------------------------------------------------------ data


def _store(data_dir: Path, years: range, path: Path) -> Path:
    from crimeclass.data import Store

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    with Store(tmp) as store:
        for y in years:
            f = next(data_dir.glob(f"chicago_crimes_datastore_{y}.*"))
            print(f"  ingesting {f.name}", flush=True)
            store.ingest_path(f).check()
    tmp.rename(path)
    return path


def _frames(store: Path | None, out: Path, sizes: tuple[int | None, ...]) -> dict[str, Path]:
    """Feature frames: training rows before 2017 (all, and a seeded sample per size), and
    50,000 incidents of 2017 to score. Each size gets a file of its own, so that a child
    reads only its rows and its peak memory is that of the fit, not of the whole frame."""
    import duckdb
    import numpy as np

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features
    from crimeclass.models import TrainConfig

    train, test = out / "train.parquet", out / "test.parquet"
    if not train.exists():
        if store is None:
            raise FileNotFoundError(f"{train} is missing")
        out.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(store), read_only=True)
        t0 = time.perf_counter()
        df = read_features(DuckDBEngine(con), until="2018-01-01",
                           memory_limit=TrainConfig().memory_limit)
        print(f"  features of {len(df):,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        con.close()
        hold = df[df["date"] >= "2017-01-01"]
        rng = np.random.default_rng(0)
        hold.iloc[np.sort(rng.choice(len(hold), 50_000, replace=False))].to_parquet(test)
        df[df["date"] < "2017-01-01"].to_parquet(train)
    paths = {"train": train, "test": test}
    for rows in sizes:
        if rows is None:
            continue
        path = out / f"train_{rows}.parquet"
        if not path.exists():
            import numpy as np
            import pandas as pd

            full = pd.read_parquet(train)
            if rows < len(full):
                rng = np.random.default_rng(0)
                full = full.iloc[np.sort(rng.choice(len(full), rows, replace=False))]
            full.to_parquet(path)
            del full
        paths[str(rows)] = path
    return paths


# -------------------------------------------------------------- children


def _library_default(family: str, feats: list) -> Any:
    """The estimator a user picks without crimeclass, behind the same encoders."""
    from sklearn.pipeline import Pipeline

    from crimeclass.features import make_preprocessor

    if family == "lr":
        from sklearn.linear_model import LogisticRegression

        return Pipeline([("prep", make_preprocessor(feats, "linear")),
                         ("model", LogisticRegression())])
    if family == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return Pipeline([("prep", make_preprocessor(feats, "tree")),
                         ("model", RandomForestClassifier())])
    if family == "svm":
        from sklearn.svm import SVC

        return Pipeline([("prep", make_preprocessor(feats, "linear")), ("model", SVC())])
    if family == "xgb":
        import xgboost

        return Pipeline([("prep", make_preprocessor(feats, "tree")),
                         ("model", xgboost.XGBClassifier())])
    if family == "nn":
        from crimeclass.models._keras import import_keras

        keras = import_keras()

        def model(X: Any, y: Any) -> Any:
            # SKLearnClassifier one-hot encodes the target: one softmax unit per class, as
            # in Keras' own example
            m = keras.Sequential([keras.Input((X.shape[1],)),
                                  keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(y.shape[1], activation="softmax")])
            m.compile(optimizer="adam", loss="categorical_crossentropy")
            return m

        # Keras' defaults: batch_size 32; 10 epochs, no early stopping. The wrapper takes
        # dense input only: the one-hot columns as a dense block, as a user would pass them
        prep = make_preprocessor(feats, "linear").set_params(sparse_threshold=0.0)
        return Pipeline([("prep", prep),
                         ("model", keras.wrappers.SKLearnClassifier(
                             model, fit_kwargs={"epochs": 10, "verbose": 0}))])
    raise ValueError(family)


def _child_fit(a: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from crimeclass.features import feature_catalog
    from crimeclass.models import make_model

    feats = feature_catalog()
    cols = ["date", *[f.name for f in feats]]
    train = pd.read_parquet(a.train)
    if a.rows and a.rows < len(train):
        rng = np.random.default_rng(0)
        train = train.iloc[np.sort(rng.choice(len(train), a.rows, replace=False))]
    test = pd.read_parquet(a.test)
    X, y = train[cols], train["is_index"].to_numpy().astype(int)
    if a.variant == "crimeclass":
        model = make_model(a.family, feats, n_jobs=os.cpu_count())
    else:
        model = _library_default(a.family, feats)
        X = X.drop(columns="date")
    before = _rss_mb()
    t0 = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - t0
    Xt = test[cols] if a.variant == "crimeclass" else test[cols[1:]]
    t0 = time.perf_counter()
    score = np.asarray(model.predict_proba(Xt) if hasattr(model, "predict_proba")
                       else model.decision_function(Xt))
    if score.ndim == 2:  # one column per class (Keras' wrapper: its softmax outputs)
        score = score[:, 1]
    predict_s = time.perf_counter() - t0
    print(json.dumps({"rows": len(X), "fit_s": round(fit_s, 1),
                      "predict_s": round(predict_s, 2),
                      "roc_auc": round(float(roc_auc_score(test["is_index"].astype(int), score)),
                                       4),
                      "rss_before_mb": round(before), "peak_mb": round(_peak_mb())}))


def _child_search(a: argparse.Namespace) -> None:
    from crimeclass.models import TrainConfig, train

    cfg = TrainConfig(models=FAMILIES, trials=a.trials, since="2012-01-01", until="2018-01-01",
                      holdout="2017", sample=a.rows, n_jobs=os.cpu_count())
    t0, c0 = time.perf_counter(), _cpu_s()
    marks: dict[str, Any] = {}

    def on_event(kind: str, info: dict[str, Any]) -> None:
        # the features are done when the first model starts; each model's peak is the
        # process's peak when it is done (so far: a later model may only raise it)
        now = {"at_s": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu_s() - c0, 1),
               "rss_mb": round(_rss_mb()), "peak_mb": round(_peak_mb())}
        if kind == "model" and "features" not in marks:
            marks["features"] = now
        elif kind == "model_done":
            marks[info["name"]] = now

    run = train(a.store, cfg, runs_dir=WORK / "runs", on_event=on_event)
    wall = time.perf_counter() - t0
    m = run.metrics
    print(json.dumps({"run_dir": str(run.run_dir), "wall_s": round(wall, 1),
                      "cpu_s": round(_cpu_s() - c0, 1),
                      "peak_mb": round(_peak_mb()), "train_rows": m["train"]["rows"],
                      "search_rows": m["train"]["search_rows"],
                      "holdout_rows": m["holdout"]["rows"],
                      "best_model": m["best_model"], "marks": marks,
                      "models": {x["name"]: {"search_s": x["seconds"]["search"],
                                             "refit_s": x["seconds"]["refit"],
                                             "roc_auc": x["metrics"]["roc_auc"],
                                             "cv_mean": x["cv"]["mean"],
                                             "params": x["params"],
                                             "trials": x["trials"]}
                                 for x in m["models"]}}))


def _child_features(a: argparse.Namespace) -> None:
    import duckdb

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features

    con = duckdb.connect(a.store, read_only=True)
    t0 = time.perf_counter()
    df = read_features(DuckDBEngine(con))
    wall = time.perf_counter() - t0
    df.to_parquet(a.train)
    print(json.dumps({"rows": len(df), "features_s": round(wall, 1),
                      "peak_mb": round(_peak_mb())}))


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child_scale_e2e(a: argparse.Namespace) -> None:
    """crimeclass end to end on a store: the features (DuckDB), then XGBoost's pipeline.

    Each step's wall and CPU seconds, the RSS after it and the peak so far; the frame is
    then written to ``--train`` (after the figures are taken) for the library default."""
    import duckdb

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import feature_catalog, read_features
    from crimeclass.models import TrainConfig, make_model

    steps: dict[str, Any] = {}
    t0, c0 = time.perf_counter(), _cpu_s()
    con = duckdb.connect(a.store, read_only=True)
    # as `crimeclass train`
    df = read_features(DuckDBEngine(con), memory_limit=TrainConfig().memory_limit)
    con.close()
    steps["features"] = {"wall_s": round(time.perf_counter() - t0, 1),
                         "cpu_s": round(_cpu_s() - c0, 1), "rss_after_mb": round(_rss_mb()),
                         "peak_mb": round(_peak_mb())}
    print(json.dumps({"step": "features", **steps["features"]}), file=sys.stderr, flush=True)
    feats = feature_catalog()
    cols = ["date", *[f.name for f in feats]]
    y = df["is_index"].to_numpy().astype(int)
    model = make_model("xgb", feats, n_jobs=os.cpu_count())
    t1, c1 = time.perf_counter(), _cpu_s()
    model.fit(df[cols], y)
    steps["fit"] = {"wall_s": round(time.perf_counter() - t1, 1),
                    "cpu_s": round(_cpu_s() - c1, 1), "rss_after_mb": round(_rss_mb()),
                    "peak_mb": round(_peak_mb()),
                    "trees": int(model[-1].best_iteration_) + 1}
    total = {"wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu_s() - c0, 1),
             "peak_mb": round(_peak_mb())}
    out = {"rows": len(df), "features": len(feats), "steps": steps, "total": total,
           "fit_s": steps["fit"]["wall_s"], "peak_mb": total["peak_mb"]}
    del model
    if a.train:
        df.to_parquet(a.train)
    print(json.dumps(out))


def _child_scale_xgb(a: argparse.Namespace) -> None:
    import pandas as pd

    from crimeclass.features import feature_catalog
    from crimeclass.models import make_model

    feats = feature_catalog()
    cols = ["date", *[f.name for f in feats]]
    df = pd.read_parquet(a.train, columns=[*cols, "is_index"])
    X, y = df[cols], df["is_index"].to_numpy().astype(int)
    del df
    if a.variant == "crimeclass":
        model = make_model("xgb", feats, n_jobs=os.cpu_count())
    else:
        model = _library_default("xgb", feats)
        X = X.drop(columns="date")
    before = _rss_mb()
    t0, c0 = time.perf_counter(), _cpu_s()
    model.fit(X, y)
    fit_s = time.perf_counter() - t0
    print(json.dumps({"rows": len(X), "fit_s": round(fit_s, 1),
                      "cpu_s": round(_cpu_s() - c0, 1), "rss_before_mb": round(before),
                      "peak_mb": round(_peak_mb()),
                      "trees": int(getattr(model[-1], "best_iteration_", 99)) + 1}))


# ----------------------------------------------------------------- parts


def save(part: str, value: Any) -> None:
    """Merge one part into bench/results/train.json (read now: other runs may have written)."""
    path = RESULTS / "train.json"
    merged: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if part == "families" and isinstance(merged.get(part), list):
        # a run of some families, variants or sizes replaces only its own entries
        key = lambda x: (x["family"], x["variant"], x["size"])  # noqa: E731
        mine = {key(x) for x in value}
        value = [x for x in merged[part] if key(x) not in mine] + list(value)
    merged[part] = value
    merged.setdefault("machine", {})[part] = {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "load_average": os.getloadavg(),
        "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    tmp.rename(path)


def part_families(data_dir: Path, limit: float, sizes: tuple[int | None, ...],
                  families: tuple[str, ...], frames_dir: Path | None,
                  variants: tuple[str, ...] = ("crimeclass", "library"),
                  project: bool = True) -> list[dict[str, Any]]:
    if frames_dir is None:
        store = _store(data_dir, range(2001, 2018), WORK / "real_2001_2017.duckdb")
        frames = _frames(store, WORK / "frames_2001_2017", sizes)
    else:  # train.parquet and test.parquet made earlier, e.g. from another window
        frames = _frames(None, frames_dir, sizes)
    import pyarrow.parquet as pq

    all_rows = pq.ParquetFile(frames["train"]).metadata.num_rows
    out: list[dict[str, Any]] = []
    stops: dict[tuple[str, str], str | None] = {}
    lasts: dict[tuple[str, str], dict[str, Any] | None] = {}
    # every family at one size before any at the next: on a shared machine the small sizes
    # are all measured even when the large ones run out of time
    for rows in sizes:
        for family in families:
            for variant in variants:
                key = (family, variant)
                label = f"{rows:,}" if rows else "all"
                n = rows or all_rows
                last = lasts.get(key)
                if project and not stops.get(key) and last is not None:
                    # a fit costs at least linear time in the rows: one projected past the
                    # limit would only burn the limit on shared cores, so it is not started
                    projected = last["fit_s"] * n / last["rows"]
                    if projected > limit:
                        stops[key] = (f"projected {projected:,.0f} s (linear from "
                                      f"{last['rows']:,} rows) > limit {limit:,.0f} s")
                if stops.get(key):
                    print(f"{family} {variant} {label}: skipped, {stops[key]}", flush=True)
                    out.append({"family": family, "variant": variant, "size": label,
                                "status": "skipped", "why": stops[key]})
                    continue
                print(f"{family} {variant} {label} ...", flush=True)
                train = frames[str(rows)] if rows else frames["train"]
                r = _run_child(["_child", "fit", "--family", family, "--variant", variant,
                                "--train", str(train), "--test", str(frames["test"])], limit)
                r.update(family=family, variant=variant, size=label)
                print("   ", json.dumps(r)[:300], flush=True)
                out.append(r)
                if r["status"] != "ok":
                    stops[key] = f"{r['status']} at {label} rows"
                else:
                    lasts[key] = r
                save("families", out)
    return out


def part_search(data_dir: Path, limit: float, rows: int, trials: int,
                store: Path | None = None) -> dict[str, Any]:
    store = store or _store(data_dir, range(2012, 2018), WORK / "real_2012_2017.duckdb")
    print(f"search: all five, {trials} trials each, {rows:,} rows ...", flush=True)
    load = os.getloadavg()
    r = _run_child(["_child", "search", "--store", str(store), "--rows", str(rows),
                    "--trials", str(trials)], limit)
    r["store"] = str(store)
    r["load_before"] = [round(x, 2) for x in load]
    r["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print("   ", json.dumps(r)[:600], flush=True)
    return r


def part_scale(data_dir: Path, limit: float, scale_set: Path | None,
               features_limit: float, variants: tuple[str, ...] = ("crimeclass", "library"),
               store: Path | None = None) -> dict[str, Any]:
    """crimeclass end to end (features + XGBoost) on the scale set's store, then the
    library default on the same frame; each in a process of its own."""
    from crimeclass.data import Store

    store = store or WORK / "scale_8m.duckdb"
    if not store.exists():
        source = scale_set or WORK / "scale_8m.parquet"
        if not source.exists():
            print("scale: writing the 8M-row scale set ...", flush=True)
            subprocess.run([sys.executable, "-m", "crimeclass.cli", "scaleset", "8000000",
                            str(source), "--data-dir", str(data_dir)], check=True, env=_env())
        t0 = time.perf_counter()
        tmp = store.with_suffix(".tmp.duckdb")
        tmp.unlink(missing_ok=True)
        with Store(tmp) as s:
            s.ingest_path(source).check()
        tmp.rename(store)
        print(f"  ingested in {time.perf_counter() - t0:.0f} s", flush=True)
    frame = WORK / "scale_8m_features.parquet"
    result: dict[str, Any] = {"scale_set": str(scale_set) if scale_set else None,
                              "store": str(store)}
    if "crimeclass" in variants:
        print("scale: crimeclass end to end (features + xgb) ...", flush=True)
        load = os.getloadavg()
        result["crimeclass"] = _run_child(["_child", "scale_e2e", "--store", str(store),
                                           "--train", str(frame)], features_limit + limit)
        result["crimeclass"]["load_before"] = [round(x, 2) for x in load]
        result["crimeclass"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
        print("   ", result["crimeclass"], flush=True)
        save("scale", result)
    if "library" in variants:
        if not frame.exists():
            raise FileNotFoundError(f"{frame} is missing: run the crimeclass variant first")
        print("scale: XGBClassifier() ...", flush=True)
        load = os.getloadavg()
        result["library"] = _run_child(["_child", "scale_xgb", "--variant", "library",
                                        "--train", str(frame)], limit)
        result["library"]["load_before"] = [round(x, 2) for x in load]
        result["library"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
        print("   ", result["library"], flush=True)
        save("scale", result)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--parts", default="families,search,scale")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--sizes", default="100000,1000000,all")
    p.add_argument("--limit", type=float, default=900.0,
                   help="seconds a single fit may take before it is stopped")
    p.add_argument("--search-rows", type=int, default=1_000_000)
    p.add_argument("--search-store", type=Path,
                   help="an existing store of 2012-2017 for `search` (instead of ingesting)")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--variants", default="crimeclass,library")
    p.add_argument("--no-project", dest="project", action="store_false",
                   help="start every size, even one projected past --limit")
    p.add_argument("--frames", type=Path,
                   help="`families` on the train.parquet and test.parquet of this folder "
                        "(feature frames) instead of all the years of --data")
    p.add_argument("--features-limit", type=float, default=5400.0,
                   help="seconds the scale set's feature computation may take")
    p.add_argument("--scale-set", type=Path,
                   help="an existing scale set (crimeclass scaleset output) to use for `scale`")
    p.add_argument("--scale-store", type=Path,
                   help="an existing store of the scale set (instead of ingesting it)")
    a = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    parts = a.parts.split(",")
    sizes = tuple(None if s == "all" else int(s) for s in a.sizes.split(","))
    if "families" in parts:
        save("families", part_families(a.data, a.limit, sizes, tuple(a.families.split(",")),
                                       a.frames, tuple(a.variants.split(",")), a.project))
    if "search" in parts:
        save("search", part_search(a.data, max(a.limit, 3600), a.search_rows, a.trials,
                                   a.search_store))
    if "scale" in parts:
        save("scale", part_scale(a.data, max(a.limit, 1800), a.scale_set, a.features_limit,
                                 tuple(a.variants.split(",")), a.scale_store))
    path = RESULTS / "train.json"
    print(f"wrote {path}")


def child() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what")
    p.add_argument("--family")
    p.add_argument("--variant")
    p.add_argument("--train")
    p.add_argument("--test")
    p.add_argument("--store")
    p.add_argument("--rows", type=int)
    p.add_argument("--trials", type=int, default=20)
    a = p.parse_args(sys.argv[2:])
    {"fit": _child_fit, "search": _child_search, "features": _child_features,
     "scale_xgb": _child_scale_xgb, "scale_e2e": _child_scale_e2e}[a.what](a)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child()
    else:
        main()
