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
    Format version, the files with their sha256, the features, the held-out
    window, the decision threshold chosen on validation data, whether arrest was
    allowed, and the library versions.

Loading reads each file once, checks its bytes against the manifest's sha256
and loads those very bytes: a file is loaded only if the manifest lists it, so
a manifest emptied or edited to leave a file out loads nothing. What vouches
for the manifest itself is its own sha256, recorded by the run
(:func:`manifest_sha256`, :func:`check_manifest_sha256`), and a run's signature
(:mod:`crimeclass.models._signing`).
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

__all__ = ["MODEL_FORMAT_VERSION", "TRUSTED_TYPES", "ModelFileError",
           "check_manifest_sha256", "load_model", "manifest_sha256", "save_model",
           "sha256_file", "versions"]

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


#: The files each way of saving writes, and so the files its manifest must list.
MODEL_FILES: dict[str, dict[str, str]] = {
    "skops": {"pipeline.skops": "skops"},
    "xgboost-ubj": {"pipeline.skops": "skops", "booster.ubj": "xgboost-ubj"},
    "keras": {"pipeline.skops": "skops", "network.keras": "keras"},
}


def sha256_file(path: Path) -> str:
    """The sha256 of a file, as hex."""
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

    if saved_as not in MODEL_FILES:
        raise ModelOptionError(f"unknown model format {saved_as!r}", option="saved_as",
                               value=saved_as)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = MODEL_FILES[saved_as]
    if saved_as == "skops":
        sio.dump(pipeline, folder / "pipeline.skops")
    elif saved_as == "xgboost-ubj":
        with _detached(pipeline, "booster_") as booster:
            booster.save_model(str(folder / "booster.ubj"))
            sio.dump(pipeline, folder / "pipeline.skops")
    else:
        with _detached(pipeline, "model_") as network:
            network.save(folder / "network.keras")
            sio.dump(pipeline, folder / "pipeline.skops")
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


def manifest_sha256(model_dir: str | Path) -> str:
    """The sha256 of a model folder's ``manifest.json``, as hex.

    A run records it for each model, so that :func:`check_manifest_sha256` can
    tell an edited manifest (say, a changed threshold or file list) later.

    .. versionadded:: 0.1
    """
    mpath = Path(model_dir) / "manifest.json"
    if not mpath.is_file():
        raise ModelFileError(f"{model_dir} is not a crimeclass model folder: no manifest.json")
    return sha256_file(mpath)


def check_manifest_sha256(model_dir: str | Path, expected: str) -> None:
    """Raise :class:`ModelFileError` unless ``manifest.json`` has the sha256 ``expected``.

    .. versionadded:: 0.1
    """
    found = manifest_sha256(model_dir)
    if found != expected:
        raise ModelFileError(f"{Path(model_dir) / 'manifest.json'} has sha256 {found}, but "
                             f"{expected} was recorded: the manifest was edited or "
                             "replaced; not loaded")


def _read_manifest(folder: Path) -> dict[str, Any]:
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise ModelFileError(f"{folder} is not a crimeclass model folder: no manifest.json")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise ModelFileError(f"cannot read {mpath}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format_version") != MODEL_FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise ModelFileError(f"{mpath}: model format version {version}; "
                             f"this crimeclass reads version {MODEL_FORMAT_VERSION}")
    return manifest


def _verified_files(folder: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """The bytes of every file the model loads, each checked against its listed sha256."""
    mpath = folder / "manifest.json"
    saved_as = manifest.get("saved_as", "skops")
    if saved_as not in MODEL_FILES:
        raise ModelFileError(f"{mpath}: unknown model format {saved_as!r}; not loaded")
    listed = manifest.get("files")
    needed = MODEL_FILES[saved_as]
    if not isinstance(listed, dict) or set(listed) != set(needed):
        names = sorted(listed) if isinstance(listed, dict) else listed
        raise ModelFileError(f"{mpath} lists the files {names}, but a {saved_as!r} model "
                             f"loads exactly {sorted(needed)}: a file the manifest does not "
                             "vouch for is never loaded; not loaded")
    out = {}
    for name in needed:
        path = folder / name
        if not path.is_file():
            raise ModelFileError(f"{path} is missing")
        data = path.read_bytes()
        entry = listed[name]
        if not isinstance(entry, dict) or hashlib.sha256(data).hexdigest() != entry.get(
                "sha256"):
            raise ModelFileError(f"{path} does not match the sha256 in {mpath}: altered or "
                                 "damaged, not loaded")
        out[name] = data
    return out


def load_model(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model folder written by :func:`save_model`.

    Checks the format version, that the manifest lists exactly the files its
    format loads, and each file's sha256; then loads the bytes it checked (the
    skops file with an explicit list of trusted types).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
    manifest : dict

    Raises
    ------
    ModelFileError
        The folder is incomplete, the manifest leaves out a file, a file was
        altered, or the pipeline file holds a type crimeclass does not trust.
    """
    import skops.io as sio

    folder = Path(folder)
    manifest = _read_manifest(folder)
    data = _verified_files(folder, manifest)
    skops_path = folder / "pipeline.skops"
    untrusted = sio.get_untrusted_types(data=data["pipeline.skops"])
    unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
    if unexpected:
        raise ModelFileError(f"{skops_path} holds types crimeclass does not trust: "
                             f"{', '.join(unexpected)}; not loaded")
    pipeline = sio.loads(data["pipeline.skops"], trusted=list(untrusted))
    if "booster.ubj" in data:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data["booster.ubj"]))
        pipeline.steps[-1][1].booster_ = booster
    elif "network.keras" in data:
        pipeline.steps[-1][1].model_ = _load_network(data["network.keras"])
    return pipeline, manifest


def _load_network(data: bytes) -> Any:
    """A Keras network from the checked bytes of its ``.keras`` file."""
    import tempfile

    from crimeclass.models._keras import import_keras

    keras = import_keras()
    # Keras loads from a path only: the checked bytes go to a private folder, so the
    # file loaded is the one whose sha256 was checked, whatever happens beside the model
    with tempfile.TemporaryDirectory(prefix="crimeclass-network-") as tmp:
        path = Path(tmp) / "network.keras"
        path.write_bytes(data)
        return keras.saving.load_model(path)
