"""The sandbox really starts broken, its ports, its SSH host, and the files it is built from."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from rollback_tui.demo.layout import BAD_VERSION, GOOD_VERSION, SEEDED_ROWS
from rollback_tui.demo.sandbox import Sandbox, build_sandbox
from rollback_tui.errors import RollbackError
from rollback_tui.plan.loader import load_plan
from tests.demo.conftest import get


def _count(db: Path, table: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_starts_broken_for_three_reasons(sandbox: Sandbox) -> None:
    status, body = get(f"http://127.0.0.1:{sandbox.variables['web_port']}/health")
    assert status == 503
    assert body["status"] == "failing"
    reasons = " | ".join(body["reasons"])
    assert "release 1.5.0: pricing self-test fails" in reasons
    assert "new-checkout is on for 100% of users" in reasons
    assert "checkout.engine = 'v2'" in reasons
    assert get(f"http://127.0.0.1:{sandbox.variables['web_port']}/version")[1]["version"] == BAD_VERSION


def test_built_state_is_the_bad_release(built: Sandbox) -> None:
    layout = built.layout
    head = subprocess.run(["git", "-C", str(layout.deploy), "describe", "--tags"], capture_output=True, text=True)
    assert head.stdout.strip() == "v1.5.0"
    tags = subprocess.run(["git", "-C", str(layout.deploy), "tag"], capture_output=True, text=True).stdout.split()
    assert {"v1.4.1", "v1.4.2", "v1.5.0"} <= set(tags)
    with closing(sqlite3.connect(layout.db)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0003"
    for table, rows in SEEDED_ROWS.items():
        assert _count(layout.db, table) == rows
    assert 'engine = "v2"' in layout.config.read_text()
    assert 'engine = "v1"' in (layout.snapshot / "etc" / "checkout.toml").read_text()
    assert "CHECKOUT_V2_TIMEOUT_MS" in layout.env_file.read_text()
    assert built.allowed_signers.read_text().startswith('demo-operator namespaces="rollback-tui" ssh-ed25519 ')
    assert built.sign_key.stat().st_mode & 0o077 == 0


def test_plan_loads_with_the_sandbox_variables(sandbox: Sandbox) -> None:
    loaded = load_plan(sandbox.plan_path, sandbox.variables)
    group = loaded.plan.host_groups["checkout-hosts"]
    assert group.hosts == [f"127.0.0.1:{sandbox.variables['ssh_port']}"]
    assert group.known_hosts == str(sandbox.layout.known_hosts)
    assert [step.value for step in loaded.plan.applicable_steps] == [
        "assess", "flags", "code", "configuration", "database", "validate"]
    for artifact in loaded.plan.inputs.artifacts:
        assert Path(artifact.check.path).exists(), artifact.id


def test_a_busy_port_makes_it_pick_another(built: Sandbox) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        built.start(ports={"web_port": taken, "ssh_port": 0, "hook_port": 0})
        port = int(built.variables["web_port"])
        assert port != taken
        assert get(f"http://127.0.0.1:{port}/health")[0] == 503


def test_restart_over_ssh_runs_the_checked_out_release(sandbox: Sandbox) -> None:
    import asyncio

    import asyncssh

    layout = sandbox.layout
    web = f"http://127.0.0.1:{sandbox.variables['web_port']}"
    before = get(f"{web}/version")[1]
    subprocess.run(["git", "-C", str(layout.deploy), "checkout", "-q", "v1.4.2"], check=True)

    async def ssh(command: str) -> asyncssh.SSHCompletedProcess:
        async with asyncssh.connect("127.0.0.1", int(sandbox.variables["ssh_port"]), username="deploy",
                                    client_keys=[str(layout.user_key)], known_hosts=str(layout.known_hosts)) as conn:
            return await conn.run(command)

    stale = asyncio.run(ssh("checkout-service status"))
    assert stale.exit_status == 3, stale.stdout  # runs 1.5.0 from memory, 1.4.2 on disk
    done = asyncio.run(ssh("checkout-service restart"))
    assert done.exit_status == 0, done.stderr
    assert f"started checkout-service {GOOD_VERSION}" in done.stdout
    after = get(f"{web}/version")[1]
    assert after["version"] == GOOD_VERSION and after["pid"] != before["pid"]
    assert asyncio.run(ssh("checkout-service status")).exit_status == 0


def test_keep_dir_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(RollbackError, match="not empty"):
        build_sandbox(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "mine"
