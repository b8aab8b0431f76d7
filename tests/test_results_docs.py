"""docs/results.md is the rendering of the committed outputs in docs/results/, and every
number in its tables is in those outputs (scripts/results_docs.py, ``make results-docs``)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGE = ROOT / "docs" / "results.md"
PEERS = ROOT / "bench" / "results" / "peers.json"  # make peers' figures, shown on the page

#: A number standing alone (not part of a name such as ``n_beat_28d``), maybe a percent.
NUMBER = re.compile(r"(?<![\w.\-])(-?\d[\d,]*(?:\.\d+)?)(?![\w.])(\s*%)?")
#: Written as text in the outputs: code spans with a digit (run ids), dates, versions.
TEXT = re.compile(r"`[^`]*\d[^`]*`|\d{4}-\d{2}-\d{2}|\d+\.\d+\.\d+")


def _script() -> Any:
    return load_script("results_docs")


def _leaves(o: Any) -> Iterator[Any]:
    if isinstance(o, dict):
        for v in o.values():
            yield from _leaves(v)
    elif isinstance(o, list):
        yield len(o)
        for v in o:
            yield from _leaves(v)
    else:
        yield o


def _outputs(folder: Path) -> tuple[list[float], str]:
    """The numbers of every JSON file under ``folder`` (and of the peers' figures) and all
    of their text."""
    numbers: list[float] = []
    texts: list[str] = []
    for path in [*sorted(folder.rglob("*.json")), *([PEERS] if PEERS.exists() else [])]:
        for v in _leaves(json.loads(path.read_text())):
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, int | float):
                numbers.append(float(v))
            else:
                texts.append(str(v))
                try:
                    numbers.append(float(v))
                except ValueError:
                    pass
    return numbers, "\n".join(texts)


def _table_rows(page: str) -> Iterator[str]:
    """The data rows of every table (not the header, not the separator)."""
    previous = ""
    for line in page.splitlines():
        if line.startswith("|") and previous.startswith("|") and not re.fullmatch(
                r"\|[-:| ]+\|", line):
            yield line
        previous = line


def _found(token: str, percent: bool, numbers: list[float]) -> bool:
    decimals = len(token.split(".")[1]) if "." in token else 0
    value = float(token.replace(",", ""))
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    return any(abs((100 * n if percent else n) - value) <= tolerance for n in numbers)


def unsourced_in(line: str, numbers: list[float], text: str) -> list[str]:
    """Each number of ``line`` that no output holds."""
    missing = []
    rest = line
    for span in TEXT.findall(line):
        if span.strip("`") not in text:
            missing.append(f"{span} in {line}")
        rest = rest.replace(span, " ")
    for token, percent in NUMBER.findall(rest):
        if not _found(token, bool(percent), numbers):
            missing.append(f"{token}{percent} in {line}")
    return missing


def unsourced(page: str, numbers: list[float], text: str) -> list[str]:
    """Each number of the page's tables that no output holds, with its row."""
    return [m for row in _table_rows(page) for m in unsourced_in(row, numbers, text)]


def test_the_page_is_the_rendering_of_the_committed_outputs():
    assert _script().main(["--check"]) == 0, "run `make results-docs` and commit"


def test_every_number_in_the_tables_is_in_the_committed_outputs():
    page = PAGE.read_text()
    numbers, text = _outputs(RESULTS)
    assert sum(1 for _ in _table_rows(page)) > 40  # the tables are there
    assert unsourced(page, numbers, text) == []


def test_a_forged_number_is_caught():
    page = PAGE.read_text()
    numbers, text = _outputs(RESULTS)
    row = next(r for r in _table_rows(page) if "[" in r)  # a metric with its interval
    value = NUMBER.search(row.split("|")[2])
    assert value is not None
    candidates = (f"{float(value.group(1)) + 0.0123 * k:.3f}" for k in range(1, 100))
    forged_value = next(c for c in candidates if not _found(c, False, numbers))
    forged = page.replace(row, row.replace(value.group(1), forged_value, 1), 1)
    assert any(forged_value in m for m in unsourced(forged, numbers, text))


def test_a_run_is_copied_and_rendered_into_the_same_page(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RESULTS, run)  # docs/results/ keeps the run folder's layout
    out = tmp_path / "docs" / "results.md"
    assert _script().main(["--run", str(run), "--earlier", str(run / "earlier"),
                           "--results", str(tmp_path / "docs" / "results"),
                           "--out", str(out)]) == 0
    assert out.read_text() == PAGE.read_text()
    assert not list((tmp_path / "docs" / "results").rglob("*.ubj"))


def test_a_run_without_its_evaluation_is_refused(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RESULTS, run)
    shutil.rmtree(run / "evaluation")
    with pytest.raises(SystemExit, match="evaluate"):
        _script().main(["--run", str(run), "--results", str(tmp_path / "r"),
                        "--out", str(tmp_path / "r.md")])


def test_the_readme_quotes_the_committed_results():
    readme = (ROOT / "README.md").read_text()
    quoted = next(p for p in readme.split("\n\n") if "docs/results.md" in p and "ROC AUC" in p)
    numbers, text = _outputs(RESULTS)
    prose = re.sub(r"`[^`]*`", " ", " ".join(quoted.split()))  # commands, not outputs
    assert NUMBER.search(prose)
    assert unsourced_in(prose, numbers, text) == []


def _render_with_earlier(tmp_path: Path, earlier: Path) -> str:
    results, out = tmp_path / "results", tmp_path / "results.md"
    shutil.copytree(RESULTS, results)
    assert _script().main(["--earlier", str(earlier), "--results", str(results),
                           "--out", str(out)]) == 0
    return out.read_text()


def _over_time_section(page: str) -> str:
    return page.split("## Holds over time")[1].split("\n## ")[0]


def test_the_earlier_origin_is_set_beside_the_run(tmp_path):
    """The committed run stands in for its own earlier origin: this checks the page's
    mechanics (a row per tuned model, its figures from the outputs), not the figures."""
    section = _over_time_section(_render_with_earlier(tmp_path, RESULTS))
    doc = json.loads((RESULTS / "evaluation" / "evaluation.json").read_text())
    tuned = [r["name"] for r in doc["models"] if not r["baseline"]
             and r["validation_drop"]["validation_roc_auc"] is not None]
    rows = list(_table_rows(section))
    assert [r.split("|")[1].split()[0] for r in rows] == tuned
    assert "the same but for the window" in section
    numbers, text = _outputs(tmp_path / "results")
    assert unsourced(section, numbers, text) == []


def test_an_earlier_origin_configured_otherwise_is_named(tmp_path):
    earlier = tmp_path / "earlier-run"
    shutil.copytree(RESULTS, earlier)
    config = json.loads((earlier / "config.json").read_text())
    config["trials"] = config["trials"] + 1
    (earlier / "config.json").write_text(json.dumps(config))
    section = _over_time_section(_render_with_earlier(tmp_path, earlier))
    assert "differ in: trials" in section


@pytest.mark.parametrize(("heading", "least_rows"), [("What each change adds", 18),
                                                     ("Where the model is weakest", 6)])
def test_the_ablation_tables_of_the_models_page_are_in_their_committed_output(heading,
                                                                              least_rows):
    """docs/models.md's tables from bench/ablation.py: every figure with decimals in
    bench/results/ablation.json (signs aside: the page writes a true minus)."""
    page = (ROOT / "docs" / "models.md").read_text()
    section = page.split(f"### {heading}")[1].split("\n### ")[0]
    doc = json.loads((ROOT / "bench" / "results" / "ablation.json").read_text())
    numbers = [abs(float(v)) for v in _leaves(doc)
               if isinstance(v, int | float) and not isinstance(v, bool)]
    rows = list(_table_rows(section))
    assert len(rows) >= least_rows
    missing = [f"{token} in {row}" for row in rows for token, _ in NUMBER.findall(row)
               if "." in token and not _found(token, False, numbers)]
    assert missing == []
