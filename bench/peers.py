"""crimeclass's best model against what a data scientist would run instead, side by side.

On the same feature frame and split as ``crimeclass train`` (the frame is built by the
train code itself: one definition), each of

``lgbm_default``
    ``lightgbm.LGBMClassifier()`` with its defaults, the categories (places, location
    description ...) as pandas categories, which LightGBM splits natively;
``lgbm_tuned``
    LightGBM tuned by Optuna (``--lgbm-trials``), each trial stopped early on the last
    tenth of the training rows (the last months of the training years), then refitted
    on all of them with the trees it kept;
``xgb_default``
    ``xgboost.XGBClassifier(enable_categorical=True)``: the defaults, plus the one switch
    that lets it read the same categories;
``flaml``
    FLAML's ``AutoML`` with a time budget (``--flaml-budget``, 900 s by default),
    metric ``roc_auc``, its own choice of learners;

is fitted on the training period and scored on the held-out period (ROC AUC, PR AUC,
log loss, fit seconds), with the paired bootstrap interval of crimeclass's best minus
each (ROC AUC and PR AUC, on the same replicates). crimeclass's best comes from a run
folder (``--run``: its stored held-out probabilities and timings; the window and the
features are the run's) or from a run trained here (``--models``; ``--more-scales`` adds
the history windows of the last day and 90 days, for every peer too).

Run: ``python bench/peers.py --store real_2012_2017.duckdb [--run runs/<id>]
[--flaml-budget 900] [--out bench/results/peers.json]``.
Figures come from the real data only; the fast test runs it on the bundled sample.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from crimeclass.features import FeatureSpec, feature_catalog
from crimeclass.features._catalog import MORE_SCALES
from crimeclass.models import (
    TrainConfig,
    average_precision,
    open_run,
    paired_bootstrap,
    roc_auc,
    train,
)
from crimeclass.models._persist import versions
from crimeclass.models._train import _read_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PEERS = ("lgbm_default", "lgbm_tuned", "xgb_default", "flaml")


@dataclasses.dataclass
class Split:
    """The training and held-out rows of the frame, the categories as pandas categories."""

    X: pd.DataFrame
    y: np.ndarray
    Xh: pd.DataFrame
    yh: np.ndarray
    keys: np.ndarray
    window: dict[str, str]


@dataclasses.dataclass
class Fitted:
    """A peer's held-out probabilities, its fit time and what it chose."""

    p: np.ndarray
    seconds: float
    detail: dict[str, Any]


@contextmanager
def recorded(into: list[str]) -> Iterator[None]:
    """The fit's warnings, kept as text in the results instead of printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    into.extend(sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught}))


def config_of_run(run: Any) -> TrainConfig:
    """The run's training configuration (window, features, sampling) as it was."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kept = {k: v for k, v in run.config.items() if k in names}
    kept.update(models=tuple(kept["models"]), features=run.feature_spec)
    return TrainConfig(**kept)


def read_split(store: Path, config: TrainConfig) -> Split:
    """The frame ``crimeclass train`` reads for ``config``, split as it splits it."""
    feats = feature_catalog(config.features)
    return split_of(_read_data(store, config, [f.name for f in feats], lambda kind, info: None),
                    feats)


def split_of(data: Any, feats: list[Any]) -> Split:
    """The train code's frame (``_read_data``), its categories as pandas categories."""
    cats = [f.name for f in feats if f.kind in ("category", "high_cardinality")]
    X, Xh = data.X.drop(columns="date"), data.Xh.drop(columns="date")
    X, Xh = X.copy(), Xh.copy()
    for c in cats:  # the held-out rows read the training rows' categories (unseen: missing)
        X[c] = X[c].astype("string").astype("category")
        known = X[c].cat.categories
        held = Xh[c].astype("string")
        Xh[c] = pd.Categorical(held.where(held.isin(known)), categories=known)
    for frame in (X, Xh):  # nullable numbers as floats (missing: NaN), for every library
        for c in frame.columns:
            if c not in cats and not isinstance(frame[c].dtype, np.dtype):
                frame[c] = frame[c].astype("float32")
    for frame in (X, Xh):  # FLAML 2.1 checks np.issubdtype on the column names' dtype,
        frame.columns = pd.Index(list(frame.columns), dtype=object)  # which pandas 3's str fails
    return Split(X=X.reset_index(drop=True), y=data.y, Xh=Xh.reset_index(drop=True),
                 yh=data.yh, keys=data.hold["key"].to_numpy(),
                 window={"train_since": data.window.train_since.isoformat(),
                         "holdout_since": data.window.holdout_since.isoformat(),
                         "holdout_until": data.window.holdout_until.isoformat()})


