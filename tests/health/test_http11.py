"""The keep-alive HTTP/1.1 client against raw loopback servers that answer exactly as scripted."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from rollback_tui.health.http11 import MAX_BODY, HttpPool, HttpProtocolError

from .conftest import HttpServer

#: request head -> raw answer bytes, and whether to close the connection afterwards
Script = Callable[[bytes], tuple[bytes, bool]]


@dataclass
class RawServer:
    port: int
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def _serve(script: Script) -> tuple[RawServer, asyncio.Server]:
    state = RawServer(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                state.requests.append(head)
                answer, close = script(head)
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    return state, server


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Script], asyncio.Future[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> RawServer:
        state, server = await _serve(script)
        servers.append(server)
        return state

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def fixed(answer: bytes, close: bool = False) -> Script:
    return lambda head: (answer, close)


async def test_content_length_and_keep_alive(raw: Callable) -> None:
    server = await raw(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\nok"))
    pool = HttpPool()
    try:
        for _ in range(3):
            response = await pool.request("GET", server.url("/health?x=1"))
            assert (response.status, response.body) == (200, b"ok")
        assert response.headers["x-a"] == "1, 2"
    finally:
        await pool.aclose()
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("GET /health?x=1 HTTP/1.1\r\n") and f"Host: 127.0.0.1:{server.port}\r\n" in first


async def test_chunked_body_with_trailers(raw: Callable) -> None:
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"7;ext=1\r\n{\"ok\": \r\n5\r\ntrue}\r\n0\r\nX-Trailer: t\r\n\r\n")
    server = await raw(fixed(answer))
    pool = HttpPool()
    try:
        assert (await pool.request("GET", server.url())).body == b'{"ok": true}'
        assert (await pool.request("GET", server.url())).body == b'{"ok": true}'
    finally:
        await pool.aclose()
    assert server.connections == 1


async def test_body_until_close_and_connection_close(raw: Callable) -> None:
    server = await raw(fixed(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close=True))
    pool = HttpPool()
    try:
        assert (await pool.request("GET", server.url())).body == b"until the end"
        assert (await pool.request("GET", server.url())).body == b"until the end"
    finally:
        await pool.aclose()
    assert server.connections == 2
    closing = await raw(fixed(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
    pool = HttpPool()
    try:
        assert (await pool.request("GET", closing.url())).status == 503
        assert (await pool.request("GET", closing.url())).status == 503
    finally:
        await pool.aclose()
    assert closing.connections == 2


async def test_head_no_content_and_interim_answers(raw: Callable) -> None:
    def script(head: bytes) -> tuple[bytes, bool]:
        if head.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", False
        if head.startswith(b"DELETE"):
            return b"HTTP/1.1 204 No Content\r\n\r\n", False
        return b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes", False

    server = await raw(script)
    pool = HttpPool()
    try:
        head = await pool.request("HEAD", server.url())
        assert (head.status, head.body) == (200, b"")
        assert (await pool.request("DELETE", server.url())).status == 204
        assert b"Content-Length: 0\r\n" in server.requests[-1]
        answer = await pool.request("GET", server.url())
        assert (answer.status, answer.body) == (200, b"yes")
    finally:
        await pool.aclose()
    assert server.connections == 1


async def test_a_kept_alive_connection_the_server_dropped_is_retried_once(raw: Callable) -> None:
    # the server closes after each answer but says nothing: the client only finds out on reuse
    server = await raw(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close=True))
    pool = HttpPool()
    try:
        assert (await pool.request("GET", server.url())).status == 200
        await asyncio.sleep(0)  # let the close arrive, as it would between two polls
        assert (await pool.request("GET", server.url())).status == 200
    finally:
        await pool.aclose()
    assert server.connections == 2


async def test_malformed_answers_are_protocol_errors(raw: Callable) -> None:
    pool = HttpPool()
    try:
        garbage = await raw(fixed(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
        with pytest.raises(HttpProtocolError, match="not an HTTP/1.x answer: 'SSH-2.0-OpenSSH_9.2'"):
            await pool.request("GET", garbage.url())
        cut = await raw(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close=True))
        with pytest.raises(HttpProtocolError, match="closed the connection in the middle"):
            await pool.request("GET", cut.url())
        huge = await raw(fixed(f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode()))
        with pytest.raises(HttpProtocolError, match="larger than 4 MiB"):
            await pool.request("GET", huge.url())
        silent = await raw(fixed(b"", close=True))
        with pytest.raises(ConnectionResetError, match="without answering"):
            await pool.request("GET", silent.url())
    finally:
        await pool.aclose()


async def test_urls_headers_and_credentials(raw: Callable) -> None:
    server = await raw(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    pool = HttpPool()
    try:
        await pool.request("GET", f"http://probe:p%40ss@127.0.0.1:{server.port}", {"X-Env": "prod"})
        sent = server.requests[-1].decode()
        assert sent.startswith("GET / HTTP/1.1\r\n") and "X-Env: prod\r\n" in sent
        assert f"Authorization: Basic {base64.b64encode(b'probe:p@ss').decode()}\r\n" in sent
        with pytest.raises(HttpProtocolError, match="header X-Evil contains a line break"):
            await pool.request("GET", server.url(), {"X-Evil": "a\r\nX-Injected: 1"})
        with pytest.raises(HttpProtocolError, match="unsupported URL scheme 'ftp'"):
            await pool.request("GET", "ftp://127.0.0.1/")
        with pytest.raises(HttpProtocolError, match="no host"):
            await pool.request("GET", "http:///path")
    finally:
        await pool.aclose()
    assert len(server.requests) == 1


async def test_cancelled_request_does_not_return_its_connection(http_server: HttpServer) -> None:
    http_server.set("/slow", 200, "{}", delay=1.0)
    http_server.set("/fast", 200, "{}")
    pool = HttpPool()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await pool.request("GET", http_server.url("/slow"))
        assert not any(pool._idle.values())
        # the next request gets a fresh connection and the right answer, not the late one
        assert (await pool.request("GET", http_server.url("/fast"))).status == 200
    finally:
        await pool.aclose()
