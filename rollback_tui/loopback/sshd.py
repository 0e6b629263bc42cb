"""A small asyncssh SSH server for loopback use: public-key auth only, each exec request run as a real `sh -c`."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CHUNK = 65536


@dataclass
class ServerStats:
    """What a server saw; tests await conditions on it (max concurrency, channels closed early)."""

    connections: int = 0
    active_connections: int = 0
    max_connections: int = 0
    sessions: int = 0
    active: int = 0
    """Exec sessions whose command is running now."""
    max_active: int = 0
    commands: list[str] = field(default_factory=list)
    closed_early: int = 0
    """Channels the client closed while their command was still running."""
    killed_pids: list[int] = field(default_factory=list)
    """Process groups killed because their channel closed first."""
    forwarded: list[tuple[str, int]] = field(default_factory=list)
    """direct-tcpip destinations opened through this server (jump host use)."""


class LoopbackServer:
    """One listening server; `close()` also drops its live connections (asyncssh keeps them otherwise)."""

    def __init__(self, acceptor: Any, port: int, stats: ServerStats, connections: set[Any]) -> None:
        self.acceptor = acceptor
        self.port = port
        self.stats = stats
        self._connections = connections

    def close(self) -> None:
        self.acceptor.close()
        for conn in list(self._connections):
            conn.close()

    async def wait_closed(self) -> None:
        await self.acceptor.wait_closed()
        for conn in list(self._connections):
            await conn.wait_closed()

    async def __aenter__(self) -> LoopbackServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


def generate_host_key(path: str | Path) -> Any:
    """Write a new ed25519 private key to `path` (and `path.pub`); return the key object."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    path = Path(path)
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return key


def known_hosts_line(host: str, port: int, public_key: Any) -> str:
    """One OpenSSH known_hosts line; `public_key` is a key object or an OpenSSH public key string."""
    if not isinstance(public_key, str):
        public_key = public_key.export_public_key().decode()
    key_type, key_data = public_key.split()[:2]
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key_type} {key_data}"


def write_known_hosts(path: str | Path, entries: Sequence[tuple[str, int, Any]]) -> Path:
    """Write a known_hosts file with one line per (host, port, public key)."""
    path = Path(path)
    path.write_text("".join(known_hosts_line(host, port, key) + "\n" for host, port, key in entries))
    return path


def _load_host_key(host_key: Any) -> Any:
    import asyncssh

    # a path would be re-read on every connection (~55 ms each): load it once
    if isinstance(host_key, (str, Path)):
        return asyncssh.read_private_key(str(host_key))
    return host_key


def _load_authorized(authorized_keys: Any) -> Any:
    import asyncssh

    if isinstance(authorized_keys, (str, Path)):
        return asyncssh.read_authorized_keys(str(authorized_keys))
    if isinstance(authorized_keys, asyncssh.SSHAuthorizedKeys):
        return authorized_keys
    lines = [key if isinstance(key, str) else key.export_public_key().decode() for key in authorized_keys]
    return asyncssh.import_authorized_keys("".join(line.strip() + "\n" for line in lines))


async def _copy_out(source: asyncio.StreamReader, target: Any) -> None:
    try:
        while chunk := await source.read(_CHUNK):
            target.write(chunk)
            await target.drain()
    except (BrokenPipeError, ConnectionError, OSError):
        pass  # the channel went away; the process group is killed by the handler


async def _copy_in(source: Any, target: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(_CHUNK):
            target.write(chunk)
            await target.drain()
    except Exception:  # noqa: BLE001 - a closed channel or a child that stopped reading
        pass
    finally:
        target.close()


def _kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exec_handler(stats: ServerStats, shell: bool, env: dict[str, str]) -> Any:
    async def handle(process: Any) -> None:
        command = process.command
        if command is None and not shell:
            process.stderr.write(b"interactive shells are not served here\n")
            process.exit(1)
            return
        if command is None:
            argv = ["sh"]
        else:
            argv = ["sh", "-c", command] if shell else shlex.split(command)
        stats.sessions += 1
        stats.commands.append(command or "")
        try:
            child = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env={**os.environ, **env, **dict(process.env)},
                start_new_session=True,  # the whole group dies when the channel closes
            )
        except OSError as exc:
            process.stderr.write(f"{argv[0]}: {exc.strerror}\n".encode())
            process.exit(127)
            return
        stats.active += 1
        stats.max_active = max(stats.max_active, stats.active)
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        pumps = [
            asyncio.ensure_future(_copy_out(child.stdout, process.stdout)),
            asyncio.ensure_future(_copy_out(child.stderr, process.stderr)),
        ]
        feeder = asyncio.ensure_future(_copy_in(process.stdin, child.stdin))

        async def finished() -> int:
            await asyncio.gather(*pumps)
            return await child.wait()

        exited = asyncio.ensure_future(finished())
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            done, _ = await asyncio.wait({exited, closed}, return_when=asyncio.FIRST_COMPLETED)
            if exited in done:
                code = exited.result()
                process.exit(code if code >= 0 else 128 - code)
            else:
                stats.closed_early += 1
        finally:
            stats.active -= 1
            if child.returncode is None:
                stats.killed_pids.append(child.pid)
            _kill_group(child.pid)  # also whatever the command left behind in its group
            for task in (*pumps, feeder, exited, closed):
                task.cancel()
            if child.returncode is None:
                await child.wait()

    return handle