def lgbm_default(s: Split, args: argparse.Namespace) -> Fitted:
    import lightgbm

    t0 = time.perf_counter()
    model = lightgbm.LGBMClassifier(n_jobs=args.n_jobs, verbose=-1).fit(s.X, s.y)
    return Fitted(model.predict_proba(s.Xh)[:, 1], time.perf_counter() - t0, {})


def lgbm_tuned(s: Split, args: argparse.Namespace) -> Fitted:
    import lightgbm
    import optuna

    t0 = time.perf_counter()
    cut = int(len(s.y) * 0.9)  # the rows are in time order: the last tenth is the latest
    fit_X, fit_y, val_X, val_y = s.X.iloc[:cut], s.y[:cut], s.X.iloc[cut:], s.y[cut:]

    def objective(trial: Any) -> float:
        model = lightgbm.LGBMClassifier(
            n_estimators=5000, subsample_freq=1, n_jobs=args.n_jobs, verbose=-1,
            random_state=args.seed,
            learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            num_leaves=trial.suggest_int("num_leaves", 15, 255, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 10, 500, log=True),
            subsample=trial.suggest_float("subsample", 0.5, 1.0),
            colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
            reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True))
        model.fit(fit_X, fit_y, eval_X=(val_X,), eval_y=(val_y,), eval_metric="auc",
                  callbacks=[lightgbm.early_stopping(50, verbose=False)])
        trial.set_user_attr("trees", int(model.best_iteration_ or 5000))
        return float(roc_auc(val_y, model.predict_proba(val_X)[:, 1]))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.optimize(objective, n_trials=args.lgbm_trials)
    best = study.best_trial
    model = lightgbm.LGBMClassifier(n_estimators=best.user_attrs["trees"], subsample_freq=1,
                                    n_jobs=args.n_jobs, verbose=-1, random_state=args.seed,
                                    **best.params).fit(s.X, s.y)
    return Fitted(model.predict_proba(s.Xh)[:, 1], time.perf_counter() - t0,
                  {"trials": args.lgbm_trials, "validation_roc_auc": best.value,
                   "params": best.params, "trees": best.user_attrs["trees"]})


def xgb_default(s: Split, args: argparse.Namespace) -> Fitted:
    import xgboost

    t0 = time.perf_counter()
    model = xgboost.XGBClassifier(enable_categorical=True, n_jobs=args.n_jobs).fit(s.X, s.y)
    return Fitted(model.predict_proba(s.Xh)[:, 1], time.perf_counter() - t0,
                  {"trees": model.get_booster().num_boosted_rounds()})


def flaml(s: Split, args: argparse.Namespace) -> Fitted:
    from flaml import AutoML

    t0 = time.perf_counter()
    automl = AutoML()
    automl.fit(X_train=s.X, y_train=s.y, task="classification", metric="roc_auc",
               time_budget=args.flaml_budget, n_jobs=args.n_jobs or -1, seed=args.seed,
               verbose=0)
    return Fitted(automl.predict_proba(s.Xh)[:, 1], time.perf_counter() - t0,
                  {"budget_s": args.flaml_budget, "best_estimator": automl.best_estimator,
                   "best_config": automl.best_config})


FITS: dict[str, Callable[[Split, argparse.Namespace], Fitted]] = {
    "lgbm_default": lgbm_default, "lgbm_tuned": lgbm_tuned, "xgb_default": xgb_default,
    "flaml": flaml}


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"roc_auc": float(roc_auc(y, p)), "average_precision": float(average_precision(y, p)),
            "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))}


