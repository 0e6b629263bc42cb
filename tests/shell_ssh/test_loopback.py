"""The loopback SSH server's command line (used by the benchmark and the demo) and lazy asyncssh imports."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from rollback_tui.adapters.ssh import run_on_group
from rollback_tui.loopback.sshd import generate_host_key, write_known_hosts
from rollback_tui.plan.models import HostGroup
from rollback_tui.secrets import SecretStore

from .conftest import Output, wait_until


async def test_the_cli_starts_n_servers_writes_their_ports_and_stops_on_sigterm(tmp_path: Path,
                                                                                 client_key: Path) -> None:
    host_key = generate_host_key(tmp_path / "host_key")
    port_file = tmp_path / "ports"
    server = subprocess.Popen([sys.executable, "-m", "rollback_tui.loopback.sshd", "--port-file", str(port_file),
                               "--host-key", str(tmp_path / "host_key"),
                               "--authorized-keys", str(client_key) + ".pub", "--count", "3"])
    try:
        await wait_until(port_file.exists, what="port file")
        ports = [int(line) for line in port_file.read_text().split()]
        assert len(set(ports)) == 3
        write_known_hosts(tmp_path / "known_hosts", [("127.0.0.1", port, host_key) for port in ports])
        group = HostGroup(hosts=[f"127.0.0.1:{port}" for port in ports], key_file=str(client_key),
                          known_hosts=str(tmp_path / "known_hosts"))
        output = Output()
        outcomes = await run_on_group(group, "echo pong", secrets=SecretStore({}), sink=output)
        assert [outcome.status for outcome in outcomes] == ["ok"] * 3
        assert output.lines("stdout") == ["pong"] * 3
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=20)
    assert code == 0


def test_the_cli_names_a_missing_key_file(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rollback_tui.loopback.sshd", "--port-file", str(tmp_path / "p"),
                           "--host-key", str(tmp_path / "nope"), "--authorized-keys", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert f"--host-key {tmp_path / 'nope'}: no such file" in done.stderr


def test_importing_the_adapters_does_not_import_asyncssh() -> None:
    code = ("import sys, rollback_tui.adapters.ssh, rollback_tui.adapters.shell, rollback_tui.loopback.sshd; "
            "print('asyncssh' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
