"""What every benchmark of bench/ writes beside its figures (a module of bench/, not of
the package: the scripts run as ``python bench/NAME.py``, with this folder on the path)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from crimeclass.models._persist import versions

__all__ = ["stamped", "write_json"]


def stamped(doc: dict[str, Any], started: float) -> dict[str, Any]:
    """``doc`` with how long it took since ``started`` (``time.perf_counter()``), when it
    ended, the machine and the versions of the libraries."""
    return {**doc, "seconds": round(time.perf_counter() - started, 1),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average": os.getloadavg()},
            "versions": versions()}


def write_json(doc: dict[str, Any], out: Path) -> None:
    """Write ``doc`` to ``out`` (its folder made) and say so."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {out}")
