"""A web session cannot change anything: every bound key and a sweep of others leave the files byte-for-byte."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.logpane import LogPane
from rollback_tui.ui.modals import ConfirmPrompt, TextPrompt
from rollback_tui.ui.panes import Checklist
from rollback_tui.ui.screens import PlanReviewScreen, SummaryScreen

from .webutil import CLI, alive, children, popen, start_web, wait_for, write_plan

#: what a terminal (xterm.js) sends for each key name a binding may use
KEY_BYTES = {
    "full_stop": ".", "comma": ",", "plus": "+", "minus": "-", "slash": "/", "space": " ", "enter": "\r",
    "escape": "\x1b", "tab": "\t", "shift+tab": "\x1b[Z", "up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C",
    "left": "\x1b[D", "pageup": "\x1b[5~", "pagedown": "\x1b[6~", "home": "\x1b[H", "end": "\x1b[F",
    "f1": "\x1bOP", "f2": "\x1bOQ", "f3": "\x1bOR", "f4": "\x1bOS", "f5": "\x1b[15~", "f6": "\x1b[17~",
    "f7": "\x1b[18~", "f8": "\x1b[19~", "f9": "\x1b[20~", "f10": "\x1b[21~", "f11": "\x1b[23~", "f12": "\x1b[24~",
    "insert": "\x1b[2~", "delete": "\x1b[3~", "backspace": "\x7f",
    "shift+up": "\x1b[1;2A", "shift+down": "\x1b[1;2B", "shift+left": "\x1b[1;2D", "shift+right": "\x1b[1;2C",
    "super+c": "\x1b[99;9u",  # kitty keyboard protocol (super = modifier 8, sent as 9): no xterm sends it
    **{f"ctrl+{c}": chr(ord(c) - 96) for c in "abcdefghijklmnopqrstuvwxyz"},
}
QUIT = KEY_BYTES["ctrl+q"]


def bound_keys() -> list[str]:
    """Every key bound anywhere the follow/replay cockpit can show (app, screens, panes, prompts, Textual's)."""
    keys: list[str] = [App.COMMAND_PALETTE_BINDING]
    for cls in (CockpitApp, App, Screen, Checklist, LogPane, SummaryScreen, PlanReviewScreen, TextPrompt,
                ConfirmPrompt):
        for klass in cls.__mro__:
            for binding in [*getattr(klass, "BINDINGS", []), *getattr(klass, "KEYS", [])]:
                key = binding.key if isinstance(binding, Binding) else binding[0]
                keys += [k.strip() for k in key.split(",")]
    return sorted(set(keys))


def key_bytes(key: str) -> str:
    if len(key) == 1:
        return key
    assert key in KEY_BYTES, f"binding key {key!r}: add what a terminal sends for it to KEY_BYTES"
    return KEY_BYTES[key]


def sweep() -> list[str]:
    """Keys no binding names: printable ASCII, control characters, function and cursor keys."""
    printable = [chr(c) for c in range(0x20, 0x7F)]
    control = [chr(c) for c in range(0x01, 0x1B) if chr(c) != QUIT]
    return [*printable, *control, *(v for k, v in KEY_BYTES.items() if not k.startswith("ctrl+")), "\x7f"]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished headless session: its journal, its signed report, and allowed_signers that trust the key."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    directory = tmp_path_factory.mktemp("session")
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
    (directory / "allowed_signers").write_text(f'alice namespaces="rollback-tui" {key.with_suffix(".pub").read_text()}')
    plan = write_plan(directory / "plan.yaml", slow=False)
    done = subprocess.run([*CLI, "run", str(plan), "--headless", "--answers", "auto", "--operator", "alice",
                           "--sign-key", str(key), "--journal", "s.jsonl", "--report", "s.md"], cwd=directory,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    yield directory


class Tab:
    """One browser tab over the real websocket; `reopen` after the app quit (a new tab, a new process)."""

    def __init__(self, client: aiohttp.ClientSession, url: str) -> None:
        self.client, self.url, self.screen = client, url, bytearray()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = ws = await self.client.ws_connect(self.url + "ws?width=120&height=40")
        start = len(self.screen)

        async def read() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    self.screen.extend(message.data)

        self.reader = asyncio.create_task(read())
        for _ in range(300):
            if b"Log" in self.screen[start:]:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the cockpit never drew")

    async def send(self, text: str, pause: float) -> bool:
        """False when the session had ended (the key before quit the app); then a new tab is opened."""
        assert self.ws is not None and self.reader is not None
        if self.reader.done():
            await self.open()
            return False
        await self.ws.send_str(json.dumps(["stdin", text]))
        await asyncio.sleep(pause)
        return True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 20)


async def press_everything(url: str, keys: list[str]) -> tuple[str, set[str]]:
    """Every bound key (each alone, then escape), the sweep, the palette's export, ctrl+q; returns what was
    drawn and the keys after which the app had quit."""
    quitting: set[str] = set()
    async with aiohttp.ClientSession() as client:
        tab = Tab(client, url)
        await tab.open()
        for key in keys:
            await tab.send(key_bytes(key), 0.15)
            if not await tab.send("\x1b", 0.15):
                quitting.add(key)
        for text in sweep():
            if not await tab.send(text, 0.02):
                quitting.add(f"sweep {text!r}")
        await tab.send("\x1b", 0.3)
        for text in [KEY_BYTES["ctrl+p"], "Export report", "\r", "\x1b", "\x1b"]:  # not in the web view's palette
            await tab.send(text, 0.5)
        await tab.send(QUIT, 0)
        assert tab.reader is not None
        await asyncio.wait_for(tab.reader, 20)  # ctrl+q: the app exits and the server closes the websocket
        await tab.close()
    return tab.screen.decode("utf-8", "replace"), quitting


@pytest.mark.parametrize("command", ["follow", "replay"])
async def test_every_key_in_a_web_session_changes_nothing(finished_session: Path, command: str) -> None:
    directory = finished_session
    before = snapshot(directory)
    args = ["follow", "s.jsonl"] if command == "follow" else \
        ["replay", "s.md", "--allowed-signers", "allowed_signers", "--speed", "50"]
    keys = bound_keys()
    assert {"g", "n", "a", "y", "x", "ctrl+q", "ctrl+p", "f5", "slash", "enter"} <= set(keys)
    with popen([*CLI, *args, "--web"], directory) as server:
        match = await asyncio.to_thread(start_web, server)
        drawn, quitting = await press_everything(f"http://127.0.0.1:{match['port']}/{match['token']}/", keys)
        assert quitting <= {"ctrl+q", "q"}, quitting  # only quit keys end a tab's session
        await asyncio.to_thread(wait_for, lambda: not children(server.pid), "the observer process to end", 15)
        assert server.poll() is None  # the server outlives its observers
        server.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 20) == 0
        token = match["token"]
    assert "REPLAY (read-only)" in drawn if command == "replay" else "FOLLOW (read-only" in drawn
    if command == "replay":
        assert "paused" in drawn  # the keys reached the app: `p` paused the replay
    after = snapshot(directory)
    assert after.keys() == before.keys()  # no export, no screenshot, nothing new
    for name, content in before.items():
        assert after[name] == content, f"{name} changed"
        assert token.encode() not in content


