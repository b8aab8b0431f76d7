"""The report as a person sees it: headless Chromium renders it, every image loads at
its size (and decodes in full with Pillow), the page logs no error, and the
screenshot is kept as docs/img/report.png."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "report.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

# Injected into a copy of the page before anything else: records script errors,
# failed loads and console.error calls, then checks every image and writes the
# outcome into the DOM, where --dump-dom can read it.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(
  e.message || ("failed to load " + ((e.target && (e.target.src || e.target.href)) || "?")
  ).slice(0, 200)), true);
const __consoleError = console.error;
console.error = (...a) => { window.__errors.push(a.join(" ")); __consoleError(...a); };
window.addEventListener("load", () => {
  // after "load", an image that failed to decode is not complete or has no size
  const imgs = [...document.images].map(img => ({
    ok: img.complete && img.naturalWidth > 0, w: img.naturalWidth, h: img.naturalHeight,
    alt: img.alt}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({imgs, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed with apt-get if it is missing."""
    found = shutil.which("chromium")
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if done.returncode:
                pytest.fail(f"could not install chromium ({' '.join(cmd)}): {done.stderr[-500:]}")
        found = shutil.which("chromium")
    assert found, "chromium is not on PATH after apt-get install"
    return found


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def test_report_renders_without_errors(chromium, sample_report, tmp_path):
    out, result = sample_report
    html = (out / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    done = _run(chromium, tmp_path / "profile", "--virtual-time-budget=15000",
                "--enable-logging=stderr", "--v=0", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe output; chromium said: {done.stderr[-1500:]}"
    report = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert report["errors"] == []
    assert len(report["imgs"]) == len(result["plots"]) == html.count("<img ")
    sizes = [tuple(map(int, m)) for m in re.findall(r'width="(\d+)" height="(\d+)"', html)]
    assert [(i["w"], i["h"]) for i in report["imgs"] if i["ok"]] == sizes
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


def test_every_embedded_image_decodes_in_full(sample_report):
    from PIL import Image

    out, _ = sample_report
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)" alt="[^"]*" '
                        r'width="(\d+)" height="(\d+)"', html)
    assert images
    for data, width, height in images:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as img:
            img.load()  # decompresses every row: a corrupt PNG raises here
            assert img.size == (int(width), int(height))


def test_screenshot_is_kept_for_the_readme(chromium, sample_report, tmp_path):
    from PIL import Image, ImageStat

    out, _ = sample_report
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "report.png"
    done = _run(chromium, tmp_path / "profile", "--window-size=1280,1700",
                f"--screenshot={shot}", (out / "report.html").as_uri())
    assert shot.exists(), done.stderr[-1500:]
    with Image.open(shot) as img:
        assert img.size == (1280, 1700)
        # a rendered page, not a blank one: text and plots make it vary
        assert ImageStat.Stat(img.convert("L")).stddev[0] > 20
    shutil.copyfile(shot, SCREENSHOT)
