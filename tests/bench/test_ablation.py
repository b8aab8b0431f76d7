"""bench/ablation.py runs end to end on the bundled sample.

Its figures come from the real data only; this checks that each change is fitted as it
says, against its reference on the same held-out rows, and that what it writes is whole.
"""

from __future__ import annotations

import json

from .helpers import bench_module


def _main(argv: list[str]) -> dict:
    with bench_module("ablation") as module:
        return module.main(argv)


def test_each_change_is_fitted_against_its_reference(sample_store, tmp_path):
    out = tmp_path / "ablation.json"
    doc = _main(["--store", str(sample_store), "--variants", "xgb,xgb_half_life_365",
                 "--holdouts", "2017", "--n-jobs", "1", "--out", str(out)])
    assert json.loads(out.read_text())["origins"].keys() == {"2017"} == doc["origins"].keys()
    origin = doc["origins"]["2017"]
    assert origin["trained_until"] == "2018-01-01" and origin["holdout_rows"] > 0
    base, weighted = origin["variants"]["xgb"], origin["variants"]["xgb_half_life_365"]
    assert base["half_life_days"] is None and "auc_minus_reference" not in base
    assert weighted["half_life_days"] == 365 and weighted["reference"] == "xgb"
    test = weighted["auc_minus_reference"]
    assert test["low"] <= test["difference"] <= test["high"] and test["n_boot"] == 1000
    assert abs(test["difference"] - (weighted["roc_auc"] - base["roc_auc"])) <= 2e-4
    assert weighted["roc_auc"] != base["roc_auc"]  # the weights changed the model
    for row in (base, weighted):
        assert 0.5 < row["roc_auc"] < 1 and 0 < row["ece"] < 1 and row["fit_s"] >= 0


def test_a_merged_run_keeps_the_variants_written_before(sample_store, tmp_path):
    out = tmp_path / "ablation.json"
    first = _main(["--store", str(sample_store), "--variants", "xgb", "--holdouts", "2017",
                   "--n-jobs", "1", "--out", str(out)])
    doc = _main(["--store", str(sample_store), "--variants", "xgb_deeper_half_life_365",
                 "--holdouts", "2017", "--n-jobs", "1", "--out", str(out), "--merge"])
    written = json.loads(out.read_text())
    assert written["origins"]["2017"]["variants"].keys() == {"xgb", "xgb_deeper_half_life_365"}
    assert written["origins"]["2017"]["variants"]["xgb"] == first["origins"]["2017"][
        "variants"]["xgb"]
    assert [r["variants"] for r in written["runs"]] == [["xgb"], ["xgb_deeper_half_life_365"]]
    deeper = doc["origins"]["2017"]["variants"]["xgb_deeper_half_life_365"]
    assert deeper["params"]["max_depth"] == 8 and deeper["reference"] == "xgb_half_life_365"
    assert "auc_minus_reference" not in deeper  # its reference was not fitted in this run


def test_the_trained_variant_is_what_train_keeps(sample_store, tmp_path):
    doc = _main(["--store", str(sample_store), "--variants", "xgb_trained", "--holdouts",
                 "2017", "--n-jobs", "1", "--out", str(tmp_path / "a.json")])
    row = doc["origins"]["2017"]["variants"]["xgb_trained"]
    assert row["search_s"] > 0 and row["half_life_days"] == 365
    final = row["final_round"]  # the search's best, the defaults and the large shape met
    assert final["kept"] in {"choice", "defaults", "large"} and "large" in final["candidates"]


def test_a_reference_run_again_alone_keeps_its_interval(sample_store, tmp_path):
    out = tmp_path / "ablation.json"
    both = _main(["--store", str(sample_store), "--variants", "xgb,xgb_half_life_365",
                  "--holdouts", "2017", "--n-jobs", "1", "--out", str(out)])
    _main(["--store", str(sample_store), "--variants", "xgb_half_life_365", "--holdouts",
           "2017", "--n-jobs", "1", "--out", str(out), "--merge"])
    row = json.loads(out.read_text())["origins"]["2017"]["variants"]["xgb_half_life_365"]
    assert row["auc_minus_reference"] == both["origins"]["2017"]["variants"][
        "xgb_half_life_365"]["auc_minus_reference"]


def test_a_variant_on_a_frame_of_its_own_gets_its_features(sample_store, tmp_path):
    from crimeclass.features import DEFAULT_LATEST

    doc = _main(["--store", str(sample_store), "--variants",
                 "xgb_deeper_more_places,xgb_deeper_latest_seed_1", "--holdouts", "2017",
                 "--n-jobs", "1", "--out", str(tmp_path / "ablation.json")])
    rows = doc["origins"]["2017"]["variants"]
    places, latest = rows["xgb_deeper_more_places"], rows["xgb_deeper_latest_seed_1"]
    assert latest["n_features"] - places["n_features"] == len(DEFAULT_LATEST)
    assert latest["params"]["random_state"] == 1 and "random_state" not in places["params"]
    assert "auc_minus_reference" not in latest  # its reference (seed 1) was not fitted


def test_the_weakest_slices_and_the_area_balanced_weights(sample_store, tmp_path):
    doc = _main(["--store", str(sample_store), "--variants",
                 "xgb_deeper_report,xgb_deeper_report_area_balanced", "--holdouts", "2017",
                 "--n-jobs", "1", "--slices", "--out", str(tmp_path / "ablation.json")])
    rows = doc["origins"]["2017"]["variants"]
    plain, balanced = rows["xgb_deeper_report"], rows["xgb_deeper_report_area_balanced"]
    assert balanced["reference"] == "xgb_deeper_report"
    assert balanced["roc_auc"] != plain["roc_auc"]  # the area weights changed the model
    for row in (plain, balanced):
        for by in ("community_area", "district"):
            worst = row["weakest"][by]
            auc = worst["roc_auc"]
            assert worst["rows"] >= 200 and auc["low"] <= auc["value"] <= auc["high"]
            assert abs(worst["gap"] - (row["roc_auc"] - auc["value"])) <= 2e-4
    assert "on_reference_weakest" not in plain["weakest"]["district"]
    on = balanced["weakest"]["district"]["on_reference_weakest"]
    assert on["slice"] == plain["weakest"]["district"]["slice"]
    assert on["low"] <= on["difference"] <= on["high"]


def test_area_weights_favour_the_smaller_areas():
    import numpy as np

    with bench_module("ablation") as module:
        w = module.area_weights(["1", "1", "1", "1", "2", None])
    assert np.isclose(w.mean(), 1.0)
    assert w[0] == w[3] < w[4] == w[5]  # a missing area is an area of its own
    assert np.isclose(w[4] / w[0], 2.0)  # four rows against one: twice the weight
