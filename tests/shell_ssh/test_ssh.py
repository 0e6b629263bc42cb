"""SSH adapter against asyncssh servers on 127.0.0.1: per-host results, host keys, auth, timeouts, retry, cancel."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from rollback_tui.adapters.base import describe_safely, run_safely, verify_safely
from rollback_tui.adapters.ssh import run_on_group, split_host
from rollback_tui.errors import AdapterError
from rollback_tui.loopback.sshd import ServerStats, known_hosts_line
from rollback_tui.plan.models import HostGroup
from rollback_tui.secrets import MASK, SecretStore

from .conftest import CANARY, Fleet, Output, free_port, keygen, make_ctx, make_plan, process_alive, wait_until


def ssh_plan(fleet: Fleet, command: str, *, group: dict | None = None, **fields: object):
    action = {"kind": "ssh", "id": "remote", "group": "web", "command": command, **fields}
    return make_plan([action], host_groups={"web": group or fleet.group()})


async def run_action(plan, output: Output | None = None, only_hosts: list[str] | None = None):
    return await run_safely(plan.steps[0].actions[0], make_ctx(plan, output, only_hosts=only_hosts))


async def test_a_command_on_three_hosts_gives_one_result_and_stream_per_host(three_hosts: Fleet) -> None:
    output = Output()
    plan = ssh_plan(three_hosts, "echo hello from $HOST_NAME; echo warn >&2")
    result = await run_action(plan, output)
    assert result.status == "ok", result.error
    assert [(h.host, h.status, h.exit_code) for h in result.hosts] == [
        (three_hosts.host(i), "ok", 0) for i in range(3)]
    for index, name in enumerate(["h1", "h2", "h3"]):
        assert output.lines("stdout", host=three_hosts.host(index)) == [f"hello from {name}"]
        assert output.lines("stderr", host=three_hosts.host(index)) == ["warn"]
    assert result.details == {"group": "web", "ok": 3, "total": 3}


async def test_a_host_that_is_down_is_unreachable_and_the_others_succeed(three_hosts: Fleet) -> None:
    down = f"127.0.0.1:{free_port()}"
    hosts = [three_hosts.host(0), down, three_hosts.host(1)]
    result = await run_action(ssh_plan(three_hosts, "true", group=three_hosts.group(hosts)))
    assert result.status == "failed"
    assert [h.status for h in result.hosts] == ["ok", "unreachable", "ok"]
    assert result.hosts[1].error == f"host {down} unreachable: connection refused"
    assert result.failed_hosts == [down]
    assert result.error.startswith("1 of 3 hosts failed: host " + down)


async def test_a_refused_key_names_user_and_host(three_hosts: Fleet, stranger_key: Path) -> None:
    group = three_hosts.group([three_hosts.host(0)], key_file=str(stranger_key), user="deploy")
    result = await run_action(ssh_plan(three_hosts, "true", group=group))
    outcome = result.hosts[0]
    assert outcome.status == "unreachable"
    assert outcome.error.startswith(f"authentication refused for deploy@{three_hosts.host(0)}: ")
    assert str(stranger_key) in outcome.error


async def test_an_unknown_host_key_is_refused_with_the_way_out(three_hosts: Fleet, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    group = three_hosts.group([three_hosts.host(0)], known_hosts=str(empty))
    result = await run_action(ssh_plan(three_hosts, "touch should-not-run", group=group))
    assert result.hosts[0].status == "unreachable"
    assert result.hosts[0].error == (
        f"host key of {three_hosts.host(0)} is not in {empty} (strict checking is on): "
        "add it with ssh-keyscan, or set strict_host_key_checking: false")
    assert three_hosts.stats(0).sessions == 0


async def test_a_changed_host_key_is_refused_as_changed(three_hosts: Fleet, tmp_path: Path) -> None:
    import asyncssh

    impostor = asyncssh.generate_private_key("ssh-ed25519")
    port = three_hosts.servers[0].port
    stale = tmp_path / "stale_known_hosts"
    stale.write_text(known_hosts_line("127.0.0.1", port, impostor) + "\n")
    group = three_hosts.group([three_hosts.host(0)], known_hosts=str(stale))
    result = await run_action(ssh_plan(three_hosts, "true", group=group))
    assert result.hosts[0].status == "unreachable"
    assert result.hosts[0].error.startswith(f"host key of 127.0.0.1:{port} changed: it does not match {stale}")
    assert f"ssh-keygen -R '[127.0.0.1]:{port}'" in result.hosts[0].error


async def test_strict_checking_off_connects_and_is_listed_as_a_risk(three_hosts: Fleet, tmp_path: Path) -> None:
    group = three_hosts.group(known_hosts=str(tmp_path / "nothing"), strict_host_key_checking=False)
    plan = ssh_plan(three_hosts, "true", group=group)
    assert (await run_action(plan)).status == "ok"
    description = await describe_safely(plan.steps[0].actions[0], make_ctx(plan))
    assert any("host key checking is OFF" in risk and "'web'" in risk for risk in description.risks)
    strict_plan = ssh_plan(three_hosts, "true")
    strict = await describe_safely(strict_plan.steps[0].actions[0], make_ctx(strict_plan))
    assert strict.risks == []


async def test_a_slow_host_times_out_and_the_others_still_report(three_hosts: Fleet, tmp_path: Path) -> None:
    pid_file = tmp_path / "slow.pid"
    command = f'if [ "$HOST_NAME" = h2 ]; then sleep 1000 & echo $! > {pid_file}; wait; fi; echo done'
    result = await run_action(ssh_plan(three_hosts, command, timeout=4))
    assert [h.status for h in result.hosts] == ["ok", "timeout", "ok"]
    assert result.hosts[1].error.startswith(f"host {three_hosts.host(1)} timed out after ")
    assert result.status == "failed" and result.failed_hosts == [three_hosts.host(1)]
    # the server saw the channel close and killed the command's process group
    await wait_until(lambda: three_hosts.stats(1).closed_early == 1, what="channel closed on the server")
    await wait_until(lambda: not process_alive(int(pid_file.read_text())), what="remote sleep killed")


async def test_per_host_timeout_of_run_on_group(three_hosts: Fleet) -> None:
    group = HostGroup.model_validate(three_hosts.group())
    outcomes = await run_on_group(group, 'if [ "$HOST_NAME" = h3 ]; then sleep 1000; fi', timeout=3,
                                  secrets=SecretStore({}))
    assert [outcome.status for outcome in outcomes] == ["ok", "ok", "timeout"]


async def test_retry_targets_only_the_failed_hosts(three_hosts: Fleet, tmp_path: Path) -> None:
    (tmp_path / "ready-h1").touch()
    plan = ssh_plan(three_hosts, f"test -e {tmp_path}/ready-$HOST_NAME")
    first = await run_action(plan)
    assert first.failed_hosts == [three_hosts.host(1), three_hosts.host(2)]
    assert all(h.exit_code == 1 for h in first.hosts[1:])
    (tmp_path / "ready-h2").touch()
    (tmp_path / "ready-h3").touch()
    description = await describe_safely(plan.steps[0].actions[0], make_ctx(plan, only_hosts=first.failed_hosts))
    assert "2 host(s) of the failed hosts web" in description.summary
    retry = await run_action(plan, only_hosts=first.failed_hosts)
    assert retry.status == "ok"
    assert [h.host for h in retry.hosts] == first.failed_hosts
    assert [three_hosts.stats(i).sessions for i in range(3)] == [1, 2, 2]
    bogus = await run_action(plan, only_hosts=["10.9.9.9"])
    assert bogus.status == "failed" and "not in the group: 10.9.9.9" in bogus.error


async def test_concurrency_bound_is_respected(fleet: Fleet, tmp_path: Path) -> None:
    shared = ServerStats()
    for _ in range(6):
        await fleet.add(stats=shared)
    go = tmp_path / "go"
    plan = ssh_plan(fleet, f"while [ ! -e {go} ]; do sleep 0.02; done", concurrency=2)
    task = asyncio.create_task(run_action(plan))
    await wait_until(lambda: shared.active == 2, what="two sessions running")
    go.touch()
    result = await task
    assert result.status == "ok"
    assert shared.sessions == 6
    assert shared.max_active == 2
    assert shared.max_connections <= 2


async def test_cancel_closes_channels_and_the_server_kills_the_command(three_hosts: Fleet, tmp_path: Path) -> None:
    plan = ssh_plan(three_hosts, f"sleep 1000 & echo $! > {tmp_path}/$HOST_NAME.pid; wait")
    task = asyncio.create_task(run_action(plan))
    pid_files = [tmp_path / f"h{i}.pid" for i in (1, 2, 3)]
    await wait_until(lambda: all(p.exists() and p.read_text().strip() for p in pid_files), what="remote pids")
    pids = [int(p.read_text()) for p in pid_files]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: all(three_hosts.stats(i).closed_early == 1 for i in range(3)), what="channels closed")
    await wait_until(lambda: not any(process_alive(pid) for pid in pids), what="remote commands killed")
    await wait_until(lambda: all(three_hosts.stats(i).active_connections == 0 for i in range(3)),
                     what="connections closed")


async def test_through_a_jump_host(fleet: Fleet) -> None:
    jump = await fleet.add("jump", allow_forwarding=True)
    await fleet.add("inner1")
    await fleet.add("inner2")
    group = fleet.group([fleet.host(1), fleet.host(2)], jump_host=f"root@127.0.0.1:{jump.port}")
    output = Output()
    result = await run_action(ssh_plan(fleet, "echo on $HOST_NAME", group=group), output)
    assert result.status == "ok", result.error
    assert sorted(output.lines("stdout")) == ["on inner1", "on inner2"]
    assert sorted(port for _, port in jump.stats.forwarded) == sorted(s.port for s in fleet.servers[1:])
    assert jump.stats.sessions == 0  # the jump host only forwarded


async def test_a_jump_host_that_refuses_forwarding(fleet: Fleet) -> None:
    jump = await fleet.add("jump", allow_forwarding=False)
    await fleet.add("inner")
    group = fleet.group([fleet.host(1)], jump_host=f"127.0.0.1:{jump.port}")
    result = await run_action(ssh_plan(fleet, "true", group=group))
    assert result.hosts[0].status == "unreachable"
    assert f"unreachable through jump host root@127.0.0.1:{jump.port}" in result.hosts[0].error


async def test_a_jump_host_that_is_down_fails_every_host(three_hosts: Fleet) -> None:
    port = free_port()
    group = three_hosts.group(jump_host=f"127.0.0.1:{port}")
    result = await run_action(ssh_plan(three_hosts, "true", group=group))
    assert [h.status for h in result.hosts] == ["unreachable"] * 3
    assert result.hosts[0].error == f"jump host root@127.0.0.1:{port}: host 127.0.0.1:{port} unreachable: " \
                                    "connection refused"


async def test_ssh_agent_authentication(three_hosts: Fleet, client_key: Path, clean_home: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        await wait_until(sock.exists, what="ssh-agent socket")
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(client_key)], env=env, check=True, stderr=subprocess.DEVNULL)
        group = {k: v for k, v in three_hosts.group().items() if k != "key_file"}
        plan = ssh_plan(three_hosts, "true", group=group)
        # without the agent nothing can be offered: HOME has no keys
        no_agent = await run_action(plan)
        assert no_agent.status == "failed" and "no SSH key to offer" in no_agent.error
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        result = await run_action(plan)
        assert result.status == "ok", result.error
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)


async def test_default_key_in_home_is_used(three_hosts: Fleet, client_key: Path, clean_home: Path) -> None:
    (clean_home / ".ssh" / "id_ed25519").write_bytes(client_key.read_bytes())
    group = {k: v for k, v in three_hosts.group().items() if k != "key_file"}
    assert (await run_action(ssh_plan(three_hosts, "true", group=group))).status == "ok"


async def test_the_canary_never_appears_in_ssh_output_or_errors(three_hosts: Fleet) -> None:
    command = ("echo token=${secrets.canary}; printf %s ${secrets.canary} | base64; "
               "echo ${secrets.canary} >&2; exit 4")
    plan = ssh_plan(three_hosts, command, verify_command="echo ${secrets.canary}; exit 2")
    output = Output()
    ctx = make_ctx(plan, output)
    result = await run_safely(plan.steps[0].actions[0], ctx)
    checks = await verify_safely(plan.steps[0].actions[0], ctx)
    description = await describe_safely(plan.steps[0].actions[0], ctx)
    assert result.status == "failed" and [h.exit_code for h in result.hosts] == [4, 4, 4]
    # adapters hand their text on as it is; the session's record path masks it (ctx.redactor)
    mask = ctx.redactor
    assert mask(output.lines("stdout", host=three_hosts.host(0))[0]) == "token=" + MASK
    everything = "\n".join([mask(output.text), mask(result.error), *(mask(h.error) for h in result.hosts),
                            *(mask(c.check + c.expected + c.observed) for c in checks),
                            description.summary, *description.details])
    assert CANARY not in everything
    assert three_hosts.stats(0).commands[0].startswith(f"echo token={CANARY};")  # it did reach the host


async def test_verify_reads_back_on_every_host(three_hosts: Fleet, tmp_path: Path) -> None:
    (tmp_path / "state-h1").touch()
    plan = ssh_plan(three_hosts, "true", verify_command=f"test -e {tmp_path}/state-$HOST_NAME")
    ctx = make_ctx(plan)
    checks = await verify_safely(plan.steps[0].actions[0], ctx)
    assert [check.ok for check in checks] == [False, False, False]
    assert checks[0].observed.startswith("2 of 3 hosts failed")
    assert [check.check.split(" on ")[-1] for check in checks[1:]] == [three_hosts.host(1), three_hosts.host(2)]
    (tmp_path / "state-h2").touch()
    (tmp_path / "state-h3").touch()
    checks = await verify_safely(plan.steps[0].actions[0], ctx)
    assert [(check.ok, check.observed) for check in checks] == [(True, "3/3 hosts exit 0")]


async def test_describe_lists_hosts_auth_and_host_key_policy(three_hosts: Fleet) -> None:
    plan = ssh_plan(three_hosts, "systemctl restart app", concurrency=2)
    description = await describe_safely(plan.steps[0].actions[0], make_ctx(plan))
    assert description.summary == "run `systemctl restart app` on 3 host(s) of host group web as root, 2 at a time"
    assert f"hosts: {three_hosts.host(0)}, {three_hosts.host(1)}, {three_hosts.host(2)}" in description.details
    assert f"host keys: checked against {three_hosts.known_hosts}" in description.details


def test_split_host() -> None:
    assert split_host("web1", 22) == ("web1", 22)
    assert split_host("127.0.0.1:2201", 22) == ("127.0.0.1", 2201)
    assert split_host("[::1]:2201", 22) == ("::1", 2201)
    assert split_host("::1", 2222) == ("::1", 2222)
    with pytest.raises(AdapterError, match="not a port"):
        split_host("web1:ssh", 22)
