"""The report as a person sees it: headless Chromium renders it, every image loads at
its size (and decodes in full with Pillow), the page logs no error, and the
screenshot that docs/img/report.png is made with shows the page.

Chromium is Debian's package, installed by ``make chromium`` (``make test`` runs it);
without it these tests fail, saying so. ``make docs-images`` refreshes docs/img/report.png
(scripts/docs_images.py); the tests write only into their temporary folders."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from types import ModuleType

import pytest
from tests.conftest import load_script

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

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
def docs_images() -> ModuleType:
    """scripts/docs_images.py: the same Chromium and screenshot as the docs' picture."""
    return load_script("docs_images")


@pytest.fixture(scope="module")
def chromium(docs_images: ModuleType) -> str:
    """Debian's chromium; the tests never install anything themselves."""
    found = docs_images.find_chromium()
    if found is None:
        pytest.fail("chromium is not installed: `make chromium` installs Debian's chromium "
                    "(make test does)")
    return found


def test_report_renders_without_errors(chromium, docs_images, sample_report, tmp_path):
    out, result = sample_report
    html = (out / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    done = docs_images.run_chromium(chromium, tmp_path / "profile", "--virtual-time-budget=15000",
                                    "--enable-logging=stderr", "--v=0", "--dump-dom",
                                    probe.as_uri())
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


def test_the_docs_screenshot_shows_the_page(chromium, docs_images, sample_report, tmp_path):
    from PIL import Image, ImageStat

    out, _ = sample_report
    docs_picture = ROOT / "docs" / "img" / "report.png"
    before = docs_picture.read_bytes()
    shot = tmp_path / "report.png"
    docs_images.screenshot(chromium, out / "report.html", shot, tmp_path / "profile")
    assert docs_picture.read_bytes() == before  # make docs-images refreshes it, not a test
    with Image.open(shot) as img:
        assert img.size == (1280, 1700)
        # a rendered page, not a blank one: text and plots make it vary
        assert ImageStat.Stat(img.convert("L")).stddev[0] > 20
