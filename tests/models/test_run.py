"""The run folder contract: today's layout (format version 1) stays readable, and the
writer leaves a whole folder or none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimeclass.data import Store
from crimeclass.models import (
    RUN_FORMAT_VERSION,
    RunError,
    RunWriter,
    make_model,
    open_run,
    save_model,
    score,
)

from .conftest import SPEC


def _write_v1_run(folder: Path, model, features, holdout_xy) -> Path:
    """A run folder exactly as format version 1 lays it out, written file by file
    (not by the writer under test): one model, ``lr``, no validation.parquet (the
    first runs had none), and the old name ``pr_auc`` for average precision."""
    folder.mkdir()
    names = [f.name for f in features]
    dump = lambda name, obj: (folder / name).write_text(json.dumps(obj, indent=2) + "\n")  # noqa: E731
    dump("config.json", {"format_version": 1, "run_id": "20250101-000000-abcdef",
                         "models": ["lr"], "baselines": False, "cv": "time", "folds": 2,
                         "trials": 1, "since": "2014-01-01", "until": "2018-01-01",
                         "holdout": "auto", "seed": 0, "target": "index",
                         "features": SPEC.to_dict(), "model_names": ["lr"], "n_jobs": 1})
    dump("data.json", {"format_version": 1, "store": "crimeclass.duckdb", "label": "is_index",
                       "rows": {"read": 10, "train": 8, "holdout": 2}})
    dump("features.json", [{"name": f.name, "kind": f.kind, "group": f.group,
                            "uses": list(f.uses), "history": f.history, "doc": f.doc}
                           for f in features])
    (folder / "features.sql").write_text("SELECT 1\n")
    hold = {"since": "2017-01-01T00:00:00", "until": "2018-01-01T00:00:00"}
    dump("metrics.json", {
        "format_version": 1, "run_id": "20250101-000000-abcdef", "primary_metric": "roc_auc",
        "best_model": "lr", "target": "index", "label": "is_index", "allow_arrest": False,
        "holdout": {**hold, "label": "2017", "rows": 2},
        "train": {"since": "2014-01-01T00:00:00", "until": "2017-01-01T00:00:00"},
        "models": [{"name": "lr", "title": "Logistic regression", "baseline": False,
                    "features": names, "holdout": hold, "threshold": 0.4,
                    "metrics": {"roc_auc": 0.7, "pr_auc": 0.6, "brier": 0.2},
                    "path": "models/lr"}]})
    X, y = holdout_xy
    pd.DataFrame({"key": np.arange(len(y)), "date": X["date"], "is_index": y,
                  "p_lr": model.predict_proba(X)[:, 1]}).to_parquet(
        folder / "predictions.parquet", index=False)
    save_model(model, folder / "models" / "lr", manifest={
        "run_id": "20250101-000000-abcdef", "name": "lr", "title": "Logistic regression",
        "target": "index", "label": "is_index", "features": names,
        "feature_spec": SPEC.to_dict(), "allow_arrest": False, "holdout": hold,
        "threshold": 0.4, "classes": {"0": "not an index offense", "1": "index offense"}})
    (folder / "models" / "lr" / "trials.json").write_text("{}\n")
    return folder


@pytest.fixture(scope="module")
def lr(features, xy):
    return make_model("lr", features, n_jobs=1).fit(*xy)


@pytest.fixture
def v1_run(tmp_path, lr, features, holdout_xy) -> Path:
    return _write_v1_run(tmp_path / "20250101-000000-abcdef", lr, features, holdout_xy)


def test_a_format_1_run_is_read(v1_run, features):
    run = open_run(v1_run)
    assert run.format_version == 1 == RUN_FORMAT_VERSION
    assert (run.model_names, run.best_model, run.label, run.target) == (
        ["lr"], "lr", "is_index", "index")
    assert run.feature_names == [f.name for f in features]
    assert run.feature_spec == SPEC
    assert run.validation is None  # the first runs had no validation.parquet
    assert list(run.predictions.columns) == ["key", "date", "is_index", "p_lr"]
    # one name per metric: the old pr_auc is read as average_precision
    assert run.model_entry("lr")["metrics"] == {"roc_auc": 0.7, "average_precision": 0.6,
                                                "brier": 0.2}


def test_a_format_1_model_loads_and_scores_as_saved(v1_run, lr, holdout_xy, sample_frame,
                                                   sample_store):
    model = open_run(v1_run).load_model()
    assert (model.name, model.threshold, model.model_id) == (
        "lr", 0.4, "20250101-000000-abcdef/lr")
    X = holdout_xy[0]
    np.testing.assert_array_equal(model.predict_proba(X), lr.predict_proba(X)[:, 1])
    # through the scoring core, from the store's rows: the features training read
    keys = sample_frame.loc[sample_frame["date"] >= "2017-06-01", "key"].iloc[:20]
    with Store(sample_store, read_only=True) as store:
        rows = store.con.sql(f"SELECT * EXCLUDE (location) FROM incidents WHERE key IN "
                             f"({', '.join(map(str, keys))})").to_arrow_table()
        scores = score(rows, model, history=store)
    frame = sample_frame.set_index("key").loc[scores.features.frame["key"]].reset_index()
    np.testing.assert_allclose(scores.probability, model.predict_proba(frame), rtol=1e-12)


def test_a_newer_format_is_refused(v1_run):
    config = json.loads((v1_run / "config.json").read_text())
    (v1_run / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(RunError, match="run format version 99; this crimeclass reads"):
        open_run(v1_run)


@pytest.mark.parametrize("damage,match", [
    pytest.param("data.json", "incomplete run folder: data.json missing", id="data"),
    pytest.param("models/lr/manifest.json", "models/\\{lr\\}/manifest.json missing",
                 id="manifest"),
])
def test_an_incomplete_run_names_what_is_missing(v1_run, damage, match):
    (v1_run / damage).unlink()
    with pytest.raises(RunError, match=match) as err:
        open_run(v1_run)
    assert err.value.attrs()["run"] == str(v1_run)


def test_predictions_without_a_model_s_column_are_refused(v1_run):
    pd.read_parquet(v1_run / "predictions.parquet").drop(columns="p_lr").to_parquet(
        v1_run / "predictions.parquet")
    run = open_run(v1_run)
    with pytest.raises(RunError, match="lacks the column\\(s\\) p_lr"):
        run.predictions  # noqa: B018


def test_an_unknown_model_names_the_run_s_models(v1_run):
    with pytest.raises(RunError, match="has no model 'rf'; its models are: lr") as err:
        open_run(v1_run).load_model("rf")
    assert err.value.model == "rf"


def test_the_writer_leaves_a_whole_run_or_nothing(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(KeyError), RunWriter(runs, "r1") as w:
        w.write_config({"models": ["lr"]})
        raise KeyError("interrupted")
    assert list(runs.iterdir()) == []
    with RunWriter(runs, "r2") as w:
        w.write_config({"models": ["lr"]})
        doc = w.write_metrics({"models": []})
        final = w.commit()
    assert [p.name for p in runs.iterdir()] == ["r2"] and final == runs / "r2"
    assert doc == {"format_version": RUN_FORMAT_VERSION, "run_id": "r2", "models": []}
    assert json.loads((final / "config.json").read_text())["format_version"] == 1


def test_metrics_record_each_manifest_and_an_edited_manifest_is_refused(run, tmp_path):
    import shutil

    from crimeclass.models import ModelFileError, manifest_sha256

    copy = Path(shutil.copytree(run.run_dir, tmp_path / Path(run.run_dir).name))
    metrics = json.loads((copy / "metrics.json").read_text())
    for entry in metrics["models"]:
        assert entry["manifest_sha256"] == manifest_sha256(copy / "models" / entry["name"])
    name = metrics["models"][-1]["name"]
    open_run(copy).load_model(name)  # as written: loads
    manifest = copy / "models" / name / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["threshold"] = 0.01  # every file still matches its own hash: only the record tells
    manifest.write_text(json.dumps(doc, indent=2) + "\n")
    with pytest.raises(ModelFileError, match="edited or replaced"):
        open_run(copy).load_model(name)
