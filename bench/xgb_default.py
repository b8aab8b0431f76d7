"""crimeclass's XGBoost, untuned and tuned, against ``XGBClassifier()`` on one frame.

On the frame and split of ``crimeclass train`` (2012-2016 to train, 2017 held out, read by
the train code itself), in one process, one after the other:

``library``
    ``xgboost.XGBClassifier(enable_categorical=True)``, the places as pandas categories
    (as in ``bench/peers.py``);
``crimeclass``
    ``make_model("xgb")``: crimeclass's defaults (the search's first trial);
``tuned``
    the same pipeline with the parameters a run's search chose (``--run-metrics``: a
    ``metrics.json``), learning rate included, as the search drew it before it stopped
    searching the learning rate;
``tuned_lr_0.1``
    those parameters with the family's learning rate, 0.1, as the search gives them now.

Each records where its time goes: the encoders (fit and transform), XGBoost's quantized
matrix of the training rows (timed on its own, once), the boosting (trees grown, of them
kept after early stopping), and the ROC AUC on the held-out year.

Run: ``python bench/xgb_default.py --store bench/data/real_2012_2017.duckdb``
(``bench/results/xgb_default.json``). Figures come from the real data only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from crimeclass.features import feature_catalog
from crimeclass.models import TrainConfig, make_model, roc_auc
from crimeclass.models._persist import versions
from crimeclass.models._target import fit_rows
from crimeclass.models._train import _read_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
import peers  # noqa: E402  (bench/peers.py: the library's frame, categories as pandas')


def tuned_params(metrics: Path) -> dict[str, Any]:
    """The pipeline parameters a run's search chose for ``xgb``."""
    doc = json.loads(metrics.read_text())
    entry = next(m for m in doc["models"] if m["name"] == "xgb")
    return dict(entry["pipeline_params"])


def crimeclass_fit(data: Any, feats: list[Any], params: dict[str, Any],
                   n_jobs: int) -> dict[str, Any]:
    """Fit crimeclass's pipeline with ``params``; its steps' seconds and its score."""
    pipe = make_model("xgb", feats, n_jobs=n_jobs).set_params(**params)
    t0 = time.perf_counter()
    Xt = pipe[:-1].fit_transform(data.X, data.y)  # as Pipeline.fit: cross-fitted encoders
    t1 = time.perf_counter()
    pipe[-1].fit(Xt, data.y)
    t2 = time.perf_counter()
    model = pipe[-1]
    p = pipe.predict_proba(data.Xh)[:, 1]
    return {"fit_s": round(t2 - t0, 1), "encoders_s": round(t1 - t0, 1),
            "boosting_s": round(t2 - t1, 1), "trees_grown": model.booster_.num_boosted_rounds(),
            "trees_kept": model.best_iteration_ + 1, "roc_auc": round(float(roc_auc(data.yh, p)),
                                                                      4),
            "params": {k.removeprefix("model__"): v for k, v in params.items()},
            "quantized_matrix_s": quantized_matrix_s(model, Xt, data.y)}


def quantized_matrix_s(model: Any, Xt: Any, y: np.ndarray) -> float:
    """Seconds to build XGBoost's quantized matrix of the training rows, as ``fit`` does."""
    import xgboost

    n_fit = fit_rows(y, model.validation_fraction, model.early_stopping_rounds)
    X = model._check_X(Xt, reset=False)[0]
    t0 = time.perf_counter()
    xgboost.QuantileDMatrix(model._batches(X, y, 0, n_fit),
                            max_bin=model.max_bin, nthread=model.n_jobs)
    return round(time.perf_counter() - t0, 1)


def library_fit(data: Any, feats: list[Any], n_jobs: int) -> dict[str, Any]:
    split = peers.split_of(data, feats)
    fitted = peers.xgb_default(split, argparse.Namespace(n_jobs=n_jobs))
    trees = fitted.detail["trees"]
    return {"fit_s": round(fitted.seconds, 1), "trees_grown": trees, "trees_kept": trees,
            "roc_auc": round(float(roc_auc(split.yh, fitted.p)), 4),
            "params": {"enable_categorical": True}}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    config = TrainConfig(models=("xgb",), since=args.since, until=args.until,
                         holdout=args.holdout)
    feats = feature_catalog(config.features)
    data = _read_data(args.store, config, [f.name for f in feats], lambda kind, info: None)
    out: dict[str, Any] = {"library": library_fit(data, feats, args.n_jobs)}
    print("library", out["library"], flush=True)
    tuned = tuned_params(args.run_metrics)
    for name, params in (("crimeclass", {}), ("tuned", tuned),
                         ("tuned_lr_0.1", {**tuned, "model__learning_rate": 0.1})):
        out[name] = crimeclass_fit(data, feats, params, args.n_jobs)
        out[name]["over_library"] = round(out[name]["fit_s"] / out["library"]["fit_s"], 2)
        print(name, out[name], flush=True)
    out["rows"] = {"train": len(data.y), "holdout": len(data.yh)}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="The DuckDB store.")
    p.add_argument("--run-metrics", type=Path,
                   default=HERE.parent / "docs" / "results" / "metrics.json",
                   help="A run's metrics.json: the parameters its search chose for xgb.")
    p.add_argument("--since", default="2012-01-01")
    p.add_argument("--until", default="2018-01-01")
    p.add_argument("--holdout", default="auto")
    p.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=RESULTS / "xgb_default.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    t0 = time.perf_counter()
    doc = {"store": str(args.store), "run_metrics": str(args.run_metrics), **compare(args),
           "seconds": round(time.perf_counter() - t0, 1),
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "load_average": os.getloadavg()},
           "versions": versions()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
