"""The demo's services process: the web service (supervised, restartable), the SSH host and the webhook sink,
and, when the sandbox was built with metrics, Prometheus scraping the web service and steady traffic to /quote.

Run as `python -m rollback_tui.demo.services SANDBOX [--watch-stdin]`. It writes `run/services.json` when every
service answers, and exits with all its children on SIGTERM/SIGINT, or when its stdin closes (`--watch-stdin`:
the parent died or asked it to stop).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rollback_tui.demo.layout import PREFERRED_PORTS, SERVICE, Layout
from rollback_tui.demo.metrics import Traffic, read_choice, start_prometheus, stop_prometheus
from rollback_tui.safeio import atomic_write

_READY_TIMEOUT = 30.0


def listen_socket(preferred: int) -> socket.socket:
    """A listening loopback socket on `preferred`, or on a free port when it is busy (or 0)."""
    for port in ([preferred] if preferred else []) + [0]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        return sock
    raise OSError("no free loopback port")


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved here: the child between fork and exec should only make the call
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the supervising thread goes (Linux), so nothing is orphaned."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class WebSupervisor:
    """Starts the web service from the deploy checkout on a socket it keeps, so a restart loses no connection."""

    def __init__(self, layout: Layout, sock: socket.socket) -> None:
        self.layout = layout
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.proc: asyncio.subprocess.Process | None = None
        self.version: str = ""
        self.started_at: float = 0.0
        self.restarts = 0
        self._lock = asyncio.Lock()

    def info(self) -> dict[str, Any]:
        running = self.proc is not None and self.proc.returncode is None
        try:
            checkout = (self.layout.deploy / "VERSION").read_text().strip()
        except OSError:
            checkout = "?"
        return {"service": SERVICE, "running": running, "pid": self.proc.pid if running and self.proc else None,
                "version": self.version if running else None, "checkout_version": checkout,
                "started_at": self.started_at, "restarts": self.restarts, "port": self.port}

    async def _spawn(self) -> None:
        layout = self.layout
        log = open(layout.web_log, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, str(layout.app), "--config", str(layout.config), "--env-file", str(layout.env_file),
                "--flags", str(layout.flags), "--listen-fd", str(self.sock.fileno()),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(layout.deploy),
                pass_fds=(self.sock.fileno(),), preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self.started_at = time.time()

    async def _wait_ready(self) -> str:
        """Wait until the new process answers /version itself; return its version."""
        assert self.proc is not None
        deadline = time.monotonic() + _READY_TIMEOUT
        url = f"http://127.0.0.1:{self.port}/version"
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"{SERVICE} exited with status {self.proc.returncode} at start:\n"
                                   f"{_tail(self.layout.web_log)}")
            try:
                body = await asyncio.to_thread(_get_json, url, 2.0)
                if body.get("pid") == self.proc.pid:
                    return str(body.get("version"))
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{SERVICE} did not answer within {_READY_TIMEOUT:g}s:\n{_tail(self.layout.web_log)}")

    async def start(self) -> dict[str, Any]:
        await self._spawn()
        self.version = await self._wait_ready()
        return self.info()

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 3.0)
        except (TimeoutError, asyncio.TimeoutError):
            proc.kill()
            await proc.wait()

    async def restart(self) -> dict[str, Any]:
        async with self._lock:
            before = self.info()
            await self.stop()
            after = await self.start()
            self.restarts += 1
            after["restarts"] = self.restarts
            return {"before": before, "after": after}


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # a 503 still carries the JSON reasons
        return json.loads(exc.read())


class HookServer(ThreadingHTTPServer):
    """Webhook sink (`POST /hooks/CHANNEL`) and the host's service control (`POST /-/restart`, `GET /-/status`)."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, layout: Layout, supervisor: WebSupervisor,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(sock.getsockname(), _HookHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.layout = layout
        self.supervisor = supervisor
        self.loop = loop
        self.write_lock = threading.Lock()