async def test_the_observer_limit_refuses_the_next_tab(finished_session: Path) -> None:
    with popen([*CLI, "follow", "s.jsonl", "--web", "--max-observers", "1"], finished_session) as server:
        match = await asyncio.to_thread(start_web, server)
        url = f"ws://127.0.0.1:{match['port']}/{match['token']}/ws"
        async with aiohttp.ClientSession() as client:
            first = await client.ws_connect(url)
            await first.receive(timeout=30)  # its cockpit is drawing
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(url)
            assert refused.value.status == 503
            assert len(children(server.pid)) == 1
            observer = children(server.pid)[0]
            await first.close()
            await asyncio.to_thread(wait_for, lambda: not alive(observer), "the closed tab's process to end", 15)
            second = await client.ws_connect(url)  # the slot is free again
            await second.receive(timeout=30)
            await second.close()


def test_replay_web_refuses_an_unverified_report_unless_asked(finished_session: Path) -> None:
    refused = subprocess.run([*CLI, "replay", "s.md", "--web"], cwd=finished_session, capture_output=True,
                             text=True, timeout=60)  # no allowed_signers: nobody says whose key signed it
    assert refused.returncode == 6
    assert "UNVERIFIED" in refused.stderr and "--unverified" in refused.stderr and "http://" not in refused.stdout
    with popen([*CLI, "replay", "s.md", "--web", "--unverified"], finished_session) as server:
        match = start_web(server)
        drawn = asyncio.run(_first_screen(f"ws://127.0.0.1:{match['port']}/{match['token']}/ws"))
        assert "UNVERIFIED" in drawn  # on the page, in the header


