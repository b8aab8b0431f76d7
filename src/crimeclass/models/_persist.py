"""Saving fitted models in safe formats, never pickle.

A model folder holds:

``pipeline.skops``
    The scikit-learn pipeline (leakage guard, encoders, classifier) through
    skops. Loading lists the types the file holds and refuses any outside
    :data:`TRUSTED_TYPES`, then loads with exactly those trusted (never
    ``trusted=True``).
``booster.ubj``
    XGBoost's trees in XGBoost's own UBJ format (the pipeline file holds the
    estimator without them).
``network.keras``
    The Keras network in Keras' own format (likewise).
``manifest.json``
    Format version, the files with their sha256 (checked before loading), the
    features, the held-out window, the decision threshold chosen on validation
    data, whether arrest was allowed, and the library versions.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crimeclass.models._errors import ModelOptionError, ModelsError

__all__ = ["MODEL_FORMAT_VERSION", "TRUSTED_TYPES", "ModelFileError", "load_model",
           "save_model", "sha256_file", "versions"]

MODEL_FORMAT_VERSION = 1

#: Types a crimeclass pipeline file may hold beyond those skops trusts by default.
TRUSTED_TYPES = frozenset({
    "numpy.dtype",
    # a Nystroem kernel fitted on the linear style's sparse one-hot matrix keeps its
    # basis rows as CSR (skops stores it as arrays, through scipy's own npz format)
    "scipy.sparse._csr.csr_matrix",
    "crimeclass.features._encoders.CategoryCodes",
    "crimeclass.features._leakage.LeakageGuard",
    "crimeclass.models._baselines.GroupRateClassifier",
    "crimeclass.models._keras.KerasTabularClassifier",
    "crimeclass.models._xgb.EarlyStoppingXGBClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.KFold",
    "sklearn.tree._tree.Tree",
})


class ModelFileError(ModelsError):
    """A saved model cannot be loaded: missing, altered, or holding untrusted types."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries a saved model depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("crimeclass", "scikit-learn", "skops", "numpy", "xgboost", "keras",
                "tensorflow-cpu", "tensorflow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


@contextmanager
def _detached(pipeline: Any, attr: str) -> Iterator[Any]:
    """Take ``attr`` off the pipeline's last step while the rest is dumped."""
    step = pipeline.steps[-1][1]
    value = getattr(step, attr)
    delattr(step, attr)
    try:
        yield value
    finally:
        setattr(step, attr, value)


def save_model(pipeline: Any, folder: str | Path, *, saved_as: str = "skops",
               manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a fitted pipeline to ``folder`` (created) with its manifest.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted; its last step is the classifier.
    folder : str or Path
    saved_as : {"skops", "xgboost-ubj", "keras"}
        How the classifier is saved (see the module docstring).
    manifest : dict, optional
        Extra entries for ``manifest.json`` (features, window, threshold ...).

    Returns
    -------
    dict
        The manifest written.
    """
    import skops.io as sio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if saved_as == "skops":
        sio.dump(pipeline, folder / "pipeline.skops")
        files["pipeline.skops"] = "skops"
    elif saved_as == "xgboost-ubj":
        with _detached(pipeline, "booster_") as booster:
            booster.save_model(str(folder / "booster.ubj"))
            sio.dump(pipeline, folder / "pipeline.skops")
        files.update({"pipeline.skops": "skops", "booster.ubj": "xgboost-ubj"})
    elif saved_as == "keras":
        with _detached(pipeline, "model_") as network:
            network.save(folder / "network.keras")
            sio.dump(pipeline, folder / "pipeline.skops")
        files.update({"pipeline.skops": "skops", "network.keras": "keras"})
    else:
        raise ModelOptionError(f"unknown model format {saved_as!r}", option="saved_as",
                               value=saved_as)
    doc = {
        "format_version": MODEL_FORMAT_VERSION,
        **(manifest or {}),
        "saved_as": saved_as,
        "files": {name: {"format": fmt, "sha256": sha256_file(folder / name),
                         "bytes": (folder / name).stat().st_size}
                  for name, fmt in files.items()},
        "versions": versions(),
    }
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return doc


def load_model(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model folder written by :func:`save_model`.

    Checks the format version and every file's sha256, and loads the skops
    file with an explicit list of trusted types.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
    manifest : dict

    Raises
    ------
    ModelFileError
        The folder is incomplete, a file was altered, or the pipeline file
        holds a type crimeclass does not trust.
    """
    import skops.io as sio

    folder = Path(folder)
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise ModelFileError(f"{folder} is not a crimeclass model folder: no manifest.json")
    manifest = json.loads(mpath.read_text())
    if manifest.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{mpath}: model format version {manifest.get('format_version')}; "
                             f"this crimeclass reads version {MODEL_FORMAT_VERSION}")
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.exists():
            raise ModelFileError(f"{path} is missing")
        if sha256_file(path) != entry["sha256"]:
            raise ModelFileError(f"{path} does not match the sha256 in {mpath}: altered or "
                                 "damaged, not loaded")
    skops_path = folder / "pipeline.skops"
    untrusted = sio.get_untrusted_types(file=skops_path)
    unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
    if unexpected:
        raise ModelFileError(f"{skops_path} holds types crimeclass does not trust: "
                             f"{', '.join(unexpected)}; not loaded")
    pipeline = sio.load(skops_path, trusted=list(untrusted))
    saved_as = manifest.get("saved_as", "skops")
    if saved_as == "xgboost-ubj":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(str(folder / "booster.ubj"))
        pipeline.steps[-1][1].booster_ = booster
    elif saved_as == "keras":
        from crimeclass.models._keras import import_keras

        keras = import_keras()
        pipeline.steps[-1][1].model_ = keras.saving.load_model(folder / "network.keras")
    return pipeline, manifest
