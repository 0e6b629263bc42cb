"""Helpers for the --web tests: real sessions and servers in subprocesses, the process tree, listening sockets."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

CLI = [sys.executable, "-m", "rollback_tui"]
URL_RE = re.compile(r"http://(?P<host>[^/:\s]+):(?P<port>\d+)/(?P<token>[A-Za-z0-9_-]+)/")


def write_plan(path: Path, *, slow: bool, health_url: str = "") -> Path:
    """Four small steps of real commands; with `slow`, step 3 (code) sleeps so the session stays live."""
    code_action = {"id": "slow", "kind": "shell", "argv": ["sleep", "120"]} if slow else \
        {"id": "checkout", "kind": "shell", "argv": ["echo", "checked out"]}
    data: dict[str, Any] = {
        "version": 1,
        "metadata": {"name": "web observer test"},
        "rollback": {"scope": ["flags", "code"]},
        "steps": [
            {"id": "assess", "actions": [{"id": "look", "kind": "shell", "argv": ["echo", "assessing"]}]},
            {"id": "flags", "actions": [{"id": "off", "kind": "shell", "argv": ["echo", "flag off"]}]},
            {"id": "code", "actions": [code_action]},
            {"id": "validate", "actions": [{"id": "smoke", "kind": "shell", "argv": ["echo", "smoke ok"]}]},
        ],
    }
    if health_url:
        data["health"] = [{"id": "web-health", "kind": "http", "url": health_url, "interval": "1s",
                           "timeout": "2s"}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def health_server() -> Iterator[str]:
    """A real HTTP server answering 200 {"status": "ok"} on /health."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()


def wait_for(predicate: Any, what: str, timeout: float = 30, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_text(path: Path, text: str, timeout: float = 30) -> None:
    wait_for(lambda: path.exists() and text in path.read_text(), f"{text!r} in {path}", timeout)


@contextmanager
def popen(args: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A CLI process in its own process group; killed (group) at the end whatever happened."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def start_web(proc: subprocess.Popen[str], timeout: float = 30) -> re.Match[str]:
    """The URL the server prints (read from its stdout as it starts)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        match = URL_RE.search(line)
        if match:
            return match
    code = proc.poll()
    errors = proc.stderr.read() if code is not None and proc.stderr else ""
    raise AssertionError(f"no URL printed by the web server; stdout: {seen!r}; exit code {code}; stderr: {errors!r}")


def children(pid: int) -> list[int]:
    """Every descendant of pid (from /proc), nearest first."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue  # a zombie has ended; its parent has only not reaped it yet
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening(port: int) -> list[str]:
    """Local addresses in LISTEN state on `port`, from /proc/net/tcp and tcp6 (hex as the kernel writes them)."""
    found: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.append(address)
    return found
