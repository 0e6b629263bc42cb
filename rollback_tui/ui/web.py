"""`follow --web` / `replay --web`: the read-only cockpit served to browsers by textual-serve, behind a URL token."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from rollback_tui.procedure.exits import EXIT_USAGE

MAX_OBSERVERS = 1000
MAX_MESSAGE = 64 * 1024  # a browser sends keys, resizes and pings: nothing near this
MAX_CELLS = 1000  # terminal width/height a browser may ask for
STOP_GRACE = 3.0  # seconds a child has to quit before it is killed (its whole process group)
HEADERS = {
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never send it to anyone else
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same origin only: no web font or anything else fetched from elsewhere (the page works offline)
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'",
}
log = logging.getLogger("rollback-tui.web")


@dataclass(frozen=True)
class WebOptions:
    """--web, --port, --bind, --max-observers."""

    port: int = 0
    bind: str = "127.0.0.1"
    max_observers: int = 20


def check_options(opts: WebOptions) -> str:
    """'' when the options are usable, else the problem and what to do."""
    if not 0 <= opts.port <= 65535:
        return f"--port {opts.port}: give a TCP port from 1 to 65535 (0: any free port)"
    if not 1 <= opts.max_observers <= MAX_OBSERVERS:
        return f"--max-observers {opts.max_observers}: give a number from 1 to {MAX_OBSERVERS}"
    try:
        ipaddress.ip_address(bind_address(opts.bind))
    except ValueError:
        return f"--bind {opts.bind!r}: give an IP address (127.0.0.1, ::1, or 0.0.0.0 for every interface)"
    return ""


def bind_address(bind: str) -> str:
    return "127.0.0.1" if bind == "localhost" else bind.strip("[]")


def is_loopback(bind: str) -> bool:
    return ipaddress.ip_address(bind_address(bind)).is_loopback


class ObserverService(AppService):
    """One browser tab's cockpit: the child runs in its own process group, killed (group) when the tab goes."""

    def __init__(self, argv: Sequence[str], **kwargs: Any) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = list(argv)

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        environment = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=environment, start_new_session=True)
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the app to quit; kill its process group if it has not gone within STOP_GRACE seconds."""
        try:
            await asyncio.wait_for(super().stop(), STOP_GRACE)
        except (asyncio.TimeoutError, OSError, RuntimeError):
            pass
        finally:
            await self.kill()

    async def kill(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except asyncio.TimeoutError:
                pass
        killpg(process.pid, signal.SIGKILL)  # anything the app itself started, even after it exited
        if process.returncode is None:
            await process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ObserverServer(Server):
    """textual-serve's Server with every route under /TOKEN/, a 403 for anything else, and an observer limit."""

    def __init__(self, argv: Sequence[str], *, title: str, opts: WebOptions, token: str) -> None:
        super().__init__(shlex.join(argv), host=bind_address(opts.bind), port=opts.port, title=title)
        self.argv = list(argv)
        self.token = token
        self.max_observers = opts.max_observers
        self.observers: set[ObserverService] = set()
        self.slots = 0  # taken before the first await, so that a burst of connections cannot pass the limit

    def initialize_logging(self) -> None:
        logging.basicConfig(level=logging.WARNING, format="rollback-tui web: %(message)s")

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=MAX_MESSAGE)
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path), autoescape=True)
        prefix = f"/{self.token}"
        app.add_routes([
            web.get(f"{prefix}/", self.handle_index, name="index"),
            web.get(f"{prefix}/ws", self.handle_websocket, name="websocket"),
            web.static(f"{prefix}/static", self.statics_path, show_index=False, follow_symlinks=False, name="static"),
        ])
        app.on_response_prepare.append(self.add_headers)
        app.on_shutdown.append(self.on_shutdown)
        return app

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.path.split("/", 2)[1] if request.path.startswith("/") else ""
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            return web.Response(status=403, text="403 forbidden: open the URL rollback-tui printed (it has the token)\n")
        return await handler(request)

    async def add_headers(self, _request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(HEADERS)

    async def on_shutdown(self, _app: web.Application) -> None:
        await self.stop_all()

    async def stop_all(self) -> None:
        await asyncio.gather(*(service.kill() for service in list(self.observers)), return_exceptions=True)

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page, with its websocket and static URLs on the host the browser used (so a bind to 0.0.0.0 works)."""
        base = f"{request.scheme}://{request.host}"
        router = request.app.router
        ws_base = ("wss://" if request.scheme == "https" else "ws://") + request.host
        return {
            "font_size": 16,
            "app_websocket_url": f"{ws_base}{router['websocket'].url_for()}",
            "config": {"static": {"url": f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"}},
            "application": {"name": self.title},
        }

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if self.slots >= self.max_observers:
            return web.Response(status=503, text=f"503: {self.max_observers} observers already watching "
                                                 "(the limit: --max-observers)\n")
        self.slots += 1
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE)
        service: ObserverService | None = None
        try:
            await websocket.prepare(request)
            service = ObserverService(self.argv, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                      close=websocket.close, download_manager=self.download_manager)
            self.observers.add(service)
            await service.start(_size(request.query.get("width"), 80), _size(request.query.get("height"), 24))
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # one observer's failure never stops the server
            log.warning("observer connection failed: %s: %s", type(error).__name__, error)
        finally:
            self.slots -= 1
            if service is not None:
                self.observers.discard(service)
                await service.stop()
        return websocket

    async def _process_messages(self, websocket: web.WebSocketResponse, app_service: AppService) -> None:
        """Keys, resizes, pings and focus from the browser; anything malformed is ignored."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope or not isinstance(envelope[0], str):
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                await app_service.send_bytes(data.encode("utf-8", "replace"))
            elif kind == "resize" and isinstance(data, dict):
                await app_service.set_terminal_size(_size(data.get("width"), 80), _size(data.get("height"), 24))
            elif kind == "ping" and isinstance(data, (str, int, float)):
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await app_service.blur()
            elif kind == "focus":
                await app_service.focus()

    def serve_on(self, sock: socket.socket) -> None:
        """Serve until SIGINT/SIGTERM; then every observer's process group is ended before this returns."""
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_exit)
        try:
            web.run_app(self._make_app(), sock=sock, handle_signals=False, loop=loop, print=None,
                        shutdown_timeout=STOP_GRACE, access_log=None)
        finally:
            for service in list(self.observers):  # belt and braces: nothing outlives the server
                if service.pid is not None:
                    killpg(service.pid, signal.SIGKILL)


