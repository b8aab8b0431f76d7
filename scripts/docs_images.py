"""Regenerate the pictures in docs/img (``make docs-images``).

- ``docs/img/report.png``: the exploration report of the bundled sample, as
  headless Chromium shows it (Debian's ``chromium``: ``make chromium``).
- ``docs/img/serve.png``: the analyst page of ``crimeclass serve`` (a quick XGBoost run of
  the sample, served on loopback) after scoring one incident, driven by selenium through
  Debian's ``chromium`` and ``chromedriver``.

The plots of the results run are not drawn here: ``make results`` copies them with the
run's other outputs into ``docs/results/`` (scripts/results_docs.py).

Run: ``python scripts/docs_images.py [--out DOCS_IMG]``.
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _served(tmp: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    """``crimeclass serve`` of a quick XGBoost run of the sample on a free loopback port, and
    an analyst's key; returns once the service is ready."""
    import json
    import time
    import urllib.request

    from crimeclass.data import Store, sample_files
    from crimeclass.serve import add_key

    store = tmp / "sample.duckdb"
    with Store(store) as s:
        for f in sample_files():
            s.ingest_path(f).check()
    cli = [sys.executable, "-m", "crimeclass"]
    out = subprocess.run([*cli, "train", "--store", str(store), "--models", "xgb", "--trials",
                          "1", "--folds", "2", "--runs-dir", str(tmp / "runs"), "--json"],
                         capture_output=True, text=True, check=True)
    run = json.loads(out.stdout)["run_dir"]
    key = add_key(tmp / "keys.json", "analyst")
    port = _free_port()
    proc = subprocess.Popen([*cli, "serve", "--run", run, "--store", str(store), "--port",
                             str(port), "--api-keys", str(tmp / "keys.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                return proc, port, key
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("crimeclass serve did not start")


def serve_png(dest: Path) -> None:
    """The analyst page after scoring one incident, as headless Chromium shows it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with tempfile.TemporaryDirectory(prefix="crimeclass-docs-") as tmp:
        proc, port, key = _served(Path(tmp))
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1150",
                    "--hide-scrollbars"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(driver, 90)
            driver.find_element(By.ID, "key").send_keys(key, Keys.TAB)
            wait.until(lambda d: len(Select(d.find_element(By.ID, "place")).options) > 5)
            driver.execute_script("document.getElementById('date').value = '2026-06-15T14:30'")
            Select(driver.find_element(By.ID, "place")).select_by_visible_text("STREET")
            driver.find_element(By.ID, "beat").send_keys("1834")
            driver.find_element(By.ID, "block").send_keys("004XX E ILLINOIS ST", Keys.ENTER)
            wait.until(lambda d: d.find_elements(By.ID, "probability"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(dest))
        finally:
            driver.quit()
            proc.terminate()
            proc.wait(timeout=30)
    print(f"wrote {dest}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS_IMG, help="docs/img by default")
    args = parser.parse_args(argv)
    report_png(args.out / "report.png")
    serve_png(args.out / "serve.png")


if __name__ == "__main__":
    main()
