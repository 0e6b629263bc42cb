"""The SSH adapter against a real OpenSSH sshd on a loopback port (skipped when sshd is not installed)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_tui.adapters.base import run_safely
from rollback_tui.loopback.openssh import listening
from rollback_tui.loopback.sshd import write_known_hosts

from .conftest import Output, free_port, keygen, make_ctx, make_plan

SSHD = Path("/usr/sbin/sshd")

pytestmark = [
    pytest.mark.skipif(not SSHD.exists(), reason="OpenSSH sshd is not installed (apt-get install openssh-server)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting sshd with PermitRootLogin needs root"),
]


@pytest.fixture
def openssh(tmp_path: Path, client_key: Path) -> Iterator[tuple[int, Path]]:
    """sshd -D on a free 127.0.0.1 port with a temp host key and authorized_keys; yields (port, known_hosts)."""
    host_key = keygen(tmp_path / "ssh_host_ed25519_key", "sshd")
    authorized = tmp_path / "authorized_keys"
    authorized.write_text((client_key.parent / (client_key.name + ".pub")).read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
""")
    check = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    log = (tmp_path / "sshd.log").open("w")
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        for _ in range(200):
            if listening(port) or server.poll() is not None:
                break
            time.sleep(0.05)
        assert server.poll() is None, (tmp_path / "sshd.log").read_text()
        known_hosts = write_known_hosts(tmp_path / "known_hosts",
                                        [("127.0.0.1", port, Path(str(host_key) + ".pub").read_text())])
        yield port, known_hosts
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def openssh_plan(port: int, known_hosts: Path, client_key: Path, command: str, **fields: object):
    group = {"hosts": [f"127.0.0.1:{port}"], "user": "root", "key_file": str(client_key),
             "known_hosts": str(known_hosts)}
    action = {"kind": "ssh", "id": "remote", "group": "fleet", "command": command, **fields}
    return make_plan([action], host_groups={"fleet": group})


async def test_openssh_runs_the_command_and_reports_streams_and_status(openssh: tuple[int, Path],
                                                                      client_key: Path) -> None:
    port, known_hosts = openssh
    output = Output()
    plan = openssh_plan(port, known_hosts, client_key, "echo interop; id -un; echo to-stderr >&2; exit 5",
                        expect_exit=5)
    result = await run_safely(plan.steps[0].actions[0], make_ctx(plan, output))
    assert result.status == "ok", result.error
    assert result.hosts[0].exit_code == 5
    assert output.lines("stdout", host=f"127.0.0.1:{port}") == ["interop", "root"]
    assert output.lines("stderr", host=f"127.0.0.1:{port}") == ["to-stderr"]


async def test_openssh_with_a_stale_known_hosts_is_refused(openssh: tuple[int, Path], client_key: Path,
                                                          tmp_path: Path) -> None:
    port, _ = openssh
    other = keygen(tmp_path / "other_host_key", "other")
    stale = write_known_hosts(tmp_path / "stale", [("127.0.0.1", port, Path(str(other) + ".pub").read_text())])
    plan = openssh_plan(port, stale, client_key, "true")
    result = await run_safely(plan.steps[0].actions[0], make_ctx(plan))
    assert result.hosts[0].status == "unreachable"
    assert result.hosts[0].error.startswith(f"host key of 127.0.0.1:{port} changed")



async def test_a_background_process_holding_the_channel_open_does_not_keep_the_action_running(
        openssh: tuple[int, Path], client_key: Path) -> None:
    port, known_hosts = openssh
    output = Output()
    plan = openssh_plan(port, known_hosts, client_key, "sleep 300 & echo $!; echo done", timeout=60)
    started = time.monotonic()
    result = await run_safely(plan.steps[0].actions[0], make_ctx(plan, output))
    took = time.monotonic() - started
    host = f"127.0.0.1:{port}"
    pid = int(output.lines("stdout", host=host)[0])
    try:
        assert result.status == "ok", result.error
        assert took < 15, f"the action waited {took:.1f}s for a background process"  # grace: 2 s
        assert output.lines("stdout", host=host)[1:] == ["done"]
        assert any("channel closed" in line for line in output.lines("info", host=host))
    finally:
        try:
            os.kill(pid, 9)  # sshd runs it on this machine: it stays after the channel closes (said in the line)
        except ProcessLookupError:
            pass
