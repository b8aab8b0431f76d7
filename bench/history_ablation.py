"""What the history features add: crimeclass's XGBoost pipeline with and without them.

Trains on the years before 2017 of a feature frame (``read_features`` output, Parquet) and
scores 2017: all the default features, the same without the ``history`` group, and the
issue's reference list of report-time features (hour, weekday, month, location
description, domestic, beat, district, ward, community area, coordinates); each at two
fixed parameter sets (no search, so that only the features change): those the 20-trial
search of the real run chose (depth 4) and those of a 10-trial run (depth 10). The
per-location-description baseline is scored too.

Run: ``python bench/history_ablation.py FRAME.parquet [--out bench/results/history_ablation.json]``.
A frame may store integer-valued columns as Int32 (listed in its metadata) and leave out
columns that are functions of others (``index_share_*``, ``hour_sin``, ``hour_cos``): they
are recomputed here exactly as the SQL defines them, and compared with the sha256 of the
original columns when a ``hashes.json`` lies beside the frame.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from crimeclass.features import feature_catalog
from crimeclass.models import make_model

REFERENCE = ("hour", "weekday", "month", "location_description", "domestic", "beat", "district",
             "ward", "community_area", "x_coordinate", "y_coordinate")
PARAMS: dict[str, dict[str, float]] = {
    "item-7 search (depth 4)": {
        "max_depth": 4, "learning_rate": 0.020647915183885916,
        "min_child_weight": 37.27442874117124, "reg_lambda": 0.6276640606866488,
        "reg_alpha": 0.6826920615350642, "gamma": 3.4649799547849165,
        "subsample": 0.7743028185488521, "colsample_bytree": 0.4421241917671112},
    "10-trial run (depth 10)": {
        "max_depth": 10, "learning_rate": 0.056492684716241,
        "min_child_weight": 38.32216850492788, "reg_lambda": 0.44103656679709863,
        "reg_alpha": 0.18714500686240676, "gamma": 4.627983191463305,
        "subsample": 0.5355180290989434, "colsample_bytree": 0.3609905097910785},
}


def load(path: Path) -> tuple[pd.DataFrame, dict[str, bool]]:
    df = pd.read_parquet(path)
    for c in df.columns:
        if str(df[c].dtype) == "Int32":
            df[c] = df[c].astype("float32")
    for f in feature_catalog():
        if f.name.startswith("index_share_") and f.name not in df:
            stem = f.name[len("index_share_"):]
            n = df[f"n_{stem}"].to_numpy("float64")
            k = df[f"index_{stem}"].to_numpy("float64")
            with np.errstate(divide="ignore", invalid="ignore"):
                df[f.name] = np.where(n > 0, k / n, np.nan).astype("float32")
    if "hour_sin" not in df:
        hm = (df["hour"].to_numpy("float64") + df["minute"].to_numpy("float64") / 60)
        uniq, inv = np.unique(hm, return_inverse=True)
        for name, fn in (("hour_sin", math.sin), ("hour_cos", math.cos)):
            vals = np.array([fn(2 * math.pi * u / 24) for u in uniq])
            df[name] = vals[inv].astype("float32")
    checks = {}
    hashes = path.parent / "hashes.json"
    if hashes.exists():
        for c, h in json.loads(hashes.read_text()).items():
            checks[c] = hashlib.sha256(df[c].to_numpy().tobytes()).hexdigest() == h
    return df, checks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("frame", type=Path)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                   / "history_ablation.json")
    a = p.parse_args()
    df, checks = load(a.frame)
    cat = feature_catalog()
    cols = ["date", *[f.name for f in cat]]
    tr, te = df[df["date"] < "2017-01-01"], df[df["date"] >= "2017-01-01"]
    y, yt = tr["is_index"].to_numpy().astype(int), te["is_index"].to_numpy().astype(int)
    out = {"frame": str(a.frame), "train": [str(tr["date"].min()), str(tr["date"].max())],
           "train_rows": len(tr), "holdout_rows": len(te), "recomputed_columns_equal": checks,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    base = make_model("location_rate", cat).fit(tr[cols], y)
    out["location_rate"] = round(float(roc_auc_score(yt, base.predict_proba(te[cols])[:, 1])), 4)
    print(json.dumps(out), flush=True)
    sets = {"all": cat, "without history": [f for f in cat if f.group != "history"],
            "issue's reference list": [f for f in cat if f.name in REFERENCE]}
    out["fits"] = []
    for pname, params in PARAMS.items():
        for sname, feats in sets.items():
            c = ["date", *[f.name for f in feats]]
            m = make_model("xgb", feats, n_jobs=os.cpu_count()).set_params(
                **{f"model__{k}": v for k, v in params.items()})
            t0 = time.perf_counter()
            m.fit(tr[c], y)
            fit_s = time.perf_counter() - t0
            auc = roc_auc_score(yt, m.predict_proba(te[c])[:, 1])
            r = {"params": pname, "features": sname, "n_features": len(feats),
                 "roc_auc": round(float(auc), 4), "fit_s": round(fit_s, 1),
                 "trees": int(m[-1].best_iteration_) + 1}
            print(json.dumps(r), flush=True)
            out["fits"].append(r)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