async def start_server(*, host_key: Any, authorized_keys: Any, port: int = 0, host: str = "127.0.0.1",
                       shell: bool = True, allow_forwarding: bool = False,
                       stats: ServerStats | None = None,
                       env: dict[str, str] | None = None) -> tuple[LoopbackServer, int]:
    """Listen on host:port (0 = a free port) and return the server and its port.

    `host_key`: an asyncssh key object or a private key path. `authorized_keys`: a path, an
    SSHAuthorizedKeys object, or a list of public keys (objects or OpenSSH strings).
    `shell`: run exec requests as `sh -c COMMAND` (False: split the command and run it without a shell).
    `allow_forwarding`: accept direct-tcpip requests, so the server can act as a jump host.
    `stats`: share one ServerStats between servers (e.g. to count concurrency across a host group).
    `env`: extra environment of every command (e.g. a host name, so one loopback host can act differently).
    """
    import asyncssh

    stats = stats if stats is not None else ServerStats()
    connections: set[Any] = set()

    class _Server(asyncssh.SSHServer):
        def connection_made(self, conn: Any) -> None:
            self._conn = conn
            connections.add(conn)
            stats.connections += 1
            stats.active_connections += 1
            stats.max_connections = max(stats.max_connections, stats.active_connections)

        def connection_lost(self, exc: Exception | None) -> None:
            connections.discard(self._conn)
            stats.active_connections -= 1

        def password_auth_supported(self) -> bool:
            return False

        def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
            if allow_forwarding:
                stats.forwarded.append((dest_host, dest_port))
            return allow_forwarding

    acceptor = await asyncssh.listen(
        host, port,
        server_factory=_Server,
        server_host_keys=[_load_host_key(host_key)],
        authorized_client_keys=_load_authorized(authorized_keys),
        process_factory=_exec_handler(stats, shell, dict(env or {})),
        encoding=None,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        reuse_address=True,
    )
    bound = acceptor.get_port()
    return LoopbackServer(acceptor, bound, stats, connections), bound


async def _serve(args: argparse.Namespace) -> int:
    import asyncssh

    key = asyncssh.read_private_key(args.host_key)
    authorized = asyncssh.read_authorized_keys(args.authorized_keys)
    servers = []
    for _ in range(args.count):
        server, _port = await start_server(host_key=key, authorized_keys=authorized, host=args.host,
                                           allow_forwarding=args.allow_forwarding)
        servers.append(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # written whole and renamed, so a reader never sees half the ports
    port_file = Path(args.port_file)
    partial = port_file.with_name(port_file.name + ".partial")
    partial.write_text("".join(f"{server.port}\n" for server in servers))
    partial.replace(port_file)
    await stop.wait()
    for server in servers:
        server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rollback_tui.loopback.sshd`: start N servers, write their ports, run until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m rollback_tui.loopback.sshd", description=__doc__)
    parser.add_argument("--port-file", required=True, help="written with one port per line once all are listening")
    parser.add_argument("--host-key", required=True, help="private host key (see generate_host_key)")
    parser.add_argument("--authorized-keys", required=True, help="authorized_keys file of the clients")
    parser.add_argument("--count", type=int, default=1, help="number of servers (default 1)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--allow-forwarding", action="store_true", help="accept direct-tcpip (jump host)")
    args = parser.parse_args(argv)
    for name in ("host_key", "authorized_keys"):
        if not Path(getattr(args, name)).is_file():
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: no such file")
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:
        print(f"loopback sshd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
