"""Quality on Spark against one machine: the held-out ROC AUC of each model, same rows.

Trains XGBoost, logistic regression, the linear SVM and the random forest with
``spark_train`` (local mode, the store's Parquet export, made once beside the store as
bench/spark.py makes it) and with ``train`` (one machine,
the store) on the same window and configuration, for two seeds, and Spark once more with a
single worker; the search runs ``--trials`` trials (on one machine over the training rows,
on Spark over the driver's sample, which holds every training row here). Writes each
model's held-out ROC AUC per variant and Spark minus one machine per seed to
bench/results/spark_quality.json (figures quoted in docs/spark.md).

Run: ``python bench/spark_quality.py`` (the bundled sample, ~10 minutes on 2 cores) or
``--store STORE --since 2012-01-01 --until 2018-01-01`` for other data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "spark_quality.json"
sys.path.insert(0, str(ROOT / "bench"))  # bench/spark.py's export of a store for Spark
MODELS = ("xgb", "lr", "svm", "rf")


def _aucs(metrics: dict[str, Any]) -> dict[str, float]:
    return {m["name"]: round(float(m["metrics"]["roc_auc"]), 4) for m in metrics["models"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, help="a store (default: the bundled sample)")
    p.add_argument("--since", default="2012-01-01")
    p.add_argument("--until", default="2018-01-01")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()

    from crimeclass.data import Store, sample_files
    from crimeclass.engines import spark_session
    from crimeclass.models import TrainConfig, spark_train, train
    from spark import _export  # the store's Parquet export, beside the store

    with tempfile.TemporaryDirectory() as d:
        store = a.store
        if store is None:
            store = Path(d) / "sample.duckdb"
            with Store(store) as st:
                for f in sample_files():
                    st.ingest_path(f)
        parquet = _export(store)
        variants: dict[str, dict[str, Any]] = {}
        for seed in (0, 1):
            config = TrainConfig(models=MODELS, trials=a.trials, folds=2, since=a.since,
                                 until=a.until, search_sample=None, seed=seed, n_jobs=2)
            for engine, workers in (("single", 0), ("spark", 2), ("spark", 1)):
                if workers == 1 and seed:
                    continue
                name = f"{engine}_seed{seed}" + (f"_{workers}_workers" if workers else "")
                t0 = time.perf_counter()
                if engine == "single":
                    result = train(store, config, runs_dir=Path(d) / "runs")
                else:
                    session = spark_session(f"local[{workers}]")
                    result = spark_train(parquet, config, runs_dir=Path(d) / "runs",
                                         session=session, num_workers=workers)
                    session.stop()
                variants[name] = {"roc_auc": _aucs(result.metrics),
                                  "seconds": round(time.perf_counter() - t0, 1),
                                  "train_rows": result.metrics["train"]["rows"],
                                  "holdout_rows": result.metrics["holdout"]["rows"]}
                print(name, json.dumps(variants[name]), flush=True)
    spark_minus_single = {
        f"seed{s}": {m: round(variants[f"spark_seed{s}_2_workers"]["roc_auc"][m]
                              - variants[f"single_seed{s}"]["roc_auc"][m], 4) for m in MODELS}
        for s in (0, 1)}
    out = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "store": "the bundled sample" if a.store is None else str(a.store),
           "window": {"since": a.since, "until": a.until}, "trials": a.trials, "folds": 2,
           "variants": variants, "spark_minus_single": spark_minus_single}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(spark_minus_single), f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