async def _first_screen(url: str) -> str:
    screen = bytearray()
    async with aiohttp.ClientSession() as client, client.ws_connect(url + "?width=160&height=40") as ws:
        while b"UNVERIFIED" not in screen and b"Log" not in screen:
            message = await ws.receive(timeout=30)
            screen.extend(message.data if message.type == aiohttp.WSMsgType.BINARY else b"")
        await asyncio.sleep(0.5)
    return screen.decode("utf-8", "replace")


def test_bind_beyond_loopback_warns_and_flags_need_web(finished_session: Path) -> None:
    from .webutil import listening

    with popen([*CLI, "follow", "s.jsonl", "--web", "--bind", "0.0.0.0"], finished_session) as server:
        match = start_web(server)
        assert listening(int(match["port"])) == ["00000000"]
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    assert "warning: listening on 0.0.0.0" in err and "anyone" in err
    for args, problem in ((["--port", "8080"], "--port needs --web"),
                          (["--web", "--bind", "example.org"], "--bind 'example.org': give an IP address"),
                          (["--web", "--max-observers", "0"], "--max-observers 0: give a number from 1")):
        done = subprocess.run([*CLI, "follow", "s.jsonl", *args], cwd=finished_session, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and problem in done.stderr, done.stderr


async def test_a_killed_server_leaves_no_observer(finished_session: Path) -> None:
    """Even SIGKILL, which runs no clean-up in the server, ends the observers (their parent-death signal)."""
    observers: list[int] = []
    try:
        with popen([*CLI, "follow", "s.jsonl", "--web"], finished_session) as server:
            match = await asyncio.to_thread(start_web, server)
            async with aiohttp.ClientSession() as client:
                ws = await client.ws_connect(f"ws://127.0.0.1:{match['port']}/{match['token']}/ws")
                await ws.receive(timeout=30)
                observers = children(server.pid)
                assert len(observers) == 1
                server.send_signal(signal.SIGKILL)
                await asyncio.to_thread(wait_for, lambda: not any(alive(pid) for pid in observers),
                                        "the observer to end with its server", 15)
                await ws.close()
    finally:
        for pid in observers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_the_web_palette_has_no_export_and_no_screenshot(finished_session: Path) -> None:
    from rollback_tui.ui.drivers import FollowDriver
    from rollback_tui.ui.webapp import ObserverApp

    for app_class, present in ((CockpitApp, True), (ObserverApp, False)):
        app = app_class(FollowDriver(finished_session / "s.jsonl"))
        async with app.run_test(size=(120, 40)):
            titles = {command.title for command in app.get_system_commands(app.screen)}
            assert ("Export report" in titles) is present and ("Screenshot" in titles) is present
            assert any(title.startswith("Theme:") for title in titles)
