"""Fixtures for the health tests: real HTTP/TLS servers and TCP listeners on 127.0.0.1, an event collector."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.secrets import SecretStore

from .util import Events

#: (method, path, headers) -> (status, body bytes, seconds to wait before answering)
Route = Callable[[str, str, dict[str, str]], tuple[int, bytes, float]]


@dataclass
class HttpServer:
    """A threaded stdlib HTTP/1.1 server; `routes` may be changed while it runs."""

    server: ThreadingHTTPServer
    routes: dict[str, Route]
    hits: dict[str, int] = field(default_factory=dict)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    scheme: str = "http"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def set(self, path: str, status: int, body: bytes | str = b"", delay: float = 0.0) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = lambda method, p, headers: (status, data, delay)


def _handler(state: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the monitor's pooled client expects

        def _answer(self) -> None:
            http: HttpServer = state["server"]
            path = self.path.split("?", 1)[0]
            http.hits[path] = http.hits.get(path, 0) + 1
            http.headers_seen.append(dict(self.headers))
            route = http.routes.get(path)
            status, body, delay = route(self.command, path, dict(self.headers)) if route else (404, b"no", 0.0)
            if delay:
                threading.Event().wait(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out close mid-answer on purpose; the stdlib would print a traceback


def _start_http(tls: ssl.SSLContext | None = None) -> HttpServer:
    state: dict[str, Any] = {}
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    http = HttpServer(server, {}, scheme="https" if tls else "http")
    state["server"] = http
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return http


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    http = _start_http()
    yield http
    http.server.shutdown()
    http.server.server_close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[HttpServer]:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    http = _start_http(context)
    yield http
    http.server.shutdown()
    http.server.server_close()


@dataclass
class TcpListener:
    port: int
    sock: socket.socket
    accepted: int = 0


@pytest.fixture
def tcp_listener() -> Iterator[TcpListener]:
    """A listener that accepts and closes connections in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    listener = TcpListener(sock.getsockname()[1], sock)
    stop = threading.Event()

    def loop() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            listener.accepted += 1
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join()
    sock.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def secrets() -> SecretStore:
    return SecretStore({})
