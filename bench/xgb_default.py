"""crimeclass's XGBoost, untuned and tuned, against ``XGBClassifier()`` on one frame.

On the frame and split of ``crimeclass train`` (``--store``: 2012-2016 to train, 2017 held
out, read by the train code itself) or on a frame of ``bench/train.py`` (``--frames``:
its ``train.parquet`` and ``test.parquet``, e.g. every incident of 2001-2016 and 50,000
of 2017), in one process, one after the other:

``library``
    ``xgboost.XGBClassifier(enable_categorical=True)``, the places as pandas categories
    (as in ``bench/peers.py``);
``crimeclass``
    ``make_model("xgb")``: crimeclass's defaults (the search's first trial), unweighted
    (``crimeclass train`` weighs rows by recency since the evening of 2026-12-05, after
    these figures: ``bench/ablation.py`` measures that change);
``previous``
    the defaults until 2026-12-05: depth 8, min_child_weight 5, subsamples of 0.8,
    learning rate 0.1, patience 30, the latest 10 % of the rows held out for early
    stopping, however many;
``previous_capped``
    the same with at most 20,000 rows held out;
``early_stopped``
    the defaults of 2026-12-05 before XGBoost's own: that shape at learning rate 0.3,
    patience 15, at most the latest 20,000 rows held out;
``tuned``
    ``previous`` with the parameters a run's search chose over it (``--run-metrics``: a
    ``metrics.json``), learning rate included, as the search drew it before it stopped
    searching the learning rate;
``tuned_family_lr``
    ``early_stopped`` with those parameters and its learning rate, 0.3;
``searched``
    the model ``crimeclass train`` makes of this frame: its search (``--trials`` trials,
    time-ordered folds, the family's defaults first) on a 50,000-row sample of the
    training rows, its final round (the search's best against the defaults on
    ``--final-sample`` training rows, 1,000,000 as ``crimeclass train``: fitted on the
    earliest 80 %, scored on the rest; since the evening of 2026-12-05, after the figures
    below, the ``large`` shape too), then a fit of the parameters kept on all of them;
``library_encoded``
    ``xgboost.XGBClassifier()`` behind crimeclass's own encoders (as in
    ``bench/train.py``).

``--rows N`` fits on a random sample of N training rows (seed 0, as ``bench/train.py``
does), the held-out rows unchanged.

Each records where its time goes: the encoders (fit and transform), XGBoost's quantized
matrix of the training rows (timed on its own, once per number of rows), the boosting
(trees grown, of them kept after early stopping), and the ROC AUC on the held-out rows,
with a paired bootstrap interval (1,000 replicates) of its difference from
``library_encoded``'s.

Run: ``python bench/xgb_default.py --store bench/data/real_2012_2017.duckdb``
(``bench/results/xgb_default.json``) and ``python bench/xgb_default.py --frames
bench/data/frames_2001_2017 --variants library,crimeclass,previous,previous_capped --out
bench/results/xgb_default_2001_2016.json`` (both written while ``crimeclass`` was what
``early_stopped`` is now). The tuned model against ``XGBClassifier()``: ``--variants
library_encoded,crimeclass,searched,early_stopped`` with ``--store`` (``--out
bench/results/xgb_searched_2012_2016.json``) and with ``--frames`` (all rows:
``xgb_searched_2001_2016.json``; ``--rows 1000000``: ``xgb_searched_2001_2016_1m.json``);
each again with ``--final-sample 400000`` (``xgb_searched_*_final400k.json``, written
before the paired intervals were). Figures come from the real data only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from crimeclass.features import feature_catalog
from crimeclass.models import TrainConfig, make_model, paired_bootstrap, roc_auc
from crimeclass.models._target import fit_rows
from crimeclass.models._train import _read_data, _subsample

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
import peers  # noqa: E402  (bench/peers.py: the library's frame, categories as pandas')
from _common import stamped, write_json  # noqa: E402  (bench/_common.py)


def tuned_params(metrics: Path) -> dict[str, Any]:
    """The pipeline parameters a run's search chose for ``xgb``."""
    doc = json.loads(metrics.read_text())
    entry = next(m for m in doc["models"] if m["name"] == "xgb")
    return dict(entry["pipeline_params"])


