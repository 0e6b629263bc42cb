"""`follow --web` on a live headless session, seen by a real headless Chromium; the token, loopback, the tree."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .webutil import CLI, alive, children, health_server, listening, popen, start_web, wait_for, wait_for_text, \
    write_plan

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: Runs in the page before its own scripts (CDP): textual-serve keeps its session object (and its xterm.js
#: Terminal, drawn with WebGL into a canvas) in a closure; the session is the only object that sets
#: `websocket_url`, so a setter on Object.prototype hands it to the test, which reads the terminal's buffer:
#: the very cells the browser draws, as text.
EXPOSE_SESSION = """
window.__observer_sessions = [];
Object.defineProperty(Object.prototype, 'websocket_url', {
  configurable: true,
  set(value) {
    Object.defineProperty(this, 'websocket_url', {value, writable: true, enumerable: true, configurable: true});
    window.__observer_sessions.push(this);
  },
});
"""
SCREEN_TEXT = """
const session = window.__observer_sessions[0];
if (!session || !session.terminal) return null;
const term = session.terminal, buffer = term.buffer.active, lines = [];
for (let row = 0; row < term.rows; row++) {
  const line = buffer.getLine(buffer.viewportY + row);
  lines.push(line ? line.translateToString(true) : '');
}
return lines.join('\\n');
"""


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium (chromedriver from Debian); CI=true makes a missing browser fail."""
    if not (CHROMIUM and CHROMEDRIVER):
        message = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--window-size=1400,820"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": EXPOSE_SESSION})
        yield driver
    finally:
        driver.quit()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_follow_web_shows_the_live_session_in_chromium(tmp_path: Path, chromium: Any) -> None:
    journal = tmp_path / "live.jsonl"
    with health_server() as health_url, \
            popen([*CLI, "run", str(write_plan(tmp_path / "plan.yaml", slow=True, health_url=health_url)),
                   "--headless", "--answers", "auto", "--no-sign", "--journal", str(journal)], tmp_path) as run:
        wait_for_text(journal, '"action":"slow"')  # step 3 is running, and stays so for two minutes
        with popen([*CLI, "follow", str(journal), "--web"], tmp_path) as server:
            _watch(tmp_path, journal, run, server, chromium)
    assert token_free(tmp_path)


def _watch(tmp_path: Path, journal: Path, run: Any, server: Any, chromium: Any) -> None:
    match = start_web(server)
    port, token = int(match["port"]), match["token"]
    base, page = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/{token}/"
    assert match["host"] == "127.0.0.1" and len(token) >= 22  # token_urlsafe(32): 256 bits

    # only loopback: every LISTEN socket on the port is 127.0.0.1 (0100007F), none on tcp6
    assert listening(port) == ["0100007F"]
    # no token, a wrong one, or the right one cut short: 403 for the page, the websocket and the assets
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in ("/", "/ws", "/static/js/textual.js", f"/{wrong}/", f"/{wrong}/ws",
                 f"/{wrong}/static/js/textual.js", f"/{token[:-1]}/", "/favicon.ico", f"/x/{token}/"):
        assert status_of(base + path) == 403, path
    assert status_of(f"{base}/{token}/static/js/textual.js") == 200

    chromium.get(page)
    screen = wait_for(lambda: _screen_if(chromium, ("▶ running", "Roll back code changes", "▶ slow running",
                                                    "healthy", "web-health", "FOLLOW (read-only")),
                      "the step list and health pane of the live session in the browser", timeout=60,
                      step=0.5)
    step_row = next(line for line in screen.splitlines() if "3 ▶ running" in line)
    assert "Roll back code changes" in step_row  # the session's current step, as the journal says
    health_row = next(line for line in screen.splitlines() if "web-health" in line)
    assert "healthy" in health_row and " ms" in health_row
    time.sleep(1.5)  # let a second health sample land in the sparkline before the picture
    shot = tmp_path / "web-follow.png"
    assert chromium.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("ROLLBACK_TUI_DOCS_SHOT"):  # refresh the README's picture: the path to write
        shutil.copyfile(shot, os.environ["ROLLBACK_TUI_DOCS_SHOT"])

    observers = wait_for(lambda: children(server.pid), "the observer process of the open tab")
    assert len(observers) == 1
    chromium.get("about:blank")  # the tab leaves: its cockpit process ends
    wait_for(lambda: not any(alive(pid) for pid in observers), "the closed tab's process to end", timeout=15)

    chromium.get(page)  # two observers, then the server is stopped: no child outlives it
    chromium.switch_to.new_window("tab")
    chromium.get(page)
    observers = wait_for(lambda: len(children(server.pid)) >= 2 and children(server.pid),
                         "two observer processes")
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=20) == 0
    assert not [pid for pid in observers if alive(pid)]
    assert listening(port) == []

    assert token not in journal.read_text()
    assert run.poll() is None  # the watched session was never disturbed
    run.send_signal(signal.SIGINT)
    run.wait(timeout=30)
    (tmp_path / "token").write_text(token)


def token_free(tmp_path: Path) -> bool:
    """The token is in no file the session wrote (journal, report), only where the test kept it."""
    token = (tmp_path / "token").read_bytes()
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "token" and "chromium-" not in str(path):
            assert token not in path.read_bytes(), path
    return True


def _screen_if(driver: Any, needles: tuple[str, ...]) -> str | None:
    text = driver.execute_script(SCREEN_TEXT)
    return text if text and all(needle in text for needle in needles) else None
