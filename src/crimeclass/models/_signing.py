"""Signatures of run folders, for deployment: OpenSSF model signing with a local key pair.

A run folder (``runs/<run-id>``: config, metrics, every saved model) is signed as
one model by `model-signing <https://pypi.org/project/model-signing/>`_: every
file's sha256 goes into a manifest, which is signed with an elliptic-curve
private key into a Sigstore bundle, ``run.sig``, beside the files. Nothing goes
online: no Sigstore transparency log, no OIDC identity, only the key pair.

Verifying hashes the folder again and checks the bundle with the public key: a
file added, removed or changed after signing (a swapped model, an edited
manifest), a signature made with another key, or no signature at all is
refused. Sign a run when it is complete, after ``crimeclass evaluate`` (which
writes model cards into the run).

Needs the ``sign`` extra (``pip install 'crimeclass[sign]'``).

Examples
--------
Make a key pair with OpenSSL (P-256, P-384 or P-521)::

    openssl ecparam -name prime256v1 -genkey -noout -out key.pem
    openssl ec -in key.pem -pubout -out key.pub
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crimeclass.models._persist import ModelFileError

__all__ = ["SIGNATURE_FILE", "SignatureError", "sign_run", "verify_run"]

#: The signature's name inside the run folder (never part of what it signs).
SIGNATURE_FILE = "run.sig"


class SignatureError(ModelFileError):
    """A run folder's signature is missing, made with another key, or no longer matches."""

    def __init__(self, run_dir: Path, message: str) -> None:
        self.run_dir = run_dir
        super().__init__(f"{run_dir}: {message}")


def _hashing_config() -> Any:
    from model_signing import hashing

    # the signature file is written after hashing, so it is never hashed itself
    return hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE])


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise SignatureError(run_dir, "no run folder here")


def sign_run(run_dir: str | Path, private_key: str | Path, *,
             password: str | None = None) -> Path:
    """Sign every file of a run folder with a local elliptic-curve private key.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (``runs/<run-id>``), complete.
    private_key : str or Path
        PEM file of the private key (curve P-256, P-384 or P-521).
    password : str, optional
        The key's password, if it is encrypted.

    Returns
    -------
    Path
        The signature, ``run_dir/run.sig`` (replaced if the run was signed before).

    .. versionadded:: 0.1
    """
    from model_signing import signing

    run_dir = Path(run_dir)
    _check_run_dir(run_dir)
    try:
        config = signing.Config().use_elliptic_key_signer(private_key=Path(private_key),
                                                          password=password)
    except (OSError, ValueError, TypeError) as e:
        raise SignatureError(run_dir, f"cannot sign with the key {private_key}: {e}") from e
    config.set_hashing_config(_hashing_config())
    signature = run_dir / SIGNATURE_FILE
    config.sign(run_dir, signature)
    return signature


def verify_run(run_dir: str | Path, public_key: str | Path) -> None:
    """Check a run folder against its signature and the signer's public key.

    Parameters
    ----------
    run_dir : str or Path
        The run folder, with ``run.sig`` written by :func:`sign_run`.
    public_key : str or Path
        PEM file of the public key that pairs with the signing key.

    Raises
    ------
    SignatureError
        The run is unsigned, signed with another key, or a file was added,
        removed or changed since it was signed.

    .. versionadded:: 0.1
    """
    from model_signing import verifying

    run_dir = Path(run_dir)
    _check_run_dir(run_dir)
    signature = run_dir / SIGNATURE_FILE
    if not signature.is_file():
        raise SignatureError(run_dir, f"the run is not signed (no {SIGNATURE_FILE}); sign it "
                                      "with the deployer's private key first")
    try:
        config = verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key))
    except (OSError, ValueError, TypeError) as e:
        raise SignatureError(run_dir, f"cannot read the public key {public_key}: {e}") from e
    config.set_hashing_config(_hashing_config())
    try:
        config.verify(run_dir, signature)
    except Exception as e:  # the library raises ValueError, InvalidSignature, protobuf errors
        raise SignatureError(run_dir, _reason(e, public_key)) from e


def _reason(error: Exception, public_key: str | Path) -> str:
    text = str(error) or type(error).__name__
    if "Key mismatch" in text or type(error).__name__ == "InvalidSignature":
        return (f"the signature {SIGNATURE_FILE} was not made with the private key of "
                f"{public_key}; not trusted")
    if "Signature mismatch" in text:
        return (f"the files differ from those signed ({text.removeprefix('Signature mismatch: ')}"
                "); not trusted")
    return f"the signature {SIGNATURE_FILE} cannot be verified ({text}); not trusted"
