"""One change at a time: what each adds to crimeclass's model on a later year.

On the frame and split of ``crimeclass train`` (``--store``; the features the train code
reads), for each rolling origin (trained on 2012-2015 and scored on 2016; trained on
2012-2016 and scored on 2017), each variant is one change against its reference, fitted
with fixed parameters (the family's defaults, no search: only the change differs) on every
training row and scored once on the whole later year:

``xgb``
    ``make_model("xgb")``: XGBoost's own defaults behind crimeclass's encoders (the
    reference);
``xgb_half_life_365``, ``xgb_half_life_730``
    the same with recency weights (:class:`crimeclass.models.RecencyPipeline`, a half-life
    of 365 or 730 days);
``lgbm``, ``lgbm_half_life_365``
    ``make_model("lgbm")`` (early stopping on the latest rows), without and with;
``xgb_deeper_half_life_365``
    ``xgb_half_life_365`` with more, deeper and slower trees (depth 8, learning rate 0.05,
    ``min_child_weight`` 40, subsamples of 0.8 and 0.5, early stopping on the latest 20,000
    rows after 30 rounds without gain; against ``xgb_half_life_365``);
``stack_half_life_365``
    the stack with weighted bases, each with its family's defaults (against
    ``xgb_half_life_365``);
``stack_large_half_life_365``
    ``make_model("stack")``: the same with its XGBoost base in the ``large`` shape of
    ``xgb_deeper_half_life_365`` (against ``xgb_deeper_half_life_365``), crimeclass's
    stack since the evening of 2026-12-05;
``xgb_trained``
    what ``crimeclass train --models xgb`` makes of the frame: recency weights, the search
    (20 trials on 50,000 rows), the final round (the search's best, the defaults and the
    family's candidates, the ``large`` shape, on 1,000,000 rows), the refit of the kept
    parameters on every training row (against ``xgb_half_life_365``);
``xgb_deeper_more_scales``
    ``xgb_deeper_half_life_365`` on the frame with history at more scales
    (:data:`crimeclass.features.MORE_SCALES`: the last day and the last 90 days of the same
    beat, community area and grid cell, and 90 days of the block; against
    ``xgb_deeper_half_life_365``);
``xgb_deeper_more_places``
    the same on the frame with history around more places
    (:data:`crimeclass.features.MORE_PLACES`: the kind of place across the city in the
    last 28 days, the grid cell and kind of place, the same four hours of the day at the
    beat and the block, and at the beat on weekdays or at weekends as the incident);
``xgb_deeper_more_places_2``
    the same with four more places (``MORE_PLACES_2`` below; against
    ``xgb_deeper_more_places``);
``xgb_deeper_latest``
    ``xgb_deeper_more_places`` on crimeclass's default frame since 2026-12-06: the same
    with the hours since the latest incident and index offense at the block and kind of
    place, the beat and kind of place and the grid cell, and since the latest index
    offense on the block (:data:`crimeclass.features.DEFAULT_LATEST`; against
    ``xgb_deeper_more_places``);
``xgb_trained_default``
    what ``crimeclass train --models xgb`` makes of the default frame (against
    ``xgb_deeper_latest``);
``stack_default``
    ``make_model("stack")`` on the default frame (against ``xgb_deeper_latest``);
``xgb_deeper_report``
    ``xgb_deeper_latest`` on crimeclass's default frame since 2026-12-07: the same with
    the days from the incident to its report, estimated from the case number's place in
    the order of reports (``report_delay_days``, the ``report`` group; against
    ``xgb_deeper_latest``);
``xgb_trained_report``
    what ``crimeclass train --models xgb`` makes of that frame (against
    ``xgb_deeper_report``);
``xgb_deeper_report_area_balanced``
    ``xgb_deeper_report`` with each training row's recency weight also multiplied by the
    inverse square root of its community area's share of the training rows (normalized to
    a mean of 1): the smaller areas, where the worst slices are, count more (against
    ``xgb_deeper_report``);
``xgb_deeper_more_places_seed_1``, ``xgb_deeper_latest_seed_1``
    the two again with another seed of XGBoost's row and column sampling (the first
    against its seed 0: what the seed alone moves; the second against the first).

Every variant not named on a frame of its own is fitted on the frame of crimeclass's
features until 2026-12-06 (:data:`crimeclass.features.BASE_WINDOWS`, no latest
incidents but the block's).

Each records its fit seconds, ROC AUC, log loss and expected calibration error on the later
year, and the paired bootstrap interval (1,000 replicates) of its ROC AUC minus its
reference's (``xgb`` for the XGBoost variants and ``lgbm``; ``lgbm`` for its own). With
``--slices``, also its weakest community area and district (ROC AUC with the interval of
``crimeclass evaluate``'s slices: 200 replicates, slices of 200 rows or more) and, on the
reference's weakest slice, the paired interval of its ROC AUC minus the reference's there:
whether a change narrows the gap where the model is weakest.

Run: ``python bench/ablation.py --store bench/data/real_2012_2017.duckdb``
(``bench/results/ablation.json``). Figures come from the real data only.
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

from crimeclass.evaluation import slice_metrics
from crimeclass.features import (
    BASE_WINDOWS,
    FEATURE_GROUPS,
    MORE_PLACES,
    MORE_SCALES,
    FeatureSpec,
    HistoryWindow,
    feature_catalog,
)
from crimeclass.models import (
    TrainConfig,
    expected_calibration_error,
    make_model,
    paired_bootstrap,
    recency_weights,
    roc_auc,
)
from crimeclass.models._train import _read_data

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import stamped, write_json  # noqa: E402  (bench/_common.py)

#: More, deeper and slower trees, stopped early on the latest rows.
DEEPER = {"model__n_estimators": 2000, "model__learning_rate": 0.05, "model__max_depth": 8,
          "model__min_child_weight": 40.0, "model__subsample": 0.8,
          "model__colsample_bytree": 0.5, "model__validation_fraction": 0.1,
          "model__early_stopping_rounds": 30, "model__max_validation_rows": 20_000}
#: name -> (family, half-life in days or None, reference, pipeline parameters)
VARIANTS: dict[str, tuple[str, float | None, str | None, dict[str, Any]]] = {
    "xgb": ("xgb", None, None, {}),
    "xgb_half_life_365": ("xgb", 365.0, "xgb", {}),
    "xgb_half_life_730": ("xgb", 730.0, "xgb", {}),
    "lgbm": ("lgbm", None, "xgb", {}),
    "lgbm_half_life_365": ("lgbm", 365.0, "lgbm", {}),
    "xgb_deeper_half_life_365": ("xgb", 365.0, "xgb_half_life_365", DEEPER),
    "stack_half_life_365": ("stack", 365.0, "xgb_half_life_365", {}),
    "xgb_trained": ("xgb", 365.0, "xgb_half_life_365", {}),
    "stack_large_half_life_365": ("stack", 365.0, "xgb_deeper_half_life_365", {}),
    "xgb_deeper_more_scales": ("xgb", 365.0, "xgb_deeper_half_life_365", DEEPER),
    "xgb_deeper_more_places": ("xgb", 365.0, "xgb_deeper_half_life_365", DEEPER),
    "xgb_deeper_more_places_2": ("xgb", 365.0, "xgb_deeper_more_places", DEEPER),
    "xgb_deeper_latest": ("xgb", 365.0, "xgb_deeper_more_places", DEEPER),
    "xgb_trained_default": ("xgb", 365.0, "xgb_deeper_latest", {}),
    "stack_default": ("stack", 365.0, "xgb_deeper_latest", {}),
    "xgb_deeper_report": ("xgb", 365.0, "xgb_deeper_latest", DEEPER),
    "xgb_trained_report": ("xgb", 365.0, "xgb_deeper_report", {}),
    "xgb_deeper_report_area_balanced": ("xgb", 365.0, "xgb_deeper_report", DEEPER),
    "xgb_deeper_more_places_seed_1": ("xgb", 365.0, "xgb_deeper_more_places",
                                      {**DEEPER, "model__random_state": 1}),
    "xgb_deeper_latest_seed_1": ("xgb", 365.0, "xgb_deeper_more_places_seed_1",
                                 {**DEEPER, "model__random_state": 1}),
}
#: ``MORE_PLACES`` and four more: the kind of place across the city in the last week and in
#: the same four hours of the last 28 days, the community area and kind of place, the grid
#: cell in the same four hours.
MORE_PLACES_2 = (*MORE_PLACES, HistoryWindow("location", 7),
                 HistoryWindow("location_hours", 28), HistoryWindow("community_location", 365),
                 HistoryWindow("grid_hours", 365))
#: The groups of crimeclass's features until 2026-12-07 (no report time).
BEFORE_REPORT = tuple(g for g in FEATURE_GROUPS if g != "report")
#: The frame of the variants not in ``SPECS``: crimeclass's features until 2026-12-06.
BASE = FeatureSpec(groups=BEFORE_REPORT, history=BASE_WINDOWS, latest=())
#: Variants on a frame of their own.
SPECS = {"xgb_deeper_more_scales": FeatureSpec(groups=BEFORE_REPORT, history=MORE_SCALES,
                                                latest=()),
         "xgb_deeper_more_places": FeatureSpec(groups=BEFORE_REPORT, history=MORE_PLACES,
                                               latest=()),
         "xgb_deeper_more_places_2": FeatureSpec(groups=BEFORE_REPORT,
                                                 history=MORE_PLACES_2, latest=()),
         "xgb_deeper_more_places_seed_1": FeatureSpec(groups=BEFORE_REPORT,
                                                      history=MORE_PLACES, latest=()),
         **dict.fromkeys(("xgb_deeper_latest", "xgb_trained_default", "stack_default",
                          "xgb_deeper_latest_seed_1"), FeatureSpec(groups=BEFORE_REPORT)),
         **dict.fromkeys(("xgb_deeper_report", "xgb_trained_report",
                          "xgb_deeper_report_area_balanced"), FeatureSpec())}
#: Variants whose rows are also weighted by their community area (``area_weights``).
AREA_BALANCED = {"xgb_deeper_report_area_balanced"}
#: The slices whose weakest member ``--slices`` reports.
SLICE_BYS = ("community_area", "district")
#: Variants whose parameters are chosen as ``crimeclass train`` chooses them.
TRAINED = {"xgb_trained", "xgb_trained_default", "xgb_trained_report"}
#: The stacks whose XGBoost base is crimeclass's, in the large shape.
LARGE_STACKS = {"stack_large_half_life_365", "stack_default"}


def trained_params(family: str, data: Any, feats: list[Any], half_life: float | None,
                   n_jobs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline parameters ``crimeclass train`` keeps for ``family`` (its search and
    final round, as :func:`crimeclass.models._train.tune` runs them), and what it saw."""
    from crimeclass.models._train import _subsample, tune

    config = TrainConfig(models=(family,), half_life_days=half_life)
    sample = _subsample(data.X.assign(_y=data.y), config.search_sample, config.seed + 1)
    rows = argparse.Namespace(Xs=sample.drop(columns="_y"), ys=sample["_y"].to_numpy(),
                              X=data.X, y=data.y)
    t0 = time.perf_counter()
    search, final = tune(family, make_model(family, feats, random_state=config.seed,
                                            n_jobs=n_jobs, half_life_days=half_life),
                         config, rows)
    return dict(search.best_params_), {
        "search_s": round(time.perf_counter() - t0, 1),
        "final_round": final.as_dict() if final is not None else None}
