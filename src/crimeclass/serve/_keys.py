"""API keys: a file of their hashes; a key is shown once, when it is made.

A key is 32 random bytes (``secrets``), URL-safe text. The file (JSON) keeps each key's
name, whether it may use the admin routes, and the SHA-256 of the key: a random key of
256 bits needs no slow hash, and the file alone lets nobody in. A presented key is
hashed and compared with every stored hash in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from crimeclass.serve._errors import ServeError

__all__ = ["ApiKey", "KeyFile", "add_key"]

_PREFIX = "cck_"


@dataclass(frozen=True)
class ApiKey:
    """A key as the file holds it (never the key itself)."""

    name: str
    admin: bool
    sha256: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _read(path: Path) -> list[ApiKey]:
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [ApiKey(str(k["name"]), bool(k["admin"]), str(k["sha256"])) for k in doc["keys"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ServeError(f"{path} is not a crimeclass key file: {e}", field="--api-keys"
                         ) from e


class KeyFile:
    """The keys of a file, to check presented keys against."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ServeError(f"no key file at {self.path}; make one with 'crimeclass serve "
                             "keys add NAME --api-keys FILE'", field="--api-keys")
        self.keys = _read(self.path)
        if not self.keys:
            raise ServeError(f"{self.path} holds no key", field="--api-keys")

    def check(self, presented: str) -> ApiKey | None:
        """The key matching ``presented``, compared with every stored hash in constant time."""
        digest = _digest(presented).encode("ascii")
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256.encode("ascii")):
                found = key
        return found


def add_key(path: str | Path, name: str, *, admin: bool = False) -> str:
    """Make a key named ``name``, store its hash in ``path``; return the key (shown once)."""
    path = Path(path)
    if any(k.name == name for k in _read(path)):  # _read checks the file's shape
        raise ServeError(f"{path} has a key named {name!r} already", field="NAME")
    key = _PREFIX + secrets.token_urlsafe(32)
    entries = json.loads(path.read_text(encoding="utf-8"))["keys"] if path.exists() else []
    entries.append({"name": name, "admin": admin, "sha256": _digest(key),
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"keys": entries}, f, indent=1)
    os.replace(tmp, path)
    return key
