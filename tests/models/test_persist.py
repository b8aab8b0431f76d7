"""Every family saved in its safe format and loaded back gives the same predictions."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import skops.io as sio

from crimeclass.models import MODELS, ModelFileError, load_model, make_model, save_model
from crimeclass.models._persist import check_manifest_sha256, manifest_sha256

FAST = {"rf": {"model__n_estimators": 10}, "svm": {"model__estimator__svc__max_iter": 1000},
        "lr": {}, "majority": {},
        "location_rate": {}, "xgb": {"model__n_estimators": 30},
        "nn": {"model__epochs": 2, "model__hidden_units": (16,)},
        "lgbm": {"model__n_estimators": 30}, "stack": {"model__n_splits": 2}}


def _fit(name, features, xy):
    X, y = xy
    return make_model(name, features, n_jobs=1).set_params(**FAST[name]).fit(X, y)


@pytest.mark.parametrize("name", [
    "majority", "location_rate", "lr", "rf", "svm", "xgb", "lgbm", "stack",
    pytest.param("nn", marks=pytest.mark.slow),
])
def test_saved_models_predict_the_same_after_loading(name, features, xy, holdout_xy, tmp_path):
    model = _fit(name, features, xy)
    manifest = save_model(model, tmp_path / name, saved_as=MODELS[name].saved_as,
                          manifest={"name": name, "threshold": 0.4})
    loaded, read = load_model(tmp_path / name)
    X = holdout_xy[0]
    np.testing.assert_array_equal(model.predict_proba(X), loaded.predict_proba(X))
    assert read == json.loads((tmp_path / name / "manifest.json").read_text()) == manifest
    assert read["threshold"] == 0.4 and read["format_version"] == 1
    expected = {"skops": {"pipeline.skops"}, "xgboost-ubj": {"pipeline.skops", "booster.ubj"},
                "keras": {"pipeline.skops", "network.keras"},
                "lightgbm-txt": {"pipeline.skops", "booster.txt"},
                "stack": {"pipeline.skops", "base-xgb.ubj", "base-lgbm.txt"},
                }[MODELS[name].saved_as]
    assert set(read["files"]) == expected
    assert not list((tmp_path / name).glob("*.pkl")) and not list(
        (tmp_path / name).glob("*.pickle"))


def test_saving_leaves_the_fitted_model_whole(features, xy, tmp_path):
    model = _fit("xgb", features, xy)
    save_model(model, tmp_path / "m", saved_as="xgboost-ubj")
    assert model[-1].booster_ is not None
    model.predict_proba(xy[0].iloc[:3])


def test_an_altered_file_is_not_loaded(features, xy, tmp_path):
    save_model(_fit("lr", features, xy), tmp_path / "m")
    path = tmp_path / "m" / "pipeline.skops"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="does not match the sha256"):
        load_model(tmp_path / "m")


def _edit_manifest(folder, **changes):
    path = folder / "manifest.json"
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("name", ["lr", "xgb"])
def test_a_manifest_that_lists_no_files_loads_nothing(name, features, xy, tmp_path):
    folder = tmp_path / "m"
    save_model(_fit(name, features, xy), folder, saved_as=MODELS[name].saved_as)
    _edit_manifest(folder, files={})
    with pytest.raises(ModelFileError, match=r"manifest.json lists the files \[\], but a "
                                             r".* model loads exactly .*pipeline.skops"):
        load_model(folder)


def test_a_file_the_manifest_leaves_out_is_not_loaded(features, xy, tmp_path):
    """The booster beside the pipeline is loaded only when the manifest vouches for it."""
    folder = tmp_path / "m"
    save_model(_fit("xgb", features, xy), folder, saved_as="xgboost-ubj")
    doc = json.loads((folder / "manifest.json").read_text())
    del doc["files"]["booster.ubj"]
    (folder / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=r"lists the files \['pipeline.skops'\], but a "
                                             r"'xgboost-ubj' model loads exactly"):
        load_model(folder)
    # nor does calling it a plain skops model get the pipeline loaded without its trees
    _edit_manifest(folder, saved_as="skops", files={})
    with pytest.raises(ModelFileError, match=r"lists the files \[\]"):
        load_model(folder)


def test_a_swapped_file_is_not_loaded(features, xy, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_model(_fit("xgb", features, xy), a, saved_as="xgboost-ubj")
    other = make_model("xgb", features, n_jobs=1).set_params(model__n_estimators=5).fit(*xy)
    save_model(other, b, saved_as="xgboost-ubj")
    (a / "booster.ubj").write_bytes((b / "booster.ubj").read_bytes())
    with pytest.raises(ModelFileError, match="booster.ubj does not match the sha256"):
        load_model(a)


def test_an_edited_manifest_is_told_by_its_recorded_sha256(features, xy, tmp_path):
    folder = tmp_path / "m"
    save_model(_fit("lr", features, xy), folder, manifest={"threshold": 0.4})
    recorded = manifest_sha256(folder)
    assert recorded == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    check_manifest_sha256(folder, recorded)
    _edit_manifest(folder, threshold=0.01)
    load_model(folder)  # the files still match: only the recorded sha256 tells
    with pytest.raises(ModelFileError, match=f"manifest.json has sha256 [0-9a-f]{{64}}, but "
                                             f"{recorded} was recorded: the manifest was "
                                             "edited"):
        check_manifest_sha256(folder, recorded)
    with pytest.raises(ModelFileError, match="no manifest.json"):
        manifest_sha256(tmp_path)


def test_a_file_with_an_untrusted_type_is_not_loaded(tmp_path):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    folder = tmp_path / "m"
    save_model(Pipeline([("f", FunctionTransformer(json.loads))]), folder)
    with pytest.raises(ModelFileError, match="types crimeclass does not trust: json.loads"):
        load_model(folder)


def test_missing_manifest_or_file(features, xy, tmp_path):
    with pytest.raises(ModelFileError, match="no manifest.json"):
        load_model(tmp_path)
    save_model(_fit("xgb", features, xy), tmp_path / "m", saved_as="xgboost-ubj")
    (tmp_path / "m" / "booster.ubj").unlink()
    with pytest.raises(ModelFileError, match="booster.ubj is missing"):
        load_model(tmp_path / "m")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # types, not fits
def test_trusted_types_are_exactly_those_our_pipelines_hold(features, xy, tmp_path):
    """The allow-list is not a blanket: every entry is needed by some pipeline."""
    from crimeclass.models import TRUSTED_TYPES

    seen = set()
    for name in ("majority", "location_rate", "lr", "rf", "svm", "xgb", "lgbm", "stack"):
        model = _fit(name, features, xy)
        if name == "svm":
            from sklearn.kernel_approximation import Nystroem

            model = make_model("svm", features).set_params(
                model__estimator__kernel=Nystroem(n_components=20)).fit(*xy)
        folder = tmp_path / name
        save_model(model, folder, saved_as=MODELS[name].saved_as)
        seen |= set(sio.get_untrusted_types(file=folder / "pipeline.skops"))
    weighted = make_model("xgb", features, n_jobs=1, half_life_days=365).set_params(
        **FAST["xgb"]).fit(*xy)  # a run's default: recency weights
    save_model(weighted, tmp_path / "weighted", saved_as="xgboost-ubj")
    seen |= set(sio.get_untrusted_types(file=tmp_path / "weighted" / "pipeline.skops"))
    assert seen <= TRUSTED_TYPES
    # the network's wrapper is trusted too (saved without its Keras model)
    assert TRUSTED_TYPES - seen <= {"crimeclass.models._keras.KerasTabularClassifier"}
