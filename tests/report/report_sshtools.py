"""Helpers for report tests: real ssh-keygen keys, allowed_signers files, ssh-keygen sign/verify, ssh-agent."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import shutil

KEY_TYPES = {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-b", "256"], "rsa": ["-t", "rsa", "-b", "3072"]}
PASSPHRASE = "correct horse battery staple"

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH ssh-keygen not installed")


@dataclass(frozen=True)
class Key:
    kind: str
    path: Path

    @property
    def pub(self) -> Path:
        return Path(f"{self.path}.pub")

    def allowed_line(self, principal: str, options: str = 'namespaces="rollback-tui"') -> str:
        return f"{principal} {options} {self.pub.read_text().strip()}".replace("  ", " ")


def keygen(path: Path, kind: str, passphrase: str = "", comment: str = "") -> Key:
    subprocess.run(["ssh-keygen", "-q", *KEY_TYPES[kind], "-N", passphrase, "-C", comment or f"{kind}@test", "-f", str(path)],
                   check=True, capture_output=True)
    return Key(kind, path)


def write_allowed(path: Path, entries: list[tuple[str, Key]]) -> Path:
    path.write_text("".join(key.allowed_line(principal) + "\n" for principal, key in entries))
    return path


def ssh_keygen_verify(report: Path, sig: Path, allowed: Path, identity: str) -> subprocess.CompletedProcess[str]:
    with report.open("rb") as stdin:
        return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", identity, "-n", "rollback-tui",
                               "-s", str(sig)], stdin=stdin, capture_output=True, text=True)


def ssh_keygen_sign(file: Path, key: Path, env: dict[str, str] | None = None) -> Path:
    sig = Path(f"{file}.sig")
    sig.unlink(missing_ok=True)  # ssh-keygen refuses to overwrite
    subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "rollback-tui", "-f", str(key), str(file)], check=True,
                   capture_output=True, env=env)
    return sig


@dataclass
class Agent:
    socket: Path
    env: dict[str, str]

    def add(self, key: Key, passphrase: str = "") -> None:
        env = dict(self.env)
        if passphrase:
            askpass = key.path.with_name(f"askpass-{os.getpid()}.sh")
            askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n")
            askpass.chmod(0o700)
            env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        subprocess.run(["ssh-add", str(key.path)], check=True, capture_output=True, env=env, stdin=subprocess.DEVNULL)


def make_unwritable(directory: Path) -> bool:
    """Make a directory refuse new files even for root (chattr +i); False when this system cannot."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
    elif subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        return False
    probe = directory / ".probe"
    try:
        probe.touch()
    except OSError:
        return True
    probe.unlink()
    restore_writable(directory)
    return False


def restore_writable(directory: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(directory)], capture_output=True)
    directory.chmod(0o700)