#: (trained until, held-out year)
ORIGINS = (("2017-01-01", "2016"), ("2018-01-01", "2017"))


def area_weights(areas: Any) -> np.ndarray:
    """Per row, the inverse square root of its community area's share of the rows (a
    missing area is an area), scaled to a mean of 1."""
    import pandas as pd

    codes = pd.Series(areas).astype("string").fillna("").to_numpy()
    _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    w = 1.0 / np.sqrt(counts[inverse].astype(float))
    return w / w.mean()


def fit_balanced(pipe: Any, X: Any, y: np.ndarray) -> None:
    """Fit a :class:`RecencyPipeline` with its recency weights times :func:`area_weights`."""
    from sklearn.pipeline import Pipeline

    w = recency_weights(X["date"], pipe.half_life_days) * area_weights(X["community_area"])
    Pipeline.fit(pipe, X, y, **{f"{pipe.steps[-1][0]}__sample_weight": w})


def weakest(y: np.ndarray, p: np.ndarray, Xh: Any, ref: np.ndarray | None,
            ref_weakest: dict[str, Any] | None) -> dict[str, Any]:
    """Per slice kind of ``SLICE_BYS``: the weakest slice's ROC AUC with its interval and
    its gap to all rows; and, on the reference's weakest slice, this model's ROC AUC
    there minus the reference's (paired interval)."""
    out: dict[str, Any] = {}
    overall = float(roc_auc(y, p))
    for by in SLICE_BYS:
        groups = Xh[by].astype("string").fillna("").to_numpy()
        scored = [r for r in slice_metrics(y, p, groups) if "roc_auc" in r]
        worst = min(scored, key=lambda r: r["roc_auc"]["value"])
        auc = worst["roc_auc"]
        entry: dict[str, Any] = {
            "slice": worst["slice"], "rows": worst["rows"],
            "roc_auc": {k: round(auc[k], 4) for k in ("value", "low", "high")},
            "gap": round(overall - auc["value"], 4)}
        if ref is not None and ref_weakest is not None:
            mask = groups == ref_weakest[by]["slice"]
            test = paired_bootstrap(y[mask], p[mask], ref[mask])
            entry["on_reference_weakest"] = {
                "slice": ref_weakest[by]["slice"],
                "difference": round(test.difference.value, 4),
                "low": round(test.difference.low, 4), "high": round(test.difference.high, 4)}
        out[by] = entry
    return out


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def one_origin(store: Path, until: str, holdout: str, names: list[str],
               n_jobs: int, slices: bool = False) -> dict[str, Any]:
    frames: dict[Any, Any] = {}

    def frame(spec: FeatureSpec) -> Any:
        if spec not in frames:
            config = TrainConfig(models=("xgb",), since="2012-01-01", until=until,
                                 holdout=holdout, features=spec)
            feats = feature_catalog(config.features)
            frames[spec] = feats, _read_data(store, config, [f.name for f in feats],
                                             lambda kind, info: None)
        return frames[spec]

    feats, data = base = frame(BASE)
    out: dict[str, Any] = {"train_rows": len(data.y), "holdout_rows": len(data.yh),
                           "holdout_index_share": round(float(data.yh.mean()), 4),
                           "variants": {}}
    probs: dict[str, np.ndarray] = {}
    for name in names:
        family, half_life, ref, params = VARIANTS[name]
        feats, data = frame(SPECS.get(name, BASE))
        assert np.array_equal(data.yh, base[1].yh), "the frames hold other held-out rows"
        seen: dict[str, Any] = {}
        if name in TRAINED:
            params, seen = trained_params(family, data, feats, half_life, n_jobs)
        pipe = make_model(family, feats, n_jobs=n_jobs, half_life_days=half_life)
        pipe.set_params(**params)
        if name == "stack_half_life_365":  # its XGBoost base with the family's defaults
            stack = pipe.named_steps["model"]
            stack.bases = [(b, make_model("xgb", feats, n_jobs=n_jobs,
                                          half_life_days=half_life) if b == "xgb" else est)
                           for b, est in stack.bases]
        if name in LARGE_STACKS:  # crimeclass's stack: its XGBoost base in the large shape
            xgb = dict(pipe.named_steps["model"].bases)["xgb"].named_steps["model"]
            assert all(getattr(xgb, k.removeprefix("model__")) == v for k, v in DEEPER.items())
            seen = {"xgb_base_params": {k.removeprefix("model__"): v
                                        for k, v in DEEPER.items()}}
        t0 = time.perf_counter()
        if name in AREA_BALANCED:
            fit_balanced(pipe, data.X, data.y)
        else:
            pipe.fit(data.X, data.y)
        fit_s = time.perf_counter() - t0
        p = pipe.predict_proba(data.Xh)[:, 1]
        probs[name] = p
        row: dict[str, Any] = {
            "family": family, "half_life_days": half_life, "reference": ref,
            "params": {k.removeprefix("model__"): v for k, v in params.items()},
            "fit_s": round(fit_s, 1), "roc_auc": round(float(roc_auc(data.yh, p)), 4),
            "log_loss": round(log_loss(data.yh, p), 4),
            "ece": round(float(expected_calibration_error(data.yh, p)), 4),
            "mean_probability": round(float(p.mean()), 4), "n_features": len(feats),
            **seen}
        if ref is not None and ref in probs:
            test = paired_bootstrap(data.yh, p, probs[ref])
            row["auc_minus_reference"] = {
                "difference": round(test.difference.value, 4),
                "low": round(test.difference.low, 4), "high": round(test.difference.high, 4),
                "p_value": test.p_value, "n_boot": test.n_boot}
        if slices:
            ref_row = out["variants"].get(ref, {}) if ref is not None else {}
            row["weakest"] = weakest(data.yh, p, data.Xh, probs.get(ref) if ref else None,
                                     ref_row.get("weakest"))
        out["variants"][name] = row
        print(holdout, name, row, flush=True)
    return out


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old``'s variants with ``new``'s added or replaced; each run's time kept apart."""
    out = {**old, "runs": [*old.get("runs", [_run_of(old)]), _run_of(new)]}
    for year, origin in new["origins"].items():
        kept = old["origins"].get(year, {}).get("variants", {})
        variants = {**kept, **origin["variants"]}
        for name, row in origin["variants"].items():  # a reference run again, alone: the
            before = kept.get(name, {})  # same model; its interval of the run before stays
            if ("auc_minus_reference" not in row and "auc_minus_reference" in before
                    and before["roc_auc"] == row["roc_auc"]):
                variants[name] = {**row, "auc_minus_reference": before["auc_minus_reference"]}
        out["origins"][year] = {**origin, "variants": variants}
    return out


