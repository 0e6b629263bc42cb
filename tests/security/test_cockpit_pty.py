"""The cockpit in a real pty (TERM=xterm-256color, 80x24) on a hostile plan: its title, step name, role, input
description, question and the shell action's output carry OSC 52 and CSI sequences; the whole session is driven
by keys to its summary, and none of the plan's or the child's escape sequences reach the terminal stream. The
same for `replay` and `follow` of the session's journal."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from hostile_text import HOSTILE_PLAN, MARKERS, SHOWN_OSC52, leaks

pytestmark = pytest.mark.slow
BUDGET = 90.0  # seconds for the whole session (it takes a few on an idle machine)


def journal_events(path: Path) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            break  # a torn last line: read it next time
    return events


def pending_request(events: list[dict]) -> dict | None:
    answered = {e["request_id"] for e in events if e["type"] == "decision_made"}
    asked = [e for e in events if e["type"] == "decision_requested" and e["request_id"] not in answered]
    return asked[-1] if asked else None


class Pty:
    """A child process on a pty of a fixed size; everything it writes is kept."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.master = master
        self.output = bytearray()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the pty
                return
            if not chunk:
                return
            self.output += chunk

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.read(0.2)
        os.close(self.master)


def test_cockpit_never_emits_the_plans_or_the_childs_escape_sequences(tmp_path: Path) -> None:
    plan = tmp_path / "hostile.yaml"
    plan.write_text(HOSTILE_PLAN)
    journal = tmp_path / "s.journal.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL", "COLUMNS", "LINES"))}
    env.update(TERM="xterm-256color", ROLLBACK_TUI_CONFIG_DIR=str(tmp_path / "config"))
    argv = [sys.executable, "-m", "rollback_tui", "run", str(plan), "--operator", "op", "--no-sign",
            "--journal", str(journal), "--report", str(tmp_path / "r.md")]
    tty = Pty(argv, env, tmp_path)
    answered: set[int] = set()
    deadline = time.monotonic() + BUDGET
    try:
        while time.monotonic() < deadline and tty.proc.poll() is None:
            tty.read(0.3)
            events = journal_events(journal)
            if any(e["type"] == "session_finished" for e in events):
                tty.read(1.0)  # the summary screen is drawn
                tty.send(b"q")
                tty.read(3.0)
                break
            request = pending_request(events)
            if request is None or request["request_id"] in answered:
                continue
            tty.read(0.5)  # let the question be drawn (and the plan review screen with the plan's markdown)
            kind = request["kind"]
            if kind == "approval":
                tty.send(b"y")
                tty.read(0.8)
                tty.send(b"dana\r")
            elif kind in ("plan_review", "input"):
                tty.send(b"y" if "approve" in request["options"] else b"p")
            else:
                tty.send(b"g")
            answered.add(request["request_id"])
        events = journal_events(journal)
    finally:
        tty.close()
    kinds = [e["type"] for e in events]
    assert "session_finished" in kinds, f"the session did not finish in {BUDGET:.0f}s: {kinds}"
    output_events = [e for e in events if e["type"] == "action_output"]
    assert output_events and "\x1b]52" in "".join(output_events[0]["lines"])  # the child really sent it
    stream = bytes(tty.output)
    assert b"\x1b[?1049h" in stream  # Textual drew on the alternate screen: this is the cockpit's own output
    assert leaks(stream) == [], "the plan's or the child's escape sequences reached the terminal"
    assert b"\x1b]8;" not in stream  # the plan's markdown link is shown as text, never made a hyperlink
    text = stream.decode("utf-8", "replace")
    assert SHOWN_OSC52.encode() in stream  # shown instead: the operator sees what the plan tried
    assert any(f"␛{marker}" in text for marker in MARKERS)


@pytest.mark.parametrize("command", ["replay", "follow"])
def test_replay_and_follow_never_emit_the_journals_escape_sequences(tmp_path: Path, command: str) -> None:
    plan = tmp_path / "hostile.yaml"
    plan.write_text(HOSTILE_PLAN)
    journal = tmp_path / "s.journal.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL", "COLUMNS", "LINES"))}
    env.update(TERM="xterm-256color", ROLLBACK_TUI_CONFIG_DIR=str(tmp_path / "config"))
    subprocess.run([sys.executable, "-m", "rollback_tui", "run", str(plan), "--headless", "--answers", "auto",
                    "--no-sign", "--operator", "op", "--journal", str(journal), "--report", str(tmp_path / "r.md")],
                   cwd=tmp_path, env=env, capture_output=True, check=True, timeout=120)
    argv = [sys.executable, "-m", "rollback_tui", command, str(journal)] + (
        ["--speed", "1000"] if command == "replay" else [])
    tty = Pty(argv, env, tmp_path)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and SHOWN_OSC52.encode() not in tty.output and tty.proc.poll() is None:
            tty.read(0.3)
        tty.read(1.0)
        tty.send(b"\x1b")  # leave the summary screen: the main screen with checklist and log is drawn too
        tty.read(1.5)
        tty.send(b"\x11")  # ctrl+q
        tty.read(2.0)
    finally:
        tty.close()
    stream = bytes(tty.output)
    assert b"\x1b[?1049h" in stream
    assert leaks(stream) == [], f"{command}: the journal's escape sequences reached the terminal"
    assert SHOWN_OSC52.encode() in stream, "the journal's hostile text was never drawn"
