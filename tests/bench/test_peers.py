"""bench/peers.py runs end to end on the bundled sample with tiny budgets.

Its figures come from the real data only (the benchmark); this checks that every peer is
fitted on the frame and split of the crimeclass run, and that what it writes is whole.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from .helpers import bench_module


@pytest.fixture(scope="module")
def peers():
    with bench_module("peers") as module:
        yield module


@pytest.fixture(scope="module")
def doc(peers, sample_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("peers")
    return peers.main([
        "--store", str(sample_store), "--since", "2014-01-01", "--until", "2017-01-01",
        "--models", "lgbm", "--trials", "1", "--folds", "2", "--search-sample", "0",
        "--lgbm-trials", "2", "--flaml-budget", "4", "--n-boot", "20", "--n-jobs", "1",
        "--runs-dir", str(tmp / "runs"), "--out", str(tmp / "peers.json")]), tmp


def test_every_peer_is_scored_on_the_run_s_held_out_year(doc, peers):
    doc, tmp = doc
    assert json.loads((tmp / "peers.json").read_text()) == json.loads(
        json.dumps(doc, default=str))
    assert [p["name"] for p in doc["peers"]] == list(peers.PEERS)
    best = doc["crimeclass"]
    assert best["model"] == "lgbm" and best["fit_seconds"] > 0
    assert doc["window"]["holdout_since"].startswith("2016-01-01")
    assert doc["rows"]["holdout"] > 1000 and doc["rows"]["features"] > 30
    for p in (best, *doc["peers"]):
        assert 0.5 < p["roc_auc"] < 1 and 0 < p["average_precision"] < 1 and p["log_loss"] > 0
    for p in doc["peers"]:
        assert p["fit_seconds"] > 0
        for metric in ("roc_auc", "average_precision"):
            test = p["best_minus_peer"][metric]
            assert test["a"] == pytest.approx(best[metric])
            assert test["b"] == pytest.approx(p[metric])
            d = test["difference"]
            assert d["low"] <= d["value"] <= d["high"]
            assert d["value"] == pytest.approx(best[metric] - p[metric])
    assert doc["crimeclass_ahead_of_every_peer"] == all(
        p["best_minus_peer"]["roc_auc"]["difference"]["low"] > 0 for p in doc["peers"])


def test_the_peers_read_the_frame_train_builds(doc, peers, sample_store):
    doc, tmp = doc
    from crimeclass.models import open_run

    run = open_run(next((tmp / "runs").iterdir()))
    split = peers.read_split(sample_store, peers.config_of_run(run))
    assert list(split.X.columns) == run.feature_names
    np.testing.assert_array_equal(split.yh, run.predictions[run.label].to_numpy())
    assert len(split.y) == run.metrics["train"]["rows"]
    place = split.X["beat"]
    assert place.dtype == "category" and split.Xh["beat"].dtype == place.dtype


def test_more_scales_reach_crimeclass_and_every_peer(peers, sample_store, tmp_path):
    doc = peers.main([
        "--store", str(sample_store), "--since", "2014-01-01", "--until", "2017-01-01",
        "--models", "lr", "--trials", "1", "--folds", "2", "--more-scales",
        "--peers", "lgbm_default", "--n-boot", "20", "--n-jobs", "1",
        "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "peers.json")])
    from crimeclass.features import FeatureSpec, feature_catalog
    from crimeclass.features._catalog import MORE_SCALES
    from crimeclass.models import open_run

    run = open_run(next((tmp_path / "runs").iterdir()))
    assert run.feature_names == [f.name for f in feature_catalog(
        FeatureSpec(history=MORE_SCALES))]
    assert doc["rows"]["features"] == len(run.feature_names)
    assert "n_beat_1d" in run.feature_names


def test_an_unknown_peer_is_refused(peers, capsys):
    with pytest.raises(SystemExit):
        peers.parse_args(["--store", "x.duckdb", "--peers", "lgbm_default,catboost"])
    assert "unknown peers ['catboost']" in capsys.readouterr().err
