"""A demo session survives SIGKILL and SIGINT: resume restarts its services (new ports if the old are taken), signs
with the sandbox key and completes; artefacts stay in the session's folder; --clean removes only the demo's own."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(state)}


def _cli(state: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollback_tui", *args], capture_output=True, text=True,
                          env=_env(state), cwd=cwd, timeout=timeout)


def _start_demo(state: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rollback_tui", "demo", "--headless", "--answers", "auto",
                             "--operator", "demo-operator"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(state), cwd=cwd)


def _wait_for_step(state: Path, step: str, within: float = 120) -> Path:
    """The journal of the one demo under `state`, once it has started `step` (polled, bounded)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for journal in (state / "rollback-tui" / "demo").glob("demo-*/out/*.journal.jsonl"):
            if f'"type":"step_started","step":"{step}"' in journal.read_text(errors="replace"):
                return journal
        time.sleep(0.1)
    raise AssertionError(f"the demo did not reach step {step} within {within:g}s")


def _recorded(journal: Path) -> dict[str, str]:
    return json.loads(journal.read_text().splitlines()[0])["outline"]["variables"]


def _port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _verified(out: str) -> None:
    assert "rollback-tui verify: OK: signed by demo-operator" in out, out
    assert "ssh-keygen -Y verify: OK" in out, out


@pytest.mark.slow
def test_sigkill_then_resume_on_other_ports_completes_signed(tmp_path: Path) -> None:
    state, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    demo = _start_demo(state, cwd)
    try:
        journal = _wait_for_step(state, "code")
    finally:
        demo.kill()  # SIGKILL: no handler, no cleanup
        demo.wait()
    home = journal.parent.parent
    variables = _recorded(journal)
    web = int(variables["web_port"])
    deadline = time.monotonic() + 30
    while _port_answers(web) and time.monotonic() < deadline:  # the services die with their parent
        time.sleep(0.1)
    assert not _port_answers(web)
    assert (home / "sandbox" / "demo.yaml").is_file() and (home / ".rollback-tui-demo").is_file()
    with open(journal, "rb") as holder:  # a live session holds the journal's lock: refused, services untouched
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = _cli(state, cwd, "resume", str(journal), "--headless", "--answers", "auto")
    assert held.returncode == 2 and "in use by a live session" in held.stderr, held.stdout + held.stderr
    assert "starting the sandbox services" not in held.stderr
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", web))  # the recorded web port is taken now: resume must move it, consistently
    busy.listen(1)
    try:
        done = _cli(state, cwd, "resume", str(journal), "--headless", "--answers", "auto")
    finally:
        busy.close()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "exit state: completed" in out
    moved = re.search(r"checkout-service http://127\.0\.0\.1:(\d+)/health", out)
    assert moved and int(moved.group(1)) != web, out
    _verified(out)
    assert "Traceback" not in out and "Traceback" not in journal.read_text()
    assert not (home / "sandbox").exists()  # final: the sandbox goes, the report folder stays
    files = journal.with_name("checkout-demo-rollback.files")
    assert list(files.glob("*.rowcounts.json")) and (files / "backups").is_dir()
    assert list(cwd.iterdir()) == []  # nothing in the current directory
    cleaned = _cli(state, cwd, "demo", "--clean")
    assert cleaned.returncode == 0 and not home.exists(), cleaned.stdout + cleaned.stderr


@pytest.mark.slow
def test_sigint_then_demo_resume_continues_the_newest(tmp_path: Path) -> None:
    state, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    demo = _start_demo(state, cwd)
    journal = _wait_for_step(state, "flags")
    demo.send_signal(signal.SIGINT)
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 130, out
    assert f"rollback-tui resume {journal}" in out and "so the session can be resumed" in out
    home = journal.parent.parent
    assert (home / "sandbox" / "demo.yaml").is_file()
    kept = _cli(state, cwd, "demo", "--clean")  # a resumable session is not removed without --all
    assert "kept 1 resumable" in kept.stdout and home.exists()
    done = _cli(state, cwd, "demo", "--resume", "--headless", "--answers", "auto")
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "exit state: completed" in out, out
    _verified(out)
    again = _cli(state, cwd, "resume", str(journal))  # final now: its outcome, no cockpit, no services
    assert again.returncode == 0 and "completed" in again.stdout + again.stderr
    assert list(cwd.iterdir()) == []
