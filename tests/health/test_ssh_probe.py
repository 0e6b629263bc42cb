"""The SSH probe against the loopback SSH server: N of M hosts, one host down, one failing its command."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.health.checks import run_step_check
from rollback_tui.health.monitor import Monitor
from rollback_tui.health.probes import sample
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

from .util import Events, make_plan

sshd = pytest.importorskip("rollback_tui.loopback.sshd", reason="the loopback SSH server is not written yet")


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Three loopback SSH hosts (the third answers 'sick') and a fourth address where nothing listens."""
    import asyncssh

    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    host_key = sshd.generate_host_key(tmp_path / "host_key")
    servers, hosts = [], []
    for index in range(3):
        public = client_key.export_public_key().decode()
        server, port = await sshd.start_server(host_key=host_key, authorized_keys=[public],
                                               env={"HEALTH": "sick" if index == 2 else "fine"})
        servers.append(server)
        hosts.append(f"127.0.0.1:{port}")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    down_port = sock.getsockname()[1]
    sock.close()
    hosts.append(f"127.0.0.1:{down_port}")
    known = sshd.write_known_hosts(tmp_path / "known_hosts",
                                   [("127.0.0.1", int(h.split(":")[1]), host_key) for h in hosts[:3]])
    group = {"hosts": hosts, "user": "root", "key_file": str(key_path), "known_hosts": str(known),
             "connect_timeout": 5}
    yield {"group": group, "hosts": hosts, "servers": servers}
    for server in servers:
        server.close()
        await server.wait_closed()


def ssh_plan(fleet: dict[str, Any], probes: list[dict[str, Any]]) -> Plan:
    return make_plan(probes, host_groups={"web": fleet["group"]})


async def test_n_of_m_hosts_with_one_host_down(fleet: dict[str, Any]) -> None:
    down = fleet["hosts"][3]
    plan = ssh_plan(fleet, [
        {"id": "three", "kind": "ssh", "group": "web", "command": "true", "min_ok": 3, "timeout": 10},
        {"id": "all", "kind": "ssh", "group": "web", "command": "true", "timeout": 10},
    ])
    secrets = SecretStore({})
    three = await sample(plan.health[0], plan=plan, secrets=secrets)
    assert three.ok and not three.degraded
    assert three.reason == f"3/4 hosts passed; host {down} unreachable: connection refused"
    every = await sample(plan.health[1], plan=plan, secrets=secrets)
    assert not every.ok
    assert every.reason == f"3/4 hosts passed; host {down} unreachable: connection refused (need 4)"


async def test_a_host_failing_its_command_counts_against_min_ok(fleet: dict[str, Any]) -> None:
    sick = fleet["hosts"][2]
    plan = ssh_plan(fleet, [{"id": "app", "kind": "ssh", "group": "web", "command": 'test "$HEALTH" = fine',
                             "min_ok": 3, "timeout": 10}])
    outcome = await sample(plan.health[0], plan=plan, secrets=SecretStore({}))
    assert not outcome.ok
    assert outcome.reason.startswith("2/4 hosts passed; host ")
    assert outcome.reason.endswith("(+1 more) (need 3)")
    assert f"host {sick}: exited with status 1 (expected 0)" in outcome.reason


async def test_monitor_runs_ssh_probes_and_reports_states(fleet: dict[str, Any], events: Events) -> None:
    plan = ssh_plan(fleet, [
        {"id": "quorum", "kind": "ssh", "group": "web", "command": "true", "min_ok": 2, "interval": 0.2,
         "timeout": 10},
        {"id": "strict", "kind": "ssh", "group": "web", "command": 'test "$HEALTH" = fine', "min_ok": 3,
         "interval": 0.2, "timeout": 10, "down_after": 2, "trigger": True},
    ])
    async with Monitor(plan, SecretStore({}), events, sample_every=60) as monitor:
        await events.wait_state("quorum", "healthy", timeout=30)
        await events.wait_state("strict", "down", timeout=30)
        snapshot = monitor.snapshot()
    assert snapshot["quorum"]["state"] == "healthy" and snapshot["quorum"]["reason"].startswith("3/4 hosts passed")
    assert snapshot["strict"]["reason"].startswith("2/4 hosts passed")
    assert events.changes("strict")[:2] == [("unknown", "degraded"), ("degraded", "down")]


async def test_inline_ssh_step_check(fleet: dict[str, Any]) -> None:
    plan = ssh_plan(fleet, [])
    check = plan.model_validate({**plan.model_dump(), "steps": [{"id": "validate", "verify": [
        {"kind": "ssh", "group": "web", "command": "true", "min_ok": 3, "timeout": 10}]}]}).steps[0].verify[0]
    result = await run_step_check(check, plan=plan, secrets=SecretStore({}), monitor=None)
    assert result.ok and result.check == "ssh web: true"
    assert result.expected == "exit 0 on at least 3 hosts of web, within 10s timeout"
    assert result.observed.startswith("3/4 hosts passed")