def _run_of(doc: dict[str, Any]) -> dict[str, Any]:
    return {"when": doc["when"], "seconds": doc["seconds"], "load_average":
            doc["machine"]["load_average"], "variants": sorted(
                {v for o in doc["origins"].values() for v in o["variants"]})}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="The DuckDB store (2012-2017).")
    p.add_argument("--variants", type=lambda v: v.split(","), default=list(VARIANTS),
                   help=f"Comma-separated, of {','.join(VARIANTS)} (all by default).")
    p.add_argument("--holdouts", type=lambda v: v.split(","), default=[h for _, h in ORIGINS],
                   help="Held-out years, of 2016,2017 (both by default).")
    p.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=HERE / "results" / "ablation.json")
    p.add_argument("--slices", action="store_true",
                   help="Also each variant's weakest community area and district, and its "
                        "ROC AUC minus its reference's on the reference's weakest.")
    p.add_argument("--merge", action="store_true",
                   help="Keep the variants --out holds already, replacing those run now.")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    bad = sorted(set(args.variants) - set(VARIANTS))
    if bad:
        raise SystemExit(f"--variants: unknown {bad}; known: {','.join(VARIANTS)}")
    t0 = time.perf_counter()
    doc: dict[str, Any] = {"store": str(args.store), "origins": {}}
    for until, holdout in ORIGINS:
        if holdout in args.holdouts:
            doc["origins"][holdout] = {"trained_until": until, **one_origin(
                args.store, until, holdout, args.variants, args.n_jobs, args.slices)}
    doc = stamped(doc, t0)
    if args.merge and args.out.exists():
        doc = merged(json.loads(args.out.read_text()), doc)
    write_json(doc, args.out)
    return doc


if __name__ == "__main__":
    main()
