"""Signed run folders: a local key pair signs the whole run; anything else is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crimeclass.models._persist import ModelFileError
from crimeclass.models._signing import (
    SIGNATURE_FILE,
    SignatureError,
    sign_run,
    verify_run,
)


def _key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _key_pair(tmp_path, "deployer")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as train writes it, small: config, metrics, a model's files."""
    run = tmp_path / "runs" / "20260101-000000-abcdef"
    model = run / "models" / "lr"
    model.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"models": ["lr"]}))
    (run / "metrics.json").write_text(json.dumps({"best_model": "lr", "models": [
        {"name": "lr", "threshold": 0.4}]}))
    (model / "pipeline.skops").write_bytes(b"PK\x03\x04 a pipeline")
    (model / "manifest.json").write_text(json.dumps({"threshold": 0.4, "files": {}}))
    return run


def test_a_signed_run_verifies(run_dir, keys):
    private, public = keys
    signature = sign_run(run_dir, private)
    assert signature == run_dir / SIGNATURE_FILE and signature.is_file()
    verify_run(run_dir, public)
    assert sign_run(run_dir, private) == signature  # signing again replaces it
    verify_run(run_dir, public)


def test_an_unsigned_run_is_refused(run_dir, keys):
    with pytest.raises(SignatureError, match=f"the run is not signed \\(no {SIGNATURE_FILE}\\)"):
        verify_run(run_dir, keys[1])


def test_a_run_signed_with_another_key_is_refused(run_dir, keys, tmp_path):
    other_private, _ = _key_pair(tmp_path, "someone-else")
    sign_run(run_dir, other_private)
    with pytest.raises(SignatureError, match="was not made with the private key of .*"
                                             "deployer.pub; not trusted"):
        verify_run(run_dir, keys[1])


def test_a_signature_copied_from_another_run_is_refused(run_dir, keys, tmp_path):
    other = tmp_path / "other-run"
    shutil.copytree(run_dir, other)
    (other / "metrics.json").write_text("{}")
    sign_run(other, keys[0])
    shutil.copyfile(other / SIGNATURE_FILE, run_dir / SIGNATURE_FILE)
    with pytest.raises(SignatureError, match="Hash mismatch for 'metrics.json'"):
        verify_run(run_dir, keys[1])


@pytest.mark.parametrize("change", ["edit manifest", "swap model file", "add file",
                                    "remove file"])
def test_a_run_changed_after_signing_is_refused(run_dir, keys, change):
    sign_run(run_dir, keys[0])
    model = run_dir / "models" / "lr"
    if change == "edit manifest":
        (model / "manifest.json").write_text(json.dumps({"threshold": 0.01, "files": {}}))
        expected = "Hash mismatch for 'models/lr/manifest.json'"
    elif change == "swap model file":
        (model / "pipeline.skops").write_bytes(b"PK\x03\x04 another pipeline")
        expected = "Hash mismatch for 'models/lr/pipeline.skops'"
    elif change == "add file":
        (model / "network.keras").write_bytes(b"a network nobody signed")
        expected = "Extra files found .*models/lr/network.keras"
    else:
        (run_dir / "config.json").unlink()
        expected = "Missing files .*config.json"
    with pytest.raises(SignatureError, match=f"the files differ from those signed .*{expected}"):
        verify_run(run_dir, keys[1])


def test_a_signature_error_is_a_model_file_error(run_dir, keys, tmp_path):
    with pytest.raises(ModelFileError, match="no run folder here"):
        verify_run(tmp_path / "missing", keys[1])
    with pytest.raises(SignatureError, match="cannot sign with the key"):
        sign_run(run_dir, keys[1])  # a public key is no private key
    (run_dir / SIGNATURE_FILE).write_text("not a bundle")
    with pytest.raises(SignatureError, match="cannot be verified"):
        verify_run(run_dir, keys[1])
