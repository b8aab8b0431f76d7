"""bench/xgb_default.py runs end to end on the bundled sample.

Its figures come from the real data only; this checks that each variant is fitted on the
train code's frame, with the parameters it names, and that what it writes is whole.
"""

from __future__ import annotations

import json

import pytest

from .helpers import bench_module

VARIANT_NAMES = ("library", "crimeclass", "previous", "previous_capped", "early_stopped",
                 "tuned", "tuned_family_lr", "searched", "library_encoded")


def _main(argv: list[str]) -> dict:
    with bench_module("xgb_default") as module:
        return module.main(argv)


def _check_fitted(doc: dict, names: tuple[str, ...]) -> None:
    for name in names:
        r = doc[name]
        assert 1 <= r["trees_kept"] <= r["trees_grown"] <= 1000
        assert 0.5 < r["roc_auc"] < 1
        assert r["encoders_s"] + r["boosting_s"] <= r["fit_s"] + 0.2
        assert r["rows_fit"] + r["rows_validation"] == doc["rows"]["train"]
    assert doc["library"]["trees_grown"] == 100 and 0.5 < doc["library"]["roc_auc"] < 1


def test_every_variant_is_fitted_and_written(sample_store, tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"models": [{"name": "xgb", "pipeline_params": {
        "model__max_depth": 3, "model__learning_rate": 0.05}}]}))
    doc = _main(["--store", str(sample_store), "--since", "2014-01-01",
                 "--until", "2017-01-01", "--run-metrics", str(metrics),
                 "--trials", "2", "--n-jobs", "1", "--out", str(tmp_path / "out.json")])
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == doc["rows"]
    previous = doc["previous"]["params"]
    assert previous["learning_rate"] == 0.1 and previous["max_depth"] == 8
    assert previous["validation_fraction"] == 0.1 and previous["max_validation_rows"] is None
    assert doc["tuned"]["params"] == {**previous, "max_depth": 3, "learning_rate": 0.05}
    assert doc["early_stopped"]["params"] == {**previous, "learning_rate": 0.3,
                                              "early_stopping_rounds": 15,
                                              "max_validation_rows": 20_000}
    assert doc["tuned_family_lr"]["params"] == {**doc["early_stopped"]["params"],
                                                "max_depth": 3}
    assert doc["crimeclass"]["params"] == {}
    assert doc["crimeclass"]["trees_grown"] == doc["crimeclass"]["trees_kept"] == 100
    assert doc["crimeclass"]["rows_validation"] == 0  # XGBoost's defaults: no early stopping
    assert doc["previous_capped"]["params"]["max_validation_rows"] == 20_000
    _check_fitted(doc, ("crimeclass", "previous", "previous_capped", "early_stopped", "tuned",
                        "tuned_family_lr", "searched"))
    assert doc["searched"]["search_s"] > 0
    final = doc["searched"]["final_round"]  # None when the search's best is the defaults
    assert final is None or final["kept"] in {"choice", "defaults", "large"}
    from crimeclass.models import MODELS

    if final is not None and final["kept"] == "defaults":
        assert doc["searched"]["params"] == MODELS["xgb"].start
    if final is not None and final["kept"] == "large":  # the shape for many rows
        large = {k.removeprefix("model__"): v for k, v in MODELS["xgb"].candidates["large"]
                 .items()}
        assert doc["searched"]["params"] == {**MODELS["xgb"].start, **large}
    assert set(doc["searched"]["params"]) <= {
        "max_depth", "min_child_weight", "reg_lambda", "reg_alpha", "gamma", "subsample",
        "colsample_bytree", "n_estimators", "learning_rate", "validation_fraction",
        "early_stopping_rounds", "max_validation_rows"}
    assert doc["library_encoded"]["trees_grown"] == 100
    assert doc["crimeclass"]["over_library_encoded"] > 0
    for name in ("crimeclass", "searched", "library"):  # paired on the same held-out rows
        test = doc[name]["auc_minus_library_encoded"]
        assert test["low"] <= test["difference"] <= test["high"] and test["n_boot"] == 1000
        assert test["difference"] == pytest.approx(
            doc[name]["roc_auc"] - doc["library_encoded"]["roc_auc"], abs=2e-4)
    assert "auc_minus_library_encoded" not in doc["library_encoded"]
    assert not any("_p" in doc[name] for name in VARIANT_NAMES if name in doc)


def test_a_frames_folder_is_read_in_place_of_a_store(sample_store, tmp_path):
    import duckdb

    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features

    with duckdb.connect(str(sample_store), read_only=True) as con:
        frame = read_features(DuckDBEngine(con))
    frame[frame["date"] < "2016-01-01"].to_parquet(tmp_path / "train.parquet")
    frame[frame["date"] >= "2016-01-01"].to_parquet(tmp_path / "test.parquet")
    doc = _main(["--frames", str(tmp_path), "--variants", "library,crimeclass",
                 "--n-jobs", "1", "--out", str(tmp_path / "out.json")])
    assert set(doc) >= {"library", "crimeclass"} and "tuned" not in doc
    assert doc["rows"]["train"] == int((frame["date"] < "2016-01-01").sum())
    _check_fitted(doc, ("crimeclass",))
    sampled = _main(["--frames", str(tmp_path), "--rows", "3000", "--variants",
                     "library,crimeclass", "--n-jobs", "1", "--out", str(tmp_path / "s.json")])
    assert sampled["rows"] == {"train": 3000, "holdout": doc["rows"]["holdout"]}
    _check_fitted(sampled, ("crimeclass",))
