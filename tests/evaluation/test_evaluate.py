"""Evaluating a run: its held-out period, other data, fallbacks, outputs and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.evaluation import (
    EvaluateConfig,
    drift_summary,
    evaluate_run,
    write_evaluation,
)
from crimeclass.models import choose_threshold, expected_calibration_error

from .conftest import FAST


@pytest.fixture(scope="module")
def evaluated(small_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    doc = evaluate_run(small_run, config=FAST)
    out = write_evaluation(doc, tmp_path_factory.mktemp("eval") / "evaluation")
    return doc, out


def test_held_out_metrics_are_those_of_the_stored_predictions(small_run, evaluated):
    doc, _ = evaluated
    preds = pd.read_parquet(small_run / "predictions.parquet")
    metrics = json.loads((small_run / "metrics.json").read_text())
    y = preds["is_index"].to_numpy()
    assert doc["window"]["rows"] == len(preds)
    assert [r["name"] for r in doc["models"]] == [m["name"] for m in metrics["models"]]
    for r, m in zip(doc["models"], metrics["models"], strict=True):
        p = preds[f"p_{r['name']}"].to_numpy()
        got = r["metrics"]
        if r["name"] != "majority":
            assert got["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert got["average_precision"]["value"] == pytest.approx(
            average_precision_score(y, p), abs=1e-12)
        assert got["brier"]["value"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
        for iv in got.values():
            assert iv["low"] <= iv["value"] + 1e-12 and iv["value"] <= iv["high"] + 1e-12
        # the threshold chosen by training on validation folds, not on the held-out rows
        assert r["threshold"] == m["threshold"]
    ranked = sorted(doc["models"], key=lambda r: -r["metrics"]["roc_auc"]["value"])
    assert doc["best_model"] == ranked[0]["name"]
    assert (doc["paired"]["a"], doc["paired"]["b"]) == (ranked[0]["name"], ranked[1]["name"])
    assert {t["metric"] for t in doc["paired"]["tests"]} == {"roc_auc", "average_precision",
                                                             "brier"}


def test_calibration_is_fit_on_the_validation_data_of_the_run(small_run, evaluated):
    doc, _ = evaluated
    val = pd.read_parquet(small_run / "validation.parquet")
    assert set(val["model"]) == {r["name"] for r in doc["models"]}
    assert doc["calibration_source"].startswith("validation folds")
    preds = pd.read_parquet(small_run / "predictions.parquet")
    y = preds["is_index"].to_numpy()
    for r in doc["models"]:
        c = r["calibration"]
        assert c["method"] in ("none", "sigmoid", "isotonic")
        assert c["brier_before"] == pytest.approx(
            brier_score_loss(y, preds[f"p_{r['name']}"]), abs=1e-12)
        assert c["helps"] == (c["method"] != "none" and c["brier_after"] < c["brier_before"])
        if c["method"] == "none":
            assert c["brier_after"] == c["brier_before"]
        assert sum(c["reliability_before"]["count"]) == len(y)
        assert c["ece_before"] == pytest.approx(
            expected_calibration_error(y, preds[f"p_{r['name']}"].to_numpy()), abs=1e-12)
        assert r["metrics"]["ece"]["value"] == pytest.approx(c["ece_before"], abs=1e-12)


def test_slices_explanations_and_drift(evaluated):
    doc, _ = evaluated
    by = {r["name"]: r for r in doc["models"]}
    for r in doc["models"]:
        assert set(r["slices"]) == {"district", "community_area", "year"}
        named = [s for s in r["slices"]["community_area"] if s["slice"] is not None]
        assert named and all(s["name"] for s in named)  # names from the explore stage
        assert sum(s["rows"] for s in r["slices"]["year"]) == doc["window"]["rows"]
    assert "importance" not in by["majority"]
    imp = by["xgb"]["importance"]["features"]
    assert len(imp) == len(by["xgb"]["importance"]["features"]) > 10
    assert imp[0]["importance"] >= imp[-1]["importance"]
    assert by["xgb"]["shap"]["scale"] == "log-odds" and by["rf"]["shap"]["rows"] == 30
    assert "shap" not in by["lr"]
    assert doc["drift"] and {"feature", "psi", "level"} <= set(doc["drift"][0])


def test_outputs_are_written_whole(evaluated):
    doc, out = evaluated
    names = [r["name"] for r in doc["models"]]
    assert {"evaluation.json", "evaluation.md", "evaluation.html", "plots",
            "model_cards"} <= {p.name for p in out.iterdir()}
    data = json.loads((out / "evaluation.json").read_text())
    assert data["best_model"] == doc["best_model"] and "_plot" not in data
    for rel in data["plots"].values():
        assert (out / rel).stat().st_size > 1000
    assert {"metrics", "reliability", "importance_xgb", "shap_xgb", "shap_rf",
            "slices_district", "drift"} <= set(data["plots"])
    html = (out / "evaluation.html").read_text()
    assert "<table>" in html and 'src="plots/reliability.png"' in html
    for name in names:
        card = (out / "model_cards" / f"{name}.md").read_text()
        for heading in ("## Model details", "## Intended use", "## Uses to avoid",
                        "## Training data", "## Evaluation data", "## Metrics",
                        "## Calibration", "## Slices", "## Known limits",
                        "## Ethical considerations"):
            assert heading in card, (name, heading)
        assert "Not for individual suspicion" in card and "Reporting bias" in card
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_without_validation_data_the_window_is_split_and_said_so(run_copy):
    (run_copy / "validation.parquet").unlink()
    cfg = EvaluateConfig(**{**FAST.__dict__, "explain_rows": 0, "threshold_rule": "f1"})
    doc = evaluate_run(run_copy, config=cfg)
    assert doc["calibration_source"].startswith("FALLBACK")
    assert any("first half" in n for n in doc["notes"])
    w = doc["window"]
    assert w["reported_rows"] < w["rows"]
    preds = pd.read_parquet(run_copy / "predictions.parquet")
    cut = preds["date"].sort_values().iloc[len(preds) // 2]
    first = preds[preds["date"] < cut]
    for r in doc["models"]:
        # thresholds and calibration from the first half, metrics on the second only
        assert r["threshold"] == choose_threshold(first["is_index"], first[f"p_{r['name']}"])
        assert r["rows"] == w["reported_rows"] == int((preds["date"] >= cut).sum())
        assert r["calibration"]["rows"] == w["reported_rows"]
    md = render(doc)
    assert "FALLBACK" in md


def render(doc: dict) -> str:
    from crimeclass.evaluation import render_markdown

    return render_markdown(doc, {})


def test_a_target_precision_is_reached_on_validation_data(small_run):
    cfg = EvaluateConfig(**{**FAST.__dict__, "explain_rows": 0, "threshold_rule": "precision",
                            "target_precision": 0.6})
    doc = evaluate_run(small_run, config=cfg)
    val = pd.read_parquet(small_run / "validation.parquet")
    for r in doc["models"]:
        v = val[val["model"] == r["name"]]
        assert r["threshold"] == choose_threshold(v["is_index"], v["p"], rule="precision",
                                                  target_precision=0.6)
    assert doc["window"]["reported_rows"] == doc["window"]["rows"]


def test_scoring_the_store_again_gives_the_runs_predictions(small_run, sample_store):
    metrics = json.loads((small_run / "metrics.json").read_text())
    hold = metrics["holdout"]
    cfg = EvaluateConfig(**{**FAST.__dict__, "explain_rows": 0})
    doc = evaluate_run(small_run, data=sample_store, since=hold["since"][:10],
                       until=hold["until"][:10], config=cfg)
    held = evaluate_run(small_run, config=cfg)
    assert doc["source"]["kind"] == "other data"
    for a, b in zip(doc["models"], held["models"], strict=True):
        for m in ("roc_auc", "average_precision", "log_loss", "brier", "f1"):
            assert a["metrics"][m]["value"] == pytest.approx(b["metrics"][m]["value"], abs=1e-9)


def test_cli_evaluate_json_on_a_csv(small_run, main_sample, tmp_path):
    out = tmp_path / "ev"
    result = CliRunner().invoke(app, [
        "evaluate", str(small_run), "--data", str(main_sample), "--since", "2015-07-01",
        "--until", "2017-01-01", "--n-boot", "50", "--explain-rows", "0", "--out", str(out),
        "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["out"] == str(out) and (out / "evaluation.html").is_file()
    assert data["window"]["first"] >= "2015-07-01"
    for m in data["models"]:
        assert {"roc_auc", "average_precision", "log_loss", "brier", "f1", "precision", "recall",
                "balanced_accuracy"} <= set(m["metrics"])
        assert set(m["metrics"]["roc_auc"]) == {"value", "low", "high"}
    assert any("overlaps the training period" in n for n in data["notes"])
    (account,) = data["source"]["ingested"]  # ingested with the usual checks
    assert account["read"] > 40_000 and account["inserted"] > 0 and "quarantined" in account


def test_cli_evaluate_writes_the_model_cards_into_the_run(run_copy):
    result = CliRunner().invoke(app, ["evaluate", str(run_copy), "--n-boot", "20",
                                      "--explain-rows", "0"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "paired bootstrap" in result.stdout
    # the tables fit an 80-column terminal whole: nothing cut to an ellipsis
    assert "…" not in result.stdout and max(map(len, result.stdout.splitlines())) <= 80
    assert re.search(r"majority\s+0\.500 \[0\.500, 0\.500\]", result.stdout)
    assert (run_copy / "evaluation" / "evaluation.json").is_file()
    for name in ("majority", "location_rate", "lr", "rf", "xgb"):
        assert "# Model card" in (run_copy / "models" / name / "model_card.md").read_text()
    # a second evaluation replaces the first whole
    first = (run_copy / "evaluation" / "evaluation.json").read_text()
    result = CliRunner().invoke(app, ["evaluate", str(run_copy), "--n-boot", "20",
                                      "--explain-rows", "0", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (run_copy / "evaluation" / "evaluation.json").read_text() != first
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".")]


def test_reliability_has_a_point_for_a_constant_model(evaluated):
    doc, _ = evaluated
    majority = next(r for r in doc["models"] if r["name"] == "majority")
    rel = majority["calibration"]["reliability_before"]
    assert len(rel["predicted"]) == 1 and np.isclose(rel["count"][0], doc["window"]["rows"])


def test_an_arrest_run_is_evaluated_on_its_own_label(sample_store, tmp_path):
    from crimeclass.models import TrainConfig, train

    from .conftest import SPEC

    cfg = TrainConfig(models=("lr",), trials=1, folds=2, since="2015-01-01", features=SPEC,
                      target="arrest", search_sample=None, n_jobs=1)
    run = train(sample_store, cfg, runs_dir=tmp_path).run_dir
    doc = evaluate_run(run, config=FAST)
    preds = pd.read_parquet(run / "predictions.parquet")
    y, p = preds["arrest"].to_numpy(), preds["p_lr"].to_numpy()
    lr = next(r for r in doc["models"] if r["name"] == "lr")
    assert lr["metrics"]["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert doc["target"] == "arrest" and doc["window"]["positive_share"] == pytest.approx(y.mean())
    assert doc["calibration_source"].startswith("validation folds")
    out = write_evaluation(doc, tmp_path / "evaluation")
    text = (out / "evaluation.md").read_text() + (out / "model_cards" / "lr.md").read_text()
    assert "arrests" in text and "index offenses" not in text


def test_train_and_evaluate_write_the_held_out_window_alike(small_run, evaluated):
    from crimeclass.cli._render import as_text, comparison_table, evaluation_tables
    from crimeclass.models import open_run

    def words(text: str) -> str:  # a title wraps at its table's width
        return " ".join(text.split())

    doc, _ = evaluated
    trained = words(as_text(comparison_table(open_run(small_run).metrics)))
    rank, _ = evaluation_tables(doc)
    evaluated_text = words(as_text(rank))
    window = "2016-01-01 to 2017-01-01 (excluded)"
    assert window in trained and window in evaluated_text
    assert "2016-12-31" not in evaluated_text


def test_a_column_the_training_years_never_published_is_not_a_major_drift(evaluated,
                                                                          tmp_path):
    # the records of 2001-2011 hold no district: every training value is missing
    train = pd.DataFrame({"district": pd.Series([None] * 400, dtype="string"),
                          "x_km": np.full(400, np.nan),
                          "hour": np.arange(400) % 24})
    new = pd.DataFrame({"district": pd.Series(["1", "2", "3", "4"] * 100, dtype="string"),
                        "x_km": np.linspace(0, 30, 400), "hour": np.arange(400) % 12})
    rows = {r["feature"]: r for r in drift_summary(train, new)}
    for col in ("district", "x_km"):
        assert rows[col]["level"] == "unpublished" and rows[col]["psi"] is None
        assert rows[col]["note"] == "not published in the training years"
    assert rows["hour"]["level"] == "major"
    doc, _ = evaluated
    out = write_evaluation({**doc, "drift": list(rows.values())}, tmp_path / "evaluation")
    md = (out / "evaluation.md").read_text()
    drift = md[md.index("## Drift"):]
    assert "district, x_km: not published in the training years" in drift
    assert "| district |" not in drift and "| hour |" in drift
    assert (out / "plots" / "drift.png").is_file()