def crimeclass_best(args: argparse.Namespace) -> tuple[Any, str]:
    """The run (given, or trained here) and the name of its best model."""
    if args.run is not None:
        run = open_run(args.run)
    else:
        config = TrainConfig(models=tuple(args.models.split(",")), trials=args.trials,
                             folds=args.folds, since=args.since, until=args.until,
                             holdout=args.holdout, sample=args.sample,
                             search_sample=args.search_sample or None, seed=args.seed,
                             n_jobs=args.n_jobs, baselines=False,
                             features=FeatureSpec(history=MORE_SCALES) if args.more_scales
                             else FeatureSpec())
        runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="crimeclass-peers-"))
        run = open_run(train(args.store, config, runs_dir=runs).run_dir)
    if run.best_model is None:
        raise SystemExit(f"{run.path} names no best model")
    return run, run.best_model


def compare(args: argparse.Namespace) -> dict[str, Any]:
    run, best = crimeclass_best(args)
    split = read_split(args.store, config_of_run(run))
    preds = run.predictions
    if not np.array_equal(preds["key"].to_numpy(), split.keys):
        raise SystemExit("the run's held-out rows are not those of the frame read again: "
                         "another store than the run's?")
    p_best = preds[f"p_{best}"].to_numpy(dtype=float)
    entry = run.model_entry(best)
    out: dict[str, Any] = {
        "crimeclass": {"model": best, "run": str(run.path), "title": entry.get("title"),
                       "fit_seconds": sum((entry.get("seconds") or {}).values()),
                       "seconds": entry.get("seconds"), **scores(split.yh, p_best)},
        "peers": []}
    for name in args.peers.split(","):
        caught: list[str] = []
        with recorded(caught):
            fitted = FITS[name](split, args)
        paired = {m: paired_bootstrap(split.yh, p_best, fitted.p, metric=m, n_boot=args.n_boot,
                                      random_state=args.seed).to_dict()
                  for m in ("roc_auc", "average_precision")}
        out["peers"].append({"name": name, "fit_seconds": round(fitted.seconds, 2),
                             **scores(split.yh, fitted.p), "best_minus_peer": paired,
                             **fitted.detail, "warnings": caught})
        print(f"{name:14s} ROC AUC {out['peers'][-1]['roc_auc']:.4f}  best - it: "
              f"{paired['roc_auc']['difference']['value']:+.4f}", flush=True)
    out["crimeclass_ahead_of_every_peer"] = all(
        p["best_minus_peer"]["roc_auc"]["difference"]["low"] > 0
        for p in out["peers"])
    out["rows"] = {"train": int(len(split.y)), "holdout": int(len(split.yh)),
                   "features": int(split.X.shape[1])}
    out["window"] = split.window
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="The DuckDB store.")
    p.add_argument("--run", type=Path, help="A run folder: its best model (and its window).")
    p.add_argument("--models", default="xgb,lgbm,stack", help="Without --run: models to train.")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--since", default="2012-01-01")
    p.add_argument("--until", default="2018-01-01")
    p.add_argument("--holdout", default="auto")
    p.add_argument("--sample", type=int, help="Training rows (a seeded sample).")
    p.add_argument("--search-sample", type=int, default=50_000, help="0: all.")
    p.add_argument("--more-scales", action="store_true",
                   help="Without --run: history at more scales too (the last day, 90 days).")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--flaml-budget", type=float, default=900.0, help="Seconds.")
    p.add_argument("--lgbm-trials", type=int, default=20)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-dir", type=Path)
    p.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    args = p.parse_args(argv)
    unknown = set(args.peers.split(",")) - set(PEERS)
    if unknown:
        p.error(f"unknown peers {sorted(unknown)}; peers are {', '.join(PEERS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    t0 = time.perf_counter()
    doc = {"store": str(args.store), **compare(args),
           "settings": {k: str(v) if isinstance(v, Path) else v
                        for k, v in vars(args).items()},
           "seconds": round(time.perf_counter() - t0, 1),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
           "versions": {**versions(), **_peer_versions()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"-> {args.out}")
    return doc


def _peer_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("lightgbm", "flaml", "xgboost", "optuna"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


if __name__ == "__main__":
    main()
