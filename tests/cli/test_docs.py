"""docs/python.md runs as written: the notebook API on the bundled sample."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python.md"


def test_the_python_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the page writes crimes.duckdb, report/, runs/ where it runs
    monkeypatch.delenv("CRIMECLASS_STORE", raising=False)
    result = doctest.testfile(str(PAGE), module_relative=False, report=True,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 15
    assert result.failed == 0, capsys.readouterr().out
