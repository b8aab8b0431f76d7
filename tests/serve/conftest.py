"""Fixtures of the scoring service's tests: a history store, a small XGBoost run, keys.

The history store holds the bundled sample but its February 2025 file; those 1,000
incidents are the ones the tests score (new to the history, as a dispatch system's are).
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app as cli_app
from crimeclass.data import COLUMNS, Store
from crimeclass.serve import IGNORED_FIELDS, ServeConfig, add_key, create_app

NEW_FILE = "chicago_crimes_2025_02_sample.csv.gz"


@pytest.fixture(scope="session")
def history_store(tmp_path_factory: pytest.TempPathFactory, sample: list[Path]) -> Path:
    """The sample without its February 2025 file (read it; copy it to write)."""
    path = tmp_path_factory.mktemp("serve") / "history.duckdb"
    with Store(path) as s:
        for f in sample:
            if f.name != NEW_FILE:
                s.ingest_path(f).check()
    return path


@pytest.fixture
def store_copy(history_store: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "history.duckdb"
    shutil.copy(history_store, dst)
    return dst


@pytest.fixture(scope="session")
def new_rows(sample: list[Path]) -> list[dict[str, str]]:
    """The February 2025 file's rows, by their CSV headers."""
    path = next(p for p in sample if p.name == NEW_FILE)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


_PORTAL = {c.portal: c.name for c in COLUMNS} | {c.name: c.name for c in COLUMNS}


def as_record(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the portal's web API record (canonical names, text values)."""
    return {_PORTAL[k]: v for k, v in row.items() if k in _PORTAL and v != ""
            and _PORTAL[k] != "location"}


@pytest.fixture(scope="session")
def records(new_rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [as_record(r) for r in new_rows]


def write_csv(path: Path, rows: list[dict[str, str]], *, blank: tuple[str, ...] = ()) -> Path:
    """Rows to a CSV export, the fields of ``blank`` (canonical names) emptied."""
    names = {c.name: c.portal for c in COLUMNS}
    cols = {names[b] for b in blank}
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if k in cols else v) for k, v in r.items()})
    return path


def blank_labels_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """A file of the rows as a scoring request sees them: the ignored fields empty."""
    return write_csv(path, rows, blank=IGNORED_FIELDS)


@pytest.fixture(scope="session")
def xgb_run(tmp_path_factory: pytest.TempPathFactory, history_store: Path) -> Path:
    """A quick run of XGBoost, a logistic regression, LightGBM and the stacked ensemble of
    the three on the history store."""
    runs = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(cli_app, [
        "train", "--store", str(history_store), "--models", "xgb,lr,lgbm,stack", "--trials", "1",
        "--folds", "2", "--since", "2015-01-01", "--runs-dir", str(runs), "--n-jobs", "1",
        "--json"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A key file with a plain key and an admin key."""
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return {"file": path, "user": add_key(path, "analyst"),
            "admin": add_key(path, "ops", admin=True)}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_client(xgb_run: Path, store: Path, keys: dict[str, Any], **kw: Any) -> Any:
    from fastapi.testclient import TestClient

    config = ServeConfig(run=xgb_run, store=store, model=kw.pop("model", "xgb"),
                         api_keys=keys["file"], **kw)
    return TestClient(create_app(config))


@pytest.fixture(scope="module")
def client(xgb_run: Path, history_store: Path, keys: dict[str, Any]) -> Iterator[Any]:
    """A started app on the (read-only) history store."""
    with make_client(xgb_run, history_store, keys) as c:
        yield c