#: The defaults until 2026-12-05: depth 8 and its regularization, learning rate 0.1,
#: patience 30, the latest 10 % of the rows held out for early stopping, however many.
PREVIOUS = {"model__n_estimators": 1000, "model__learning_rate": 0.1, "model__max_depth": 8,
            "model__min_child_weight": 5.0, "model__subsample": 0.8,
            "model__colsample_bytree": 0.8, "model__validation_fraction": 0.1,
            "model__early_stopping_rounds": 30, "model__max_validation_rows": None}
#: The defaults of 2026-12-05 until the final round: the same shape at 0.3, patience 15,
#: stopping on the latest 20,000 rows.
EARLY_STOPPED = {**PREVIOUS, "model__learning_rate": 0.3, "model__early_stopping_rounds": 15,
                 "model__max_validation_rows": 20_000}
VARIANTS = ("library", "crimeclass", "previous", "previous_capped", "early_stopped", "tuned",
            "tuned_family_lr", "searched", "library_encoded")


def variant_params(name: str, tuned: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline parameters of a crimeclass variant, over ``make_model("xgb")``'s. A
    run's choice (``tuned``) was drawn over the defaults of its day (``PREVIOUS``)."""
    return {"crimeclass": {}, "previous": PREVIOUS,
            "previous_capped": {**PREVIOUS, "model__max_validation_rows": 20_000},
            "early_stopped": EARLY_STOPPED,
            "tuned": {**PREVIOUS, **(tuned or {})},
            "tuned_family_lr": {**EARLY_STOPPED, **(tuned or {}), "model__learning_rate":
                                EARLY_STOPPED["model__learning_rate"]}}[name]


def crimeclass_fit(data: Any, feats: list[Any], params: dict[str, Any], n_jobs: int,
                   matrix_s: dict[int, float]) -> dict[str, Any]:
    """Fit crimeclass's pipeline with ``params``; its steps' seconds and its score.

    ``matrix_s`` caches the quantized matrix's seconds per number of rows it holds."""
    pipe = make_model("xgb", feats, n_jobs=n_jobs).set_params(**params)
    t0 = time.perf_counter()
    Xt = pipe[:-1].fit_transform(data.X, data.y)  # as Pipeline.fit: cross-fitted encoders
    t1 = time.perf_counter()
    pipe[-1].fit(Xt, data.y)
    t2 = time.perf_counter()
    model = pipe[-1]
    p = pipe.predict_proba(data.Xh)[:, 1]
    n_fit = fit_rows(data.y, model.validation_fraction, model.early_stopping_rounds,
                     model.max_validation_rows)
    if n_fit not in matrix_s:
        matrix_s[n_fit] = quantized_matrix_s(model, Xt, data.y, n_fit)
    return {"fit_s": round(t2 - t0, 1), "encoders_s": round(t1 - t0, 1),
            "boosting_s": round(t2 - t1, 1), "trees_grown": model.booster_.num_boosted_rounds(),
            "trees_kept": model.best_iteration_ + 1, "rows_fit": n_fit,
            "rows_validation": len(data.y) - n_fit,
            "roc_auc": round(float(roc_auc(data.yh, p)), 4),
            "params": {k.removeprefix("model__"): v for k, v in params.items()},
            "quantized_matrix_s": matrix_s[n_fit], "_p": p}


def searched_params(data: Any, feats: list[Any], trials: int, n_jobs: int,
                    final_sample: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters ``crimeclass train`` chooses on this frame (its search, then its final
    round against the defaults), and what it saw: its seconds, rows, the cross-validated
    score of the search's best and of its first trial (the family's defaults), and the
    final round."""
    from crimeclass.models._train import tune

    config = TrainConfig(models=("xgb",), trials=trials, final_sample=final_sample)
    sample = _subsample(data.X.assign(_y=data.y), config.search_sample, config.seed + 1)
    rows = argparse.Namespace(Xs=sample.drop(columns="_y"), ys=sample["_y"].to_numpy(),
                              X=data.X, y=data.y)
    t0 = time.perf_counter()
    search, final = tune("xgb", make_model("xgb", feats, random_state=config.seed,
                                           n_jobs=n_jobs), config, rows)
    best = max(range(len(search.cv_results_["value"])),
               key=lambda i: search.cv_results_["value"][i] or -np.inf)
    seen = {"search_s": round(time.perf_counter() - t0, 1), "search_rows": len(sample),
            "search_trials": trials,
            "cv_search_best": round(float(search.cv_results_["value"][best]), 4),
            "cv_defaults": round(float(search.cv_results_["value"][0]), 4),
            "final_round": final.as_dict() if final is not None else None}
    return dict(search.best_params_), seen


def library_encoded_fit(data: Any, feats: list[Any], n_jobs: int) -> dict[str, Any]:
    """``XGBClassifier()`` behind crimeclass's encoders (``bench/train.py``'s library)."""
    import xgboost
    from sklearn.pipeline import Pipeline

    from crimeclass.features import make_preprocessor

    pipe = Pipeline([("prep", make_preprocessor(feats, "tree")),
                     ("model", xgboost.XGBClassifier(n_jobs=n_jobs))])
    X, Xh = data.X.drop(columns="date"), data.Xh.drop(columns="date")
    t0 = time.perf_counter()
    pipe.fit(X, data.y)
    fit_s = time.perf_counter() - t0
    trees = pipe[-1].get_booster().num_boosted_rounds()
    p = pipe.predict_proba(Xh)[:, 1]
    return {"fit_s": round(fit_s, 1), "trees_grown": trees, "trees_kept": trees,
            "roc_auc": round(float(roc_auc(data.yh, p)), 4), "params": {}, "_p": p}


def quantized_matrix_s(model: Any, Xt: Any, y: np.ndarray, n_fit: int) -> float:
    """Seconds to build XGBoost's quantized matrix of the first ``n_fit`` rows, as ``fit``
    does."""
    import xgboost

    X = model._check_X(Xt, reset=False)[0]
    t0 = time.perf_counter()
    xgboost.QuantileDMatrix(model._batches(X, y, 0, n_fit),
                            max_bin=model.max_bin, nthread=model.n_jobs)
    return round(time.perf_counter() - t0, 1)


def read_frames(folder: Path, feats: list[Any], rows: int | None = None) -> Any:
    """``train.parquet`` and ``test.parquet`` of ``bench/train.py`` as the train code's
    frame: ``X`` and ``y`` to fit (a random ``rows`` of them, seed 0, as ``bench/train.py``
    samples), ``Xh`` and ``yh`` held out (in time order)."""
    import pandas as pd

    cols = ["date", *[f.name for f in feats]]
    train = _subsample(pd.read_parquet(folder / "train.parquet"), rows, 0)
    train = train.sort_values("date", kind="stable")
    hold = pd.read_parquet(folder / "test.parquet").sort_values("date", kind="stable")
    window = argparse.Namespace(train_since=train["date"].min(),
                                holdout_since=hold["date"].min(),
                                holdout_until=hold["date"].max())
    return argparse.Namespace(X=train[cols], y=train["is_index"].to_numpy().astype(int),
                              Xh=hold[cols], yh=hold["is_index"].to_numpy().astype(int),
                              hold=hold, window=window)


def library_fit(data: Any, feats: list[Any], n_jobs: int) -> dict[str, Any]:
    split = peers.split_of(data, feats)
    fitted = peers.xgb_default(split, argparse.Namespace(n_jobs=n_jobs))
    trees = fitted.detail["trees"]
    return {"fit_s": round(fitted.seconds, 1), "trees_grown": trees, "trees_kept": trees,
            "roc_auc": round(float(roc_auc(split.yh, fitted.p)), 4),
            "params": {"enable_categorical": True},
            # the same held-out rows in the same order: paired with the others
            "_p": fitted.p if np.array_equal(split.yh, data.yh) else None}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    config = TrainConfig(models=("xgb",), since=args.since, until=args.until,
                         holdout=args.holdout)
    feats = feature_catalog(config.features)
    if args.frames is not None:
        data = read_frames(args.frames, feats, args.rows)
    else:
        data = _read_data(args.store, config, [f.name for f in feats], lambda kind, info: None)
    tuned = (tuned_params(args.run_metrics)
             if {"tuned", "tuned_family_lr"} & set(args.variants) else None)
    out: dict[str, Any] = {}
    matrix_s: dict[int, float] = {}
    for name in args.variants:
        if name == "library":
            out[name] = library_fit(data, feats, args.n_jobs)
        elif name == "library_encoded":
            out[name] = library_encoded_fit(data, feats, args.n_jobs)
        elif name == "searched":
            params, seen = searched_params(data, feats, args.trials, args.n_jobs,
                                           args.final_sample or None)
            out[name] = {**crimeclass_fit(data, feats, params, args.n_jobs, matrix_s), **seen}
        else:
            params = variant_params(name, tuned)
            out[name] = crimeclass_fit(data, feats, params, args.n_jobs, matrix_s)
        print(name, {k: v for k, v in out[name].items() if k != "_p"}, flush=True)
    if "library_encoded" in out:  # each against XGBClassifier() on the same held-out rows
        for name in list(out):
            if name != "library_encoded" and out[name].get("_p") is not None:
                test = paired_bootstrap(data.yh, out[name]["_p"], out["library_encoded"]["_p"])
                out[name]["auc_minus_library_encoded"] = {
                    "difference": round(test.difference.value, 4),
                    "low": round(test.difference.low, 4),
                    "high": round(test.difference.high, 4), "p_value": test.p_value,
                    "n_boot": test.n_boot}
    for name in list(out):
        out[name].pop("_p", None)
    for base in ("library", "library_encoded"):
        if base in out:
            for name in list(out):
                out[name][f"over_{base}"] = round(out[name]["fit_s"] / out[base]["fit_s"], 2)
    out["rows"] = {"train": len(data.y), "holdout": len(data.yh)}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--store", type=Path, help="The DuckDB store.")
    source.add_argument("--frames", type=Path,
                        help="A folder of bench/train.py's train.parquet and test.parquet.")
    p.add_argument("--run-metrics", type=Path,
                   default=HERE.parent / "docs" / "results" / "metrics.json",
                   help="A run's metrics.json: the parameters its search chose for xgb.")
    p.add_argument("--variants", type=lambda v: tuple(v.split(",")), default=VARIANTS,
                   help=f"Comma-separated, of {','.join(VARIANTS)} (all by default).")
    p.add_argument("--rows", type=int, default=None,
                   help="With --frames: fit on a random sample of this many training rows.")
    p.add_argument("--trials", type=int, default=20, help="The searched variant's trials.")
    p.add_argument("--final-sample", type=int, default=TrainConfig.final_sample,
                   help="The searched variant's final round: training rows (0: none).")
    p.add_argument("--since", default="2012-01-01")
    p.add_argument("--until", default="2018-01-01")
    p.add_argument("--holdout", default="auto")
    p.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=RESULTS / "xgb_default.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    t0 = time.perf_counter()
    bad = sorted(set(args.variants) - set(VARIANTS))
    if bad:
        raise SystemExit(f"--variants: unknown {bad}; known: {','.join(VARIANTS)}")
    doc = stamped({"store": str(args.store), "frames": str(args.frames),
                   "sample_rows": args.rows, "run_metrics": str(args.run_metrics),
                   **compare(args)}, t0)
    write_json(doc, args.out)
    return doc


if __name__ == "__main__":
    main()
