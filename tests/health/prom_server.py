"""A real Prometheus on 127.0.0.1 scraping a real prometheus_client exporter every second, and an auth proxy."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

TOKEN = "canary-bearer-token-4711"
USER, PASSWORD = "grafana", "canary-basic-password-0815"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prometheus_binary() -> str:
    """The prometheus binary; missing: a failure in CI, a skip with the reason elsewhere."""
    found = shutil.which("prometheus")
    if found:
        return found
    message = "prometheus not installed (apt-get install prometheus)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}: CI must run it")
    pytest.skip(message)


@dataclass
class Exporter:
    """Gauges the tests set; Prometheus scrapes them from /metrics."""

    port: int
    ratio: Any
    shard: Any
    odd: Any
    requests: Any
    registry: Any = None
    """The exporter's registry (a test may add a metric to it for a while)."""


def start_exporter() -> tuple[Exporter, Any]:
    from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

    registry = CollectorRegistry()
    exporter = Exporter(
        port=free_port(),
        ratio=Gauge("demo_error_ratio", "share of failing requests", registry=registry),
        shard=Gauge("demo_shard_load", "load per shard", ["shard"], registry=registry),
        odd=Gauge("demo_odd", "a value that can be NaN", registry=registry),
        requests=Counter("demo_requests", "requests served", registry=registry), registry=registry,
    )
    exporter.ratio.set(0.001)
    exporter.shard.labels(shard="a").set(1)
    exporter.shard.labels(shard="b").set(2)
    exporter.odd.set(float("nan"))
    server, thread = start_http_server(exporter.port, addr="127.0.0.1", registry=registry)
    return exporter, server


def _get(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (loopback only)
        return json.loads(answer.read())


@dataclass
class Prometheus:
    url: str
    exporter: Exporter
    process: subprocess.Popen[bytes]
    log: Path

    def value(self, query: str) -> list[Any]:
        return _get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}")["data"]["result"]

    def wait_for(self, query: str, predicate: Any, timeout: float = 20.0) -> None:
        """Bounded wait until the query's answer satisfies predicate (new scrapes arrive every second)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self.value(query)
                if predicate(result):
                    return
            except (OSError, urllib.error.URLError, KeyError, ValueError):
                result = None
            if time.monotonic() > deadline:
                raise AssertionError(f"{query}: still {result!r} after {timeout} s; log:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = prometheus_binary()
    exporter, exporter_server = start_exporter()
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
        "scrape_configs:\n"
        f"  - job_name: exporter\n    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n")
    port = free_port()
    log = root / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    server = Prometheus(f"http://127.0.0.1:{port}", exporter, process, log)
    try:
        server.wait_for('up{job="exporter"}', lambda r: r and r[0]["value"][1] == "1", timeout=30.0)
        server.wait_for("demo_error_ratio", lambda r: bool(r), timeout=10.0)
        yield server
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        exporter_server.shutdown()
        exporter_server.server_close()


@dataclass
class AuthProxy:
    """A loopback stand-in for an authenticating gateway in front of Prometheus (Prometheus itself has no auth):
    forwards GETs when the Authorization header is right, else 401 echoing the header it got."""

    port: int
    seen: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def auth_proxy(prometheus: Prometheus) -> Iterator[AuthProxy]:
    seen: list[str] = []
    good = {f"Bearer {TOKEN}", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            header = self.headers.get("Authorization", "")
            seen.append(header)
            if header in good:
                try:
                    with urllib.request.urlopen(prometheus.url + self.path, timeout=5) as upstream:  # noqa: S310
                        status, body = upstream.status, upstream.read()
                except urllib.error.HTTPError as refused:  # Prometheus' own 400/422 answers pass through
                    status, body = refused.code, refused.read()
            else:
                status, body = 401, f"unauthorized: got {header!r}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield AuthProxy(server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()
