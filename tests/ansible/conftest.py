"""Fixtures for the ansible adapter: real OpenSSH sshd hosts on loopback ports, each with its own host key."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext
from rollback_tui.loopback.openssh import OpenSsh, available, free_ports, keygen, start_openssh
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

CANARY = "canary-Ans1ble-7Qx-secret"
PYTHON = "/usr/bin/python3"
"""The hosts' interpreter (this machine's PATH for root finds a pyenv shim without a Python behind it)."""



@dataclass
class Recorder:
    """What the adapter sent through ActionContext: output lines and events (HostTask)."""

    records: list[tuple[str, str, list[str]]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def output(self, host: str, stream: str, lines: list[str]) -> None:
        self.records.append((host, stream, list(lines)))

    def event(self, event: Any) -> None:
        self.events.append(event)

    def lines(self, host: str | None = None, stream: str | None = None) -> list[str]:
        return [line for h, s, lines in self.records for line in lines
                if (host is None or h == host) and (stream is None or s == stream)]

    def tasks(self, task: str | None = None) -> dict[str, str]:
        """host -> status of one task (or of the last task seen per host)."""
        return {e.host: e.status for e in self.events if task is None or e.task == task}


@dataclass
class Fleet:
    hosts: list[str]
    """host specs `127.0.0.1:PORT`, one sshd each"""
    dead: str
    """a loopback port nobody listens on"""
    key: Path
    known_hosts: Path
    servers: list[OpenSsh]

    def group(self, hosts: list[str] | None = None, **options: Any) -> dict[str, Any]:
        return {"hosts": hosts or self.hosts, "user": "root", "key_file": str(self.key),
                "known_hosts": str(self.known_hosts), "connect_timeout": 5, **options}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet")
    key = keygen(folder / "client", "ansible-test")
    authorized = folder / "authorized_keys"
    authorized.write_text(Path(str(key) + ".pub").read_text())
    *ports, dead = free_ports(4)
    servers: list[OpenSsh] = []
    try:
        for index, port in enumerate(ports):
            servers.append(start_openssh(folder / f"h{index}", authorized, [port], name=f"h{index}"))
        known = folder / "known_hosts"
        known.write_text("".join(line + "\n" for server in servers for line in server.known_hosts_lines()))
        yield Fleet([f"127.0.0.1:{port}" for port in ports], f"127.0.0.1:{dead}", key, known, servers)
    finally:
        for server in servers:
            server.stop()


def ansible_plan(action: dict[str, Any], group: dict[str, Any], *, extra: dict[str, Any] | None = None) -> Plan:
    return Plan.model_validate({
        "metadata": {"name": "ansible-test"},
        "rollback": {"scope": ["code"]},
        "secrets": {"canary": {"env": "CANARY_TOKEN"}},
        "host_groups": {"web": group},
        "steps": [{"id": "code", "actions": [{"kind": "ansible", "id": "roll", "hosts": "web",
                                              "python_interpreter": PYTHON, **action}]}],
        **(extra or {}),
    })


def make_ctx(plan: Plan, recorder: Recorder, workdir: Path, *, only_hosts: list[str] | None = None,
             wave: int = 0) -> ActionContext:
    secrets = SecretStore(plan.secrets, environ={"CANARY_TOKEN": CANARY})
    return ActionContext(plan=plan, step="code", action_id=plan.steps[0].actions[0].id, secrets=secrets,
                         output=recorder.output, workdir=workdir, only_hosts=only_hosts, wave=wave,
                         event=recorder.event)


def playbook(folder: Path, tasks: str, name: str = "site.yml") -> Path:
    path = folder / name
    path.write_text(f"- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
    return path


def cmdlines() -> dict[int, str]:
    """Every process's command line, NUL-separated arguments joined by spaces."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    found[int(entry.name)] = handle.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return found


def leftovers(workdir: Path) -> list[str]:
    """Processes naming the work folder or an `rbt-cp-` socket folder, and files left in the work folder."""
    text = str(workdir)
    procs = [f"{pid}: {line}" for pid, line in cmdlines().items() if (text in line or "/tmp/rbt-cp-" in line)
             and pid != os.getpid()]
    return procs + [str(path) for path in workdir.iterdir()]


def kill_remote(marker: str) -> list[int]:
    """Kill the commands a test started on the loopback hosts (found by their unique argument)."""
    pids = [pid for pid, line in cmdlines().items() if marker in line and pid != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


async def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
