"""A whole training run on the bundled sample: the run folder is the contract."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.engines import DuckDBEngine
from crimeclass.features import FeatureSpec, HistoryWindow, feature_catalog, read_features
from crimeclass.models import MODELS, PredictOptions, TrainConfig, load_model, predict, train
from crimeclass.models._report import final_round_lines

SPEC = FeatureSpec(history=(HistoryWindow("beat", 28), HistoryWindow("block_location", 365)))

CONFIG = TrainConfig(models=("lr", "xgb"), trials=2, folds=2, since="2014-01-01",
                     until="2017-01-01",
                     search_sample=None, features=SPEC, n_jobs=1)


@pytest.fixture(scope="module")
def run(sample_store, tmp_path_factory):
    return train(sample_store, CONFIG, runs_dir=tmp_path_factory.mktemp("runs"))


def test_the_run_folder_holds_everything(run):
    d = run.run_dir
    for name in ("config.json", "data.json", "features.json", "features.sql",
                 "features.spark.sql", "metrics.json", "comparison.md", "report.html",
                 "predictions.parquet", "plots/roc_pr.png", "plots/calibration.png",
                 "plots/confusion.png"):
        assert (d / name).is_file(), name
    assert sorted(p.name for p in (d / "models").iterdir()) == [
        "location_rate", "lr", "majority", "xgb"]
    assert not list(d.parent.glob(".*.tmp"))  # the temporary folder was renamed
    assert not list(d.rglob("*.pkl"))


def test_metrics_json_is_what_scripts_read(run):
    m = json.loads((run.run_dir / "metrics.json").read_text())
    assert m == run.metrics
    assert m["primary_metric"] == "roc_auc" and m["allow_arrest"] is False
    assert m["holdout"]["since"].startswith("2016-01-01")  # latest complete year of 2014-2016
    assert [x["name"] for x in m["models"]] == ["majority", "location_rate", "lr", "xgb"]
    best = [x for x in m["models"] if x["best"]]
    assert len(best) == 1 and best[0]["name"] == m["best_model"]
    assert best[0]["metrics"]["roc_auc"] == max(x["metrics"]["roc_auc"] for x in m["models"])
    for x in m["models"]:
        assert x["features"] == [f.name for f in feature_catalog(SPEC)]
        assert x["holdout"] == {"since": m["holdout"]["since"], "until": m["holdout"]["until"]}
        assert 0 < x["threshold"] < 1
        assert len(x["cv"]["fold_scores"]) == 2
        for k in ("roc_auc", "average_precision", "log_loss", "brier", "f1", "confusion"):
            assert k in x["metrics"]
    lr = next(x for x in m["models"] if x["name"] == "lr")
    assert "penalty" in lr["params"] and "C" in lr["params"]
    assert m["models"][0]["metrics"]["roc_auc"] == 0.5  # the majority class ranks nothing
    assert lr["final_round"] is None  # no defaults to meet: lr's search has no start
    xgb = next(x for x in m["models"] if x["name"] == "xgb")
    final = xgb["final_round"]  # None when the search's best is the defaults
    if final is None or final["kept"] == "defaults":
        assert xgb["params"] == MODELS["xgb"].start
    else:
        assert final["choice"] > final["defaults"] and xgb["params"] != MODELS["xgb"].start


def test_the_data_fingerprint_names_window_rows_and_hashes(run, sample_store):
    data = json.loads((run.run_dir / "data.json").read_text())
    assert data["rows"]["train"] == run.metrics["train"]["rows"]
    assert data["rows"]["holdout"] == run.metrics["holdout"]["rows"]
    assert data["train"]["since"].startswith("2014-01-01")
    assert len(data["sha256"]["rows"]) == 64 and len(data["sha256"]["features"]) == 64
    assert data["ingests"] and data["store"] == str(sample_store)


def test_every_model_file_matches_its_manifest_and_predicts_what_was_reported(run, sample_store):
    import duckdb

    preds = pd.read_parquet(run.run_dir / "predictions.parquet")
    con = duckdb.connect(str(sample_store), read_only=True)
    frame = read_features(DuckDBEngine(con), SPEC, since="2016-01-01", until="2017-01-01")
    con.close()
    assert list(frame["key"]) == list(preds["key"])
    for name in ("majority", "location_rate", "lr", "xgb"):
        folder = run.run_dir / "models" / name
        manifest = json.loads((folder / "manifest.json").read_text())
        for file, entry in manifest["files"].items():
            assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == entry["sha256"]
        assert manifest["holdout"]["since"].startswith("2016-01-01")
        assert manifest["allow_arrest"] is False
        model, _ = load_model(folder)
        p = model.predict_proba(frame[["date", *manifest["features"]]])[:, 1]
        np.testing.assert_allclose(p, preds[f"p_{name}"], rtol=1e-6)


#: The two families the main run leaves out, kept fast: one trial, few rows, small windows.
SVM_NN = TrainConfig(models=("svm", "nn"), trials=1, folds=2, since="2015-01-01",
                     until="2017-01-01", sample=3000, search_sample=1500, features=SPEC,
                     n_jobs=1, baselines=False)


@pytest.fixture(scope="module")
def svm_nn_run(sample_store, tmp_path_factory):
    return train(sample_store, SVM_NN, runs_dir=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow  # TensorFlow: about a minute on two cores
def test_svm_and_nn_train_save_and_predict_what_was_reported(svm_nn_run, sample_store):
    import duckdb

    d, m = svm_nn_run.run_dir, svm_nn_run.metrics
    assert [x["name"] for x in m["models"]] == ["svm", "nn"]
    assert sorted(p.name for p in (d / "models").iterdir()) == ["nn", "svm"]
    for x in m["models"]:
        assert 0.5 < x["metrics"]["roc_auc"] < 1 and 0 < x["threshold"] < 1
        assert len(x["cv"]["fold_scores"]) == 2
    params = {x["name"]: set(x["params"]) for x in m["models"]}
    assert {"kernel", "alpha"} <= params["svm"]
    assert {"units", "layers", "dropout", "learning_rate"} <= params["nn"]
    preds = pd.read_parquet(d / "predictions.parquet")
    con = duckdb.connect(str(sample_store), read_only=True)
    frame = read_features(DuckDBEngine(con), SPEC, since="2016-01-01", until="2017-01-01")
    con.close()
    assert list(frame["key"]) == list(preds["key"])
    for name, files in (("svm", {"pipeline.skops"}), ("nn", {"pipeline.skops", "network.keras"})):
        model, manifest = load_model(d / "models" / name)
        assert set(manifest["files"]) == files
        p = model.predict_proba(frame[["date", *manifest["features"]]])[:, 1]
        np.testing.assert_allclose(p, preds[f"p_{name}"], rtol=1e-6)


def test_the_comparison_table_marks_the_best(run):
    md = (run.run_dir / "comparison.md").read_text()
    assert f"**{run.best_model}** ★" in md
    assert "location_rate (baseline)" in md
    html = (run.run_dir / "report.html").read_text()
    assert 'class="best"' in html and "plots/roc_pr.png" in html
    finals = final_round_lines(run.metrics)  # xgb's, when its search chose another shape
    xgb = next(m for m in run.metrics["models"] if m["name"] == "xgb")
    assert len(finals) == (xgb["final_round"] is not None)
    for line in finals:  # in the table's notes, and under the page's chosen parameters
        assert line in md
        assert f"Final round, {line.split(' the search')[0]}" in html
        assert line.split("(")[1].split(";")[0] in html  # the scoring, as written


def test_the_final_round_is_said_in_words():
    metrics = {"models": [
        {"name": "lr", "final_round": None},
        {"name": "xgb", "final_round": {"rows": 1_000_000, "fit_rows": 800_000,
                                        "scored_rows": 200_000, "scoring": "roc_auc",
                                        "choice": 0.73759, "defaults": 0.74340,
                                        "kept": "defaults", "seconds": 13.5}},
        {"name": "lgbm", "final_round": {"rows": 900, "fit_rows": 720, "scored_rows": 180,
                                         "scoring": "roc_auc", "choice": 0.7, "defaults": 0.7,
                                         "kept": "large", "seconds": 1.0,
                                         "candidates": {"large": 0.75}}}]}
    assert final_round_lines(metrics) == [
        "xgb: the search's best scored 0.7376, the defaults 0.7434 (roc_auc; fitted on the "
        "earliest 800,000 of 1,000,000 training rows, scored on the rest): the defaults kept.",
        "lgbm: the search's best scored 0.7000, the defaults 0.7000, the large shape 0.7500 "
        "(roc_auc; fitted on the earliest 720 of 900 training rows, scored on the rest): the "
        "large shape kept."]


def test_the_same_seed_gives_the_same_numbers(run, sample_store, tmp_path):
    again = train(sample_store, CONFIG, runs_dir=tmp_path)
    assert again.run_dir != run.run_dir
    for a, b in zip(run.metrics["models"], again.metrics["models"], strict=True):
        assert a["metrics"] == b["metrics"] and a["cv"] == b["cv"] and a["params"] == b["params"]


def test_allowing_arrest_is_written_into_every_output(sample_store, tmp_path):
    cfg = TrainConfig(models=("lr",), trials=1, folds=2, since="2015-01-01", features=SPEC,
                      allow_arrest=True, baselines=False)
    run = train(sample_store, cfg, runs_dir=tmp_path)
    m = run.metrics
    assert m["allow_arrest"] is True and "after the report" in m["arrest_warning"]
    assert all(x["allow_arrest"] and "arrest" in x["features"] for x in m["models"])
    manifest = json.loads((run.run_dir / "models" / "lr" / "manifest.json").read_text())
    assert manifest["allow_arrest"] is True and "arrest_warning" in manifest
    assert "WARNING" in (run.run_dir / "comparison.md").read_text()
    assert "recorded after the report" in (run.run_dir / "report.html").read_text()
    assert json.loads((run.run_dir / "config.json").read_text())["features"]["allow_arrest"]


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"since": "2018-01-01", "until": "2021-01-01", "holdout": "2020"},
                 "holds only index offenses", id="one-class-training"),
    pytest.param({"since": "2016-01-01", "until": "2020-01-01", "holdout": "2019"},
                 "held-out period .* holds only index offenses", id="one-class-holdout"),
    pytest.param({"since": "2015-01-01", "sample": 30}, "rows; at least 20", id="too-few-rows"),
    pytest.param({"since": "2015-01-01", "until": "2015-06-01"}, "no complete calendar year",
                 id="no-holdout"),
])
def test_bad_training_windows_raise_before_anything_is_written(sample_store, tmp_path, kwargs,
                                                               match):
    cfg = TrainConfig(models=("lr",), trials=1, folds=2, features=SPEC, **kwargs)
    with pytest.raises(ValueError, match=match):
        train(sample_store, cfg, runs_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unknown model 'gbm'; models are: majority"):
        TrainConfig(models=("lr", "gbm"))


def test_cli_train_writes_a_run_and_prints_json(sample_store, tmp_path):
    result = CliRunner().invoke(app, [
        "train", "--store", str(sample_store), "--models", "lr", "--trials", "1",
        "--folds", "2", "--since", "2015-01-01", "--runs-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert Path(out["run_dir"]).is_dir()
    assert [m["name"] for m in out["models"]] == ["majority", "location_rate", "lr"]
    assert out["holdout"]["label"] == "2017"


def test_cli_train_table_and_errors(sample_store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, [
        "train", "--store", str(sample_store), "--models", "lr", "--trials", "1",
        "--folds", "2", "--since", "2015-01-01", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "best by held-out roc_auc" in result.output and "location_rate" in result.output
    bad = runner.invoke(app, ["train", "--store", str(sample_store), "--models", "gbm"])
    assert bad.exit_code == 1 and "unknown model 'gbm'" in bad.output


def test_an_arrest_run_states_its_target_everywhere(sample_store, tmp_path):
    cfg = TrainConfig(models=("lr",), trials=1, folds=2, since="2015-01-01", features=SPEC,
                      target="arrest", n_jobs=1)
    run = train(sample_store, cfg, runs_dir=tmp_path)
    m, d = run.metrics, run.run_dir
    assert m["target"] == "arrest" and m["label"] == "arrest" and "index_share" not in m["train"]
    assert [x["name"] for x in m["models"]] == ["majority", "location_rate", "type_rate", "lr"]
    lr = next(x for x in m["models"] if x["name"] == "lr")
    assert lr["target"] == "arrest" and "arrest" not in lr["features"]
    assert {"primary_type", "iucr", "fbi_code", "description", "is_index"} <= set(lr["features"])
    manifest = json.loads((d / "models" / "lr" / "manifest.json").read_text())
    assert manifest["target"] == "arrest" and manifest["classes"]["1"] == "arrest"
    assert manifest["feature_spec"]["target"] == "arrest"
    assert json.loads((d / "config.json").read_text())["target"] == "arrest"
    assert json.loads((d / "data.json").read_text())["label"] == "arrest"
    assert "Target: **arrest**" in (d / "comparison.md").read_text()
    assert "Target: <b>arrest</b>" in (d / "report.html").read_text()
    preds = pd.read_parquet(d / "predictions.parquet")
    assert list(preds.columns[:3]) == ["key", "date", "arrest"]
    assert 0 < preds["arrest"].mean() < 0.5  # about a fifth of incidents end in an arrest
    model, _ = load_model(d / "models" / "lr")
    assert model[0].target == "arrest"
    # batch prediction of the held-out period gives the run's arrest probabilities
    out = tmp_path / "scores.parquet"
    res = predict(d, sample_store, out, model_name="lr", options=PredictOptions(
        since=m["holdout"]["since"][:10], until=m["holdout"]["until"][:10]))
    got = preds.merge(pd.read_parquet(out), on="key", validate="one_to_one")
    assert res.target == "arrest" and len(got) == len(preds)
    np.testing.assert_allclose(got["probability"], got["p_lr"], rtol=1e-12, atol=0)


def test_targets_are_checked_when_configured():
    with pytest.raises(ValueError, match="arrest is the target"):
        TrainConfig(target="arrest", allow_arrest=True)
    with pytest.raises(ValueError, match="cannot be trained for the 'index' target"):
        TrainConfig(models=("type_rate",))
    with pytest.raises(ValueError, match="unknown target"):
        TrainConfig(target="robbery")  # type: ignore[arg-type]


def test_cli_train_target_arrest(sample_store, tmp_path):
    result = CliRunner().invoke(app, [
        "train", "--store", str(sample_store), "--target", "arrest", "--models", "lr",
        "--trials", "1", "--folds", "2", "--since", "2015-01-01", "--runs-dir", str(tmp_path),
        "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["target"] == "arrest"
    assert [m["name"] for m in out["models"]] == ["majority", "location_rate", "type_rate", "lr"]
    bad = CliRunner().invoke(app, ["train", "--store", str(sample_store), "--target", "arrest",
                                   "--allow-arrest"])
    assert bad.exit_code == 1 and "arrest is the target" in bad.output


def test_cli_train_without_a_terminal_prints_a_line_per_finished_model(sample_store, tmp_path):
    # CliRunner's stderr is no terminal (as a pipe or a file): no bars, a line per model
    result = CliRunner().invoke(app, [
        "train", "--store", str(sample_store), "--models", "lr", "--trials", "1",
        "--folds", "2", "--since", "2015-01-01", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    done = re.findall(r"^(\w+): done in [\d.,]+ s, held-out roc_auc (0\.\d{3})$",
                      result.output, flags=re.MULTILINE)
    assert [name for name, _ in done] == ["majority", "location_rate", "lr"]
    metrics = json.loads(next(tmp_path.glob("*/metrics.json")).read_text())
    aucs = {m["name"]: f"{m['metrics']['roc_auc']:.3f}" for m in metrics["models"]}
    assert dict(done) == aucs
    # each line as its model finishes: before the comparison table
    assert result.output.index("lr: done in") < result.output.index("held out 2017-01-01")
    assert "held out 2017-01-01 to 2018-01-01 (excluded)" in result.output
