"""Loopback HTTP servers for the web adapter tests: a generic recorder and an Unleash stand-in for error cases."""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CANARY = "cAnArY-7f3e9d2b-s3cr3t"
CANARY_ENV = "RB_WEB_CANARY"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Reply]


class Loopback:
    """A threaded HTTP(S) server on 127.0.0.1 that records requests and answers through `handler`."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.release = threading.Event()  # slow handlers wait on this; set at shutdown
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"")
                outer.requests.append(request)
                reply = outer.handler(request)
                data = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class UnleashFake:
    """The Admin API requests the adapter uses, for what the real server cannot be made to do (500s, stuck or
    malformed Client API answers); the real server is tested in test_unleash.py."""

    token: str
    # project -> feature -> environment -> {"enabled": bool, "strategies": [...]}
    projects: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    fail_with: int | None = None  # answer every request with this status (500 tests)
    client: Handler | None = None  # answers GET /api/client/features when set (malformed or stuck Client API)
    lock: threading.Lock = field(default_factory=threading.Lock)

    _FEATURE = re.compile(r"^/api/admin/projects/([^/]+)/features/([^/]+)$")
    _OFF = re.compile(r"^/api/admin/projects/([^/]+)/features/([^/]+)/environments/([^/]+)/off$")
    _STRATEGIES = re.compile(r"^/api/admin/projects/([^/]+)/features/([^/]+)/environments/([^/]+)/strategies$")
    _STRATEGY = re.compile(r"^/api/admin/projects/([^/]+)/features/([^/]+)/environments/([^/]+)/strategies/([^/]+)$")

    def add(self, project: str, feature: str, env: str, enabled: bool, strategies: list[dict[str, Any]]) -> None:
        self.projects.setdefault(project, {}).setdefault(feature, {})[env] = {
            "enabled": enabled, "strategies": strategies}

    def _env(self, project: str, feature: str, env: str | None = None) -> Any:
        envs = self.projects.get(project, {}).get(feature)
        if envs is None:
            return None
        return envs if env is None else envs.get(env)

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("authorization") != self.token:
            return Reply(401, {"name": "AuthenticationRequired", "message": "You must log in to use Unleash."})
        if self.fail_with:
            return Reply(self.fail_with, {"message": "internal error"})
        with self.lock:
            return self._route(request)

    def _route(self, request: Request) -> Reply:
        path = request.path
        if request.method == "GET" and path.startswith("/api/client/features") and self.client is not None:
            return self.client(request)
        if request.method == "GET" and (m := self._FEATURE.match(path)):
            envs = self._env(m[1], m[2])
            if envs is None:
                return Reply(404, {"name": "NotFoundError", "message": f"Could not find feature {m[2]}"})
            return Reply(200, {"name": m[2], "project": m[1], "environments": [
                {"name": name, "enabled": env["enabled"], "type": "production", "strategies": env["strategies"]}
                for name, env in envs.items()]})
        if request.method == "POST" and (m := self._OFF.match(path)):
            env = self._env(m[1], m[2], m[3])
            if env is None:
                return Reply(404, {"message": "not found"})
            env["enabled"] = False
            return Reply(200, b"", "text/plain")
        if request.method == "GET" and (m := self._STRATEGIES.match(path)):
            env = self._env(m[1], m[2], m[3])
            return Reply(200, env["strategies"]) if env is not None else Reply(404, {"message": "not found"})
        if request.method == "PUT" and (m := self._STRATEGY.match(path)):
            env = self._env(m[1], m[2], m[3])
            body = request.json()
            if not isinstance(body, dict) or "name" not in body or not isinstance(body.get("parameters"), dict):
                return Reply(400, {"message": "a strategy needs name and parameters"})
            for index, strategy in enumerate(env["strategies"] if env else []):
                if strategy["id"] == m[4]:
                    env["strategies"][index] = {**body, "id": m[4]}
                    return Reply(200, env["strategies"][index])
            return Reply(404, {"message": "strategy not found"})
        return Reply(404, {"message": f"no route {request.method} {path}"})