class _HookHandler(BaseHTTPRequestHandler):
    server: HookServer

    def _send(self, status: int, body: Any) -> None:
        data = (json.dumps(body, indent=1) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/-/status":
            self._send(200, self.server.supervisor.info())
        elif self.path == "/hooks":
            try:
                lines = self.server.layout.webhooks.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            self._send(200, [json.loads(line) for line in lines if line.strip()])
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/-/restart":
            future = asyncio.run_coroutine_threadsafe(self.server.supervisor.restart(), self.server.loop)
            try:
                self._send(200, future.result(timeout=_READY_TIMEOUT + 10))
            except Exception as exc:  # noqa: BLE001 - reported to the SSH command, which prints it
                self._send(500, {"error": str(exc)})
        elif self.path.startswith("/hooks/"):
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "channel": self.path[7:],
                     "body": body}
            with self.server.write_lock, open(self.server.layout.webhooks, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": "not found"})

    def log_message(self, format: str, *args: object) -> None:
        pass


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """The parent holds our stdin's write end: EOF means it died or wants us gone."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    loop.call_soon_threadsafe(stop.set)


def _write_ready(layout: Layout, data: dict[str, Any]) -> None:
    atomic_write(layout.ready, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)  # a reader never sees half


async def serve(args: argparse.Namespace) -> int:
    from rollback_tui.loopback.sshd import start_server, write_known_hosts

    import asyncssh

    layout = Layout(Path(args.sandbox).resolve())
    layout.run.mkdir(exist_ok=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if args.watch_stdin:
        threading.Thread(target=_watch_stdin, args=(loop, stop), daemon=True, name="watch-stdin").start()
    # SSH commands on this "host" find checkout-service on PATH, like a real host's service wrapper
    os.environ["PATH"] = f"{layout.bin}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["CHECKOUT_SANDBOX"] = str(layout.root)

    supervisor = WebSupervisor(layout, listen_socket(args.web_port))
    hooks: HookServer | None = None
    ssh_server = None
    prometheus: Any = None
    traffic: Traffic | None = None
    metrics, _note = read_choice(layout)
    try:
        if metrics:  # first and in the background: its start-up overlaps everything else; nothing waits for it
            prometheus = start_prometheus(layout, supervisor.port, args.prom_port, _die_with_parent)
            if prometheus is None:
                print("demo services: prometheus is no longer on PATH: the metrics check will find no server",
                      file=sys.stderr, flush=True)
        await supervisor.start()
        if prometheus is not None:
            traffic = Traffic(supervisor.port)
            traffic.start()
        host_key = asyncssh.read_private_key(str(layout.host_key))
        ssh_server = await _start_ssh(start_server, host_key, layout, args.ssh_port)
        write_known_hosts(layout.known_hosts, [("127.0.0.1", ssh_server.port, host_key)])
        hooks = HookServer(listen_socket(args.hook_port), layout, supervisor, loop)
        threading.Thread(target=hooks.serve_forever, daemon=True, name="hooks").start()
        ready = {"pid": os.getpid(), "pgid": os.getpgid(0), "web_port": supervisor.port,
                 "ssh_port": ssh_server.port, "hook_port": hooks.server_address[1],
                 "web_pid": supervisor.proc.pid if supervisor.proc else None}
        if prometheus is not None:
            ready.update({"prom_port": prometheus[1], "prometheus_pid": prometheus[0].pid})
        _write_ready(layout, ready)
        print(f"services ready: web {supervisor.port}, ssh {ssh_server.port}, hooks {hooks.server_address[1]}"
              + (f", prometheus {prometheus[1]}" if prometheus is not None else ""), file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        if traffic is not None:
            traffic.stop()
        if prometheus is not None:
            await asyncio.to_thread(stop_prometheus, prometheus[0])
        if hooks is not None:
            hooks.shutdown()
            hooks.server_close()
        if ssh_server is not None:
            ssh_server.close()
        await supervisor.stop()
        supervisor.sock.close()
        layout.ready.unlink(missing_ok=True)  # the helpers then say "not running", not "connection refused"
    print("services stopped", file=sys.stderr, flush=True)
    return 0


async def _start_ssh(start_server: Any, host_key: Any, layout: Layout, preferred: int) -> Any:
    for port in ([preferred] if preferred else []) + [0]:
        try:
            server, _port = await start_server(host_key=host_key, authorized_keys=layout.authorized_keys, port=port)
            return server
        except OSError:
            if port == 0:
                raise
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollback_tui.demo.services", description=__doc__.splitlines()[0])
    parser.add_argument("sandbox", type=Path)
    parser.add_argument("--web-port", type=int, default=PREFERRED_PORTS["web_port"])
    parser.add_argument("--ssh-port", type=int, default=PREFERRED_PORTS["ssh_port"])
    parser.add_argument("--hook-port", type=int, default=PREFERRED_PORTS["hook_port"])
    parser.add_argument("--prom-port", type=int, default=PREFERRED_PORTS["prom_port"],
                        help="Prometheus's port, when the sandbox runs it")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches end of file")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line in run/services.log (the demo shows its tail), never a traceback
        text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:1000]
        print(f"demo services: {type(exc).__name__}: {text}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
