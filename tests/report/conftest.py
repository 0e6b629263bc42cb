"""Fixtures for report tests: real ssh-keygen keys, an ssh-agent started per test, an isolated HOME."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_sshtools import KEY_TYPES, Agent, Key, keygen, PASSPHRASE

@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    """One key of each type made by the real ssh-keygen, plus a passphrase-protected ed25519 key ('protected')."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH ssh-keygen not installed")
    base = tmp_path_factory.mktemp("keys")
    made = {kind: keygen(base / f"id_{kind}", kind) for kind in KEY_TYPES}
    made["protected"] = keygen(base / "id_protected", "ed25519", PASSPHRASE, "protected@test")
    made["other"] = keygen(base / "id_other", "ed25519", comment="mallory@test")
    return made


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the real ~/.ssh, a real agent, or the machine's allowed-signers sources (env, XDG, git)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("ROLLBACK_TUI_ALLOWED_SIGNERS", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    return home


def _accepts(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))
        return True
    except OSError:
        return False


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    """A real ssh-agent on a socket of its own (foreground mode, so the test owns and ends the process)."""
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("OpenSSH ssh-agent/ssh-add not installed")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not _accepts(sock):  # the socket file exists at bind(), before listen(): wait for a connection
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ssh-agent did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.01)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield Agent(sock, {**os.environ, "SSH_AUTH_SOCK": str(sock)})
    finally:
        proc.terminate()
        proc.wait(timeout=10)


