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
``booster.txt``
    LightGBM's trees in LightGBM's own text model format (likewise).
``network.keras``
    The Keras network in Keras' own format (likewise).
``base-<name>.ubj``, ``base-<name>.txt``, ``base-<name>.keras``
    For a stacked ensemble (``saved_as="stack"``): each base model's trees or
    network in its library's format; the pipeline file holds the rest.
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
from contextlib import ExitStack, contextmanager
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
    "crimeclass.models._lgbm.EarlyStoppingLGBMClassifier",
    "crimeclass.models._recency.RecencyPipeline",
    "crimeclass.models._stack.TimeStackClassifier",
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
    "lightgbm-txt": {"pipeline.skops": "skops", "booster.txt": "lightgbm-txt"},
    "keras": {"pipeline.skops": "skops", "network.keras": "keras"},
    # the files of a stacked ensemble depend on its bases (see _stack_parts)
    "stack": {"pipeline.skops": "skops"},
}

#: The formats of a fitted part saved apart from the pipeline: attribute, file suffix.
_PART_FORMATS = {"xgboost-ubj": ("booster_", "ubj"), "lightgbm-txt": ("booster_", "txt"),
                 "keras": ("model_", "keras")}
#: The final steps whose fitted part is saved apart, by type, for the bases of a stack.
_STEP_FORMATS = {"EarlyStoppingXGBClassifier": "xgboost-ubj",
                 "EarlyStoppingLGBMClassifier": "lightgbm-txt",
                 "KerasTabularClassifier": "keras"}


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
    for pkg in ("crimeclass", "scikit-learn", "skops", "numpy", "xgboost", "lightgbm", "keras",
                "tensorflow-cpu", "tensorflow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


@contextmanager
def _detached(step: Any, attr: str) -> Iterator[Any]:
    """Take ``attr`` off a fitted step while the pipeline is dumped."""
    value = getattr(step, attr)
    delattr(step, attr)
    try:
        yield value
    finally:
        setattr(step, attr, value)


def _parts(pipeline: Any, saved_as: str) -> dict[str, tuple[Any, str]]:
    """The fitted steps whose part is saved apart: file name -> (step, format)."""
    step = pipeline.steps[-1][1]
    if saved_as in _PART_FORMATS:
        name = {"xgboost-ubj": "booster.ubj", "lightgbm-txt": "booster.txt",
                "keras": "network.keras"}[saved_as]
        return {name: (step, saved_as)}
    if saved_as != "stack":
        return {}
    out = {}
    for base_name, base in getattr(step, "estimators_", []):
        last = base.steps[-1][1] if hasattr(base, "steps") else base
        fmt = _STEP_FORMATS.get(type(last).__name__)
        if fmt is not None:
            out[f"base-{base_name}.{_PART_FORMATS[fmt][1]}"] = (last, fmt)
    return out


def _save_part(value: Any, fmt: str, path: Path) -> None:
    if fmt == "xgboost-ubj":
        value.save_model(str(path))
    elif fmt == "lightgbm-txt":
        # the trees kept by early stopping only; the text format holds no code
        path.write_text(value.model_to_string())
    else:
        value.save(path)


def _load_part(data: bytes, fmt: str) -> Any:
    if fmt == "xgboost-ubj":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        return booster
    if fmt == "lightgbm-txt":
        from crimeclass.models._lgbm import import_lightgbm

        return import_lightgbm().Booster(model_str=data.decode("utf-8"))
    return _load_network(data)


def save_model(pipeline: Any, folder: str | Path, *, saved_as: str = "skops",
               manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a fitted pipeline to ``folder`` (created) with its manifest.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted; its last step is the classifier.
    folder : str or Path
    saved_as : {"skops", "xgboost-ubj", "lightgbm-txt", "keras", "stack"}
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
    parts = _parts(pipeline, saved_as)
    files = {**MODEL_FILES[saved_as], **{name: fmt for name, (_, fmt) in parts.items()}}
    with ExitStack() as stack:
        for name, (step, fmt) in parts.items():
            value = stack.enter_context(_detached(step, _PART_FORMATS[fmt][0]))
            _save_part(value, fmt, folder / name)
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


def _check_listed(folder: Path, manifest: dict[str, Any], needed: set[str]) -> dict[str, Any]:
    """The manifest's file list, if it is exactly ``needed``; else a ModelFileError."""
    listed = manifest.get("files")
    if not isinstance(listed, dict) or set(listed) != needed:
        names = sorted(listed) if isinstance(listed, dict) else listed
        raise ModelFileError(f"{folder / 'manifest.json'} lists the files {names}, but a "
                             f"{manifest.get('saved_as', 'skops')!r} model loads exactly "
                             f"{sorted(needed)}: a file the manifest does not vouch for is "
                             "never loaded; not loaded")
    return listed


def _verified(folder: Path, listed: dict[str, Any], name: str) -> bytes:
    """The bytes of one file the model loads, checked against its listed sha256."""
    path = folder / name
    if not path.is_file():
        raise ModelFileError(f"{path} is missing")
    data = path.read_bytes()
    entry = listed[name]
    if not isinstance(entry, dict) or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise ModelFileError(f"{path} does not match the sha256 in {folder / 'manifest.json'}: "
                             "altered or damaged, not loaded")
    return data


def _load_pipeline(path: Path, data: bytes) -> Any:
    """The skops file's pipeline, loaded with exactly the types crimeclass trusts."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
    if unexpected:
        raise ModelFileError(f"{path} holds types crimeclass does not trust: "
                             f"{', '.join(unexpected)}; not loaded")
    return sio.loads(data, trusted=list(untrusted))


def load_model(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model folder written by :func:`save_model`.

    Checks the format version, that the manifest lists exactly the files its
    format loads, and each file's sha256; then loads the bytes it checked (the
    skops file with an explicit list of trusted types). A stacked ensemble's
    files depend on its bases: its pipeline file (listed and checked) is read
    first, and the manifest must then list exactly its bases' files.

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
    folder = Path(folder)
    manifest = _read_manifest(folder)
    saved_as = manifest.get("saved_as", "skops")
    if saved_as not in MODEL_FILES:
        raise ModelFileError(f"{folder / 'manifest.json'}: unknown model format "
                             f"{saved_as!r}; not loaded")
    needed = set(MODEL_FILES[saved_as])
    if saved_as == "stack":  # first the pipeline file, which tells the bases' files
        listed = manifest.get("files")
        if not isinstance(listed, dict) or "pipeline.skops" not in listed:
            listed = _check_listed(folder, manifest, needed)  # raises: no pipeline file
        data = {"pipeline.skops": _verified(folder, listed, "pipeline.skops")}
        pipeline = _load_pipeline(folder / "pipeline.skops", data["pipeline.skops"])
        listed = _check_listed(folder, manifest, needed | set(_parts(pipeline, saved_as)))
    else:
        listed = _check_listed(folder, manifest, needed)
        data = {name: _verified(folder, listed, name) for name in sorted(needed)}
        pipeline = _load_pipeline(folder / "pipeline.skops", data["pipeline.skops"])
    for name, (step, fmt) in _parts(pipeline, saved_as).items():
        raw = data[name] if name in data else _verified(folder, listed, name)
        setattr(step, _PART_FORMATS[fmt][0], _load_part(raw, fmt))
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
