"""Regenerate the pictures in docs/img (``make docs-images``).

- ``docs/img/report.png``: the exploration report of the bundled sample, as
  headless Chromium shows it (Debian's ``chromium``: ``make chromium``).
- With ``--run RUN`` (a run folder of real data, e.g. from ``make results``,
  evaluated): its training plots into ``docs/img/models/`` and its evaluation
  plots into ``docs/img/results/``.

Run: ``python scripts/docs_images.py [--run RUN] [--out DOCS_IMG]``.
tests/explore/test_explore_browser.py takes its screenshot with :func:`screenshot`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS_IMG = ROOT / "docs" / "img"
#: The report's picture: a desktop window, tall enough for the first plots.
WINDOW = (1280, 1700)
#: Headless, offline, no profile of the user's, nothing but the page.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]
#: The training plots docs/models.md shows.
MODEL_PLOTS = ("roc_pr.png", "calibration.png", "confusion.png")


def find_chromium() -> str | None:
    """Debian's chromium on PATH, or None."""
    return shutil.which("chromium")


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a throwaway profile folder."""
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def screenshot(chromium: str, page: Path, png: Path, profile: Path) -> None:
    """Write ``png``: ``page`` rendered in a window of :data:`WINDOW` pixels."""
    width, height = WINDOW
    done = run_chromium(chromium, profile, f"--window-size={width},{height}",
                        f"--screenshot={png}", page.resolve().as_uri())
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot: {done.stderr[-1500:]}")


def sample_report(out: Path) -> Path:
    """The exploration report of the bundled sample, written into ``out``."""
    from crimeclass.data import Store, sample_files
    from crimeclass.explore import DuckDBEngine, compute, write_report

    store = out / "sample.duckdb"
    with Store(store) as s:
        for f in sample_files():
            s.ingest_path(f).check()
    (out / "report").mkdir()
    with DuckDBEngine(store) as engine:
        write_report(compute(engine), out / "report")
    return out / "report" / "report.html"


def report_png(dest: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("chromium is not installed: `make chromium` installs Debian's package")
    with tempfile.TemporaryDirectory(prefix="crimeclass-docs-") as tmp:
        page = sample_report(Path(tmp))
        shot = Path(tmp) / "report.png"
        screenshot(chromium, page, shot, Path(tmp) / "profile")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)
    print(f"wrote {dest}")


def run_plots(run: Path, out: Path) -> None:
    """Copy a run's training and evaluation plots into ``out/models`` and ``out/results``."""
    evaluation = run / "evaluation" / "plots"
    if not (run / "plots").is_dir() or not evaluation.is_dir():
        sys.exit(f"{run} is not an evaluated run folder (plots/ and evaluation/plots/ needed: "
                 "crimeclass train, then crimeclass evaluate)")
    for name in MODEL_PLOTS:
        (out / "models").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "plots" / name, out / "models" / name)
    for png in sorted(evaluation.glob("*.png")):
        (out / "results").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, out / "results" / png.name)
    print(f"copied the plots of {run} into {out / 'models'} and {out / 'results'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an evaluated run folder of real data")
    parser.add_argument("--out", type=Path, default=DOCS_IMG, help="docs/img by default")
    args = parser.parse_args(argv)
    report_png(args.out / "report.png")
    if args.run is not None:
        run_plots(args.run, args.out)


if __name__ == "__main__":
    main()
