"""One real service: ``crimeclass serve`` on uvicorn, on a free port of 127.0.0.1.

Keys, the body limit on a chunked body, a reload under load, and the analyst page in
Debian's headless Chromium (selenium, the system's chromedriver: nothing downloaded).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import write_csv

MAX_BODY = 64_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The service in a process of its own; requests by the standard library's client."""

    def __init__(self, port: int, proc: subprocess.Popen[str], keys: dict[str, Any]) -> None:
        self.port, self.proc, self.keys = port, proc, keys
        self.url = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, body: Any = None, key: str | None = "user",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        if key:
            h["Authorization"] = f"Bearer {self.keys[key]}"
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=h,
                         encode_chunked=h.get("Transfer-Encoding") == "chunked")
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(xgb_run: Path, history_store: Path, keys: dict[str, Any],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("server") / "history.duckdb"
    shutil.copy(history_store, store)
    port = _free_port()
    log = tmp_path_factory.mktemp("server-log") / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crimeclass", "serve", "--run", str(xgb_run), "--store",
             str(store), "--model", "xgb", "--port", str(port), "--api-keys",
             str(keys["file"]), "--max-body", str(MAX_BODY), "--follow", "0"],
            stdout=subprocess.DEVNULL, stderr=err, text=True, env=os.environ.copy())
    s = Server(port, proc, keys)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if s.request("GET", "/health/ready", key=None)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the service did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        s.log = log  # type: ignore[attr-defined]
        yield s
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_it_says_where_it_listens_what_it_serves_and_how_current(server, xgb_run):
    text = server.log.read_text()
    assert f"http://127.0.0.1:{server.port}" in text
    assert xgb_run.name in text and "model xgb" in text and "newest" in text


def test_keys_on_a_real_server(server, records):
    body = {"incidents": records[:2]}
    assert server.request("POST", "/v1/score", body, key=None)[0] == 401
    status, _, data = server.request("POST", "/v1/score", body)
    assert status == 200 and len(json.loads(data)["results"]) == 2
    assert server.request("POST", "/v1/admin/reload", {"run": "x"})[0] == 403


def _post_chunked(server: Server, path: str, body: bytes) -> bytes:
    """POST ``body`` in 4 KB chunks on a raw socket; the answer's bytes. The service may
    answer (and close) before the whole body is sent, which is the point: a send that
    then fails is not an error of the test, and the answer is read after it."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.keys['user']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4096]), body[i:i + 4096])
                      for i in range(0, len(body), 4096)) + b"0\r\n\r\n"
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        try:
            sock.sendall(head + chunks)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while not _complete(answer) and (part := sock.recv(65536)):
                answer += part
        except ConnectionResetError:
            pass
    return answer


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response (its head and Content-Length bytes)."""
    head, sep, data = answer.partition(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if sep and line.startswith(b"content-length:"):
            return len(data) >= int(line.split(b":")[1])
    return False


def test_a_chunked_body_over_the_limit_is_a_413(server, records):
    body = json.dumps({"incidents": records[:400]}).encode()
    assert MAX_BODY < len(body) < 4 * MAX_BODY
    answer = _post_chunked(server, "/v1/score", body)
    head, _, data = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"content-type: application/json" in head.lower() and b"limit" in data
    # the service goes on
    assert server.request("GET", "/health/live", key=None)[0] == 200


def test_a_reload_drops_no_request(server, records, xgb_run):
    codes: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            codes.append(server.request("POST", "/v1/score", {"incidents": records[:1]})[0])

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    status, _, data = server.request("POST", "/v1/admin/reload",
                                     {"run": str(xgb_run), "model": "lr"}, key="admin")
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert status == 200, data
    assert codes and set(codes) == {200}
    _, _, data = server.request("POST", "/v1/score", {"incidents": records[:1]})
    assert json.loads(data)["model"]["name"] == "lr"
    server.request("POST", "/v1/admin/reload", {"run": str(xgb_run), "model": "xgb"},
                   key="admin")


# ------------------------------------------------------------------ the page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for exe in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(exe).exists():
            pytest.fail(f"{exe} is missing: install Debian's chromium and chromium-driver "
                        "(make chromium)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_scores_an_incident_and_a_file(server, browser, new_rows, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = browser
    wait = WebDriverWait(d, 30)
    d.get(server.url + "/")
    key = d.find_element(By.ID, "key")
    key.send_keys(server.keys["user"], Keys.TAB)  # a change: the places are loaded
    wait.until(lambda d: len(Select(d.find_element(By.ID, "place")).options) > 5)
    d.execute_script("document.getElementById('date').value = '2025-02-10T14:30'")
    Select(d.find_element(By.ID, "place")).select_by_visible_text("STREET")
    d.find_element(By.ID, "beat").send_keys("1834")
    d.find_element(By.ID, "block").send_keys("004XX E ILLINOIS ST", Keys.ENTER)  # keyboard
    wait.until(lambda d: d.find_elements(By.ID, "probability"))
    text = d.find_element(By.ID, "probability").text
    assert "Probability of an index offense" in text and "Decision" in text
    assert len(d.find_elements(By.CSS_SELECTOR, "#reasons li")) == 3
    d.save_screenshot(str(tmp_path / "page.png"))

    path = write_csv(tmp_path / "export.csv", new_rows[:25])
    d.find_element(By.ID, "file").send_keys(str(path))
    d.find_element(By.ID, "upload").click()
    wait.until(lambda d: d.find_elements(By.ID, "scored"))
    scored = d.execute_async_script(
        "const done = arguments[0];"
        "fetch(document.getElementById('scored').href).then(r => r.text()).then(done);")
    lines = scored.strip().splitlines()
    assert lines[0].startswith("line,id,probability") and len(lines) == 26
