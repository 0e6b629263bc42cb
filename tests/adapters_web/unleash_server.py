"""The real open-source Unleash server (npm `unleash-server`, in tests/peers/unleash) on a throwaway PostgreSQL."""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollback_tui.loopback.postgres import PostgresUnavailable, start_postgres

PEER = Path(__file__).resolve().parents[1] / "peers" / "unleash"
SERVER_JS = PEER / "node_modules" / "unleash-server" / "dist" / "server.js"
READY_BUDGET = 90.0  # the first start runs the migrations (about 5-40 s here)


class UnleashUnavailable(RuntimeError):
    """The server cannot be started here; the message says why and what to install."""


def installed_version() -> str:
    """The unleash-server version installed in tests/peers/unleash (npm ci)."""
    package = PEER / "node_modules" / "unleash-server" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        raise UnleashUnavailable(f"unleash-server is not installed: run `npm ci --prefix {PEER}`") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGTERM when pytest dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class UnleashServer:
    """A running server: its URL and seeded tokens (`project:environment.secret`)."""

    url: str
    admin_token: str
    client_tokens: dict[str, str]  # environment -> backend (client) token of project default
    version: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_postgres: Any = field(repr=False)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """One Admin API request (test setup); returns (status, JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": token or self.admin_token, "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw.startswith(b"{") else raw.decode(errors="replace")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """An Admin API request that must succeed."""
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {answer}"
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
        self.stop_postgres()

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"


def _wait_ready(server: UnleashServer, budget: float) -> None:
    """Until an authenticated Admin API call answers 200 (health alone comes before the tokens are stored)."""
    deadline = time.monotonic() + budget
    delay = 0.2
    while True:
        if server.process.poll() is not None:
            raise UnleashUnavailable(f"unleash-server exited with {server.process.returncode}: {server.tail()}")
        try:
            status, _ = server.request("GET", "/api/admin/projects")
            if status == 200:
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            raise UnleashUnavailable(f"unleash-server not ready after {budget:g}s: {server.tail()}")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def start_unleash(tmpdir: Path, *, budget: float = READY_BUDGET) -> UnleashServer:
    """Start PostgreSQL and unleash-server on free 127.0.0.1 ports; tokens are random per session."""
    version = installed_version()
    node = shutil.which("node")
    if node is None:
        raise UnleashUnavailable("node is not installed (Node.js 20 runs unleash-server)")
    try:
        db_url, stop_pg = start_postgres(tmpdir)
    except PostgresUnavailable as exc:
        raise UnleashUnavailable(f"no PostgreSQL for Unleash: {exc}") from None
    admin = f"*:*.{secrets.token_hex(16)}"
    clients = {env: f"default:{env}.{secrets.token_hex(16)}" for env in ("development", "production")}
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmpdir), "TZ": "UTC",
        "DATABASE_URL": db_url, "DATABASE_SSL": "false", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port),
        "UNLEASH_URL": f"http://127.0.0.1:{port}", "INIT_ADMIN_API_TOKENS": admin,
        "INIT_BACKEND_API_TOKENS": ",".join(clients.values()),
        "UNLEASH_DEFAULT_ADMIN_PASSWORD": secrets.token_urlsafe(16), "UNLEASH_SECRET": secrets.token_hex(16),
        # nothing leaves the machine: no version check, no telemetry
        "CHECK_VERSION": "false", "SEND_TELEMETRY": "false", "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "1",
        "LOG_LEVEL": "warn", "NODE_ENV": "production",
    }
    log = tmpdir / "unleash-server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([node, str(SERVER_JS)], cwd=PEER, env=env, stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_die_with_parent)
    server = UnleashServer(f"http://127.0.0.1:{port}", admin, clients, version, process, log, stop_pg)
    try:
        _wait_ready(server, budget)
    except BaseException:
        server.stop()
        raise
    return server
