"""Fixtures for the shell and SSH adapter tests: keys made by ssh-keygen, loopback SSH servers, plans."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext
from rollback_tui.loopback.sshd import LoopbackServer, ServerStats, start_server, write_known_hosts
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

CANARY = "canary-Zq7vX41-secret"


@dataclass
class Output:
    """Everything adapters emitted through ActionContext.output."""

    records: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def __call__(self, host: str, stream: str, lines: list[str]) -> None:
        self.records.append((host, stream, list(lines)))

    def lines(self, stream: str | None = None, host: str | None = None) -> list[str]:
        return [line for h, s, lines in self.records for line in lines
                if (stream is None or s == stream) and (host is None or h == host)]

    @property
    def text(self) -> str:
        return "\n".join(self.lines())


def make_plan(actions: list[dict[str, Any]], *, host_groups: dict[str, Any] | None = None,
              variables: dict[str, str] | None = None) -> Plan:
    """A minimal valid plan with the actions in its `code` step and a `canary` secret from $CANARY_TOKEN."""
    return Plan.model_validate({
        "metadata": {"name": "shell-ssh-test"},
        "rollback": {"scope": ["code"]},
        "variables": variables or {},
        "secrets": {"canary": {"env": "CANARY_TOKEN"}},
        "host_groups": host_groups or {},
        "steps": [{"id": "code", "actions": actions}],
    })


def make_ctx(plan: Plan, output: Output | None = None, *, only_hosts: list[str] | None = None,
             workdir: Path | None = None) -> ActionContext:
    """A context whose secrets come from a private environment holding the canary."""
    return ActionContext(plan=plan, step="code", action_id=plan.steps[0].actions[0].id,
                         secrets=SecretStore(plan.secrets, environ={"CANARY_TOKEN": CANARY}),
                         output=output or Output(), only_hosts=only_hosts, workdir=workdir or Path.cwd())


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Await a condition (polling), failing with `what` if it never holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def process_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (a reaped-later zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def free_port() -> int:
    """A loopback port with nothing listening on it (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path, comment: str = "test") -> Path:
    """A fresh unencrypted ed25519 key made by the real ssh-keygen."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def client_key(keys_dir: Path) -> Path:
    """The authorized client key pair (private key path; the public key is next to it as .pub)."""
    return keygen(keys_dir / "client")


@pytest.fixture(scope="session")
def stranger_key(keys_dir: Path) -> Path:
    """A key that no server authorizes."""
    return keygen(keys_dir / "stranger")


@pytest.fixture(scope="session")
def host_key(keys_dir: Path) -> Any:
    """One host key shared by the loopback servers (loaded once: see notes/performance.md)."""
    import asyncssh

    keygen(keys_dir / "host")
    return asyncssh.read_private_key(str(keys_dir / "host"))


@dataclass
class Fleet:
    """Loopback SSH servers, their known_hosts file and helpers to make host groups of them."""

    tmp: Path
    client_key: Path
    host_key: Any
    servers: list[LoopbackServer] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    async def add(self, name: str = "", *, stats: ServerStats | None = None, allow_forwarding: bool = False,
                  known: bool = True) -> LoopbackServer:
        """Start one more server; its command environment has HOST_NAME=name."""
        name = name or f"h{len(self.servers) + 1}"
        server, _ = await start_server(host_key=self.host_key, authorized_keys=str(self.client_key) + ".pub",
                                       stats=stats, allow_forwarding=allow_forwarding, env={"HOST_NAME": name})
        self.servers.append(server)
        self.names.append(name)
        if known:
            self.write_known_hosts()
        return server

    @property
    def known_hosts(self) -> Path:
        return self.tmp / "known_hosts"

    def write_known_hosts(self) -> None:
        write_known_hosts(self.known_hosts, [("127.0.0.1", s.port, self.host_key) for s in self.servers])

    def host(self, index: int) -> str:
        return f"127.0.0.1:{self.servers[index].port}"

    def group(self, hosts: list[str] | None = None, **options: Any) -> dict[str, Any]:
        """A host-group mapping for a plan (all servers unless `hosts` is given)."""
        return {"hosts": hosts or [self.host(i) for i in range(len(self.servers))], "user": "root",
                "key_file": str(self.client_key), "known_hosts": str(self.known_hosts), **options}

    def stats(self, index: int) -> ServerStats:
        return self.servers[index].stats


@pytest.fixture
async def fleet(tmp_path: Path, client_key: Path, host_key: Any) -> AsyncIterator[Fleet]:
    """An empty fleet; tests add servers. Every server is closed afterwards."""
    fleet = Fleet(tmp_path, client_key, host_key)
    try:
        yield fleet
    finally:
        for server in fleet.servers:
            server.close()
        for server in fleet.servers:
            await server.wait_closed()


@pytest.fixture
async def three_hosts(fleet: Fleet) -> Fleet:
    """A running fleet of three loopback servers (h1, h2, h3) with a known_hosts file listing them."""
    for _ in range(3):
        await fleet.add()
    return fleet


@pytest.fixture
def ssh_plan(three_hosts: Fleet) -> Plan:
    """A plan whose `web` host group is the three loopback servers, with one ssh action."""
    return make_plan([{"kind": "ssh", "id": "hello", "group": "web", "command": "echo hello from $HOST_NAME"}],
                     host_groups={"web": three_hosts.group()})


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME without keys and no agent, so only what a test provides is offered."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


def env_without(*names: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in names}
