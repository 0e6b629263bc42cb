"""No process of the sandbox outlives the demo: after stop(), after SIGTERM and after SIGKILL of the parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rollback_tui.demo.sandbox import Sandbox, group_members

_PARENT = """
import json, sys, time
from pathlib import Path
from rollback_tui.demo.sandbox import build_sandbox
sandbox = build_sandbox(Path(sys.argv[1]), operator="demo-operator")
sandbox.start(ports={"web_port": 0, "ssh_port": 0, "hook_port": 0})
print(json.dumps({"pgid": sandbox.pgid, **sandbox.ready}), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_gone(pgid: int, pids: list[int], within: float = 30.0) -> list[int]:
    """Await the condition (no sleeping a fixed time): every pid and the whole group gone; return survivors."""
    deadline = time.monotonic() + within
    while True:
        survivors = sorted(set(group_members(pgid)) | {pid for pid in pids if _alive(pid)})
        if not survivors or time.monotonic() > deadline:
            return survivors
        time.sleep(0.05)


def test_stop_ends_every_process_and_is_idempotent(sandbox: Sandbox) -> None:
    pgid = sandbox.pgid
    assert pgid is not None
    pids = [sandbox.ready["pid"], sandbox.ready["web_pid"]]
    assert set(pids) <= set(group_members(pgid))
    sandbox.stop()
    assert group_members(pgid) == []
    assert not any(_alive(pid) for pid in pids)
    sandbox.stop()  # a second stop (atexit after the context manager) does nothing


def _spawn_parent(tmp_path: Path) -> tuple[subprocess.Popen[str], dict]:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path / "sandbox")], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[2])
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line, "the parent did not start the sandbox"
    return parent, json.loads(line)


def test_services_exit_when_the_demo_parent_is_killed(tmp_path: Path) -> None:
    parent, ready = _spawn_parent(tmp_path)
    pids = [ready["pid"], ready["web_pid"]]
    assert all(_alive(pid) for pid in pids)
    parent.kill()  # SIGKILL: no atexit, no handler; only the stdin pipe tells the services
    parent.wait()
    assert _wait_gone(ready["pgid"], pids) == []


def test_sigterm_to_the_demo_parent_stops_the_services(tmp_path: Path) -> None:
    parent, ready = _spawn_parent(tmp_path)
    pids = [ready["pid"], ready["web_pid"]]
    os.kill(parent.pid, signal.SIGTERM)
    assert parent.wait(timeout=30) == 128 + signal.SIGTERM
    assert _wait_gone(ready["pgid"], pids) == []


def test_services_exit_cleanly_on_sigterm_with_their_children(sandbox: Sandbox) -> None:
    pgid = sandbox.pgid
    assert pgid is not None
    pids = [sandbox.ready["pid"], sandbox.ready["web_pid"]]
    os.kill(sandbox.ready["pid"], signal.SIGTERM)
    assert _wait_gone(pgid, pids) == []
    assert "services stopped" in sandbox.layout.services_log.read_text()
    sandbox.stop()


def test_web_service_dies_with_a_killed_services_process(sandbox: Sandbox) -> None:
    os.kill(sandbox.ready["pid"], signal.SIGKILL)  # no cleanup code runs in the services process
    assert _wait_gone(-1, [sandbox.ready["web_pid"]]) == []  # PR_SET_PDEATHSIG, before any stop()