def _size(value: object, default: int) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default
    return min(max(number, 1), MAX_CELLS)


def listen(opts: WebOptions) -> socket.socket:
    address = bind_address(opts.bind)
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    return socket.create_server((address, opts.port), family=family, backlog=64)


def page_url(sock: socket.socket, bind: str, token: str) -> str:
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/{token}/"


def child_argv(command: str, *args: str) -> list[str]:
    """The command each browser tab runs: the read-only cockpit (ui/webapp.py), with this Python."""
    return [sys.executable, "-m", "rollback_tui.ui.webapp", "--server-pid", str(os.getpid()), command, *args]


def serve(argv: Sequence[str], opts: WebOptions, *, what: str) -> int:
    """Listen, print the URL (with its token), serve until interrupted. Returns the exit code."""
    problem = check_options(opts)
    if problem:
        print(f"rollback-tui: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = listen(opts)
    except OSError as exc:
        print(f"rollback-tui: cannot listen on {opts.bind} port {opts.port}: {exc.strerror or exc}\n"
              "  choose another --port (0: any free port)", file=sys.stderr)
        return EXIT_USAGE
    token = secrets.token_urlsafe(32)  # 256 bits
    if not is_loopback(opts.bind):
        print(f"rollback-tui: warning: listening on {opts.bind}, beyond this machine: anyone who can reach it and "
              "has the URL can watch the session", file=sys.stderr)
    print(f"rollback-tui: serving {what} (read-only) to browsers at\n  {page_url(sock, opts.bind, token)}\n"
          f"  anyone with this URL can watch; at most {opts.max_observers} at once; Ctrl+C stops the server "
          "and every observer", flush=True)
    ObserverServer(argv, title=f"rollback-tui · {what} (read-only)", opts=opts, token=token).serve_on(sock)
    return 0
