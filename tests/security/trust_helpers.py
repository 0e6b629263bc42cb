"""Helpers for the trust tests: real ssh-keygen keys, a realistic session, and rollback-tui vs ssh-keygen verdicts."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rollback_tui.record import events as ev
from rollback_tui.record.events import Event
from rollback_tui.report.verify import SignerInfo, VerifyResult, verify_report

NAMESPACE = "rollback-tui"
needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH ssh-keygen not installed")


@dataclass(frozen=True)
class Key:
    path: Path

    @property
    def pub(self) -> str:
        return Path(f"{self.path}.pub").read_text().strip()


def keygen(path: Path, kind: str = "ed25519") -> Key:
    args = {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-b", "384"], "rsa": ["-t", "rsa", "-b", "3072"]}
    subprocess.run(["ssh-keygen", "-q", *args[kind], "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   capture_output=True)
    return Key(path)


def allowed(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def session(operator: str = "root", approvers: tuple[str, str] = ("dana", "terry")) -> list[Event]:
    """A short finished session: started by `operator`, execution approved by approvers[0] (devops-lead),
    validation by approvers[1] (tech-lead)."""
    now = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    out: list[Event] = []

    def add(cls: type, **fields: object) -> None:
        out.append(cls(seq=len(out) + 1, ts=now + timedelta(seconds=len(out)), **fields))

    outline = {"metadata": {"name": "checkout-rollback", "incident": "INC-1", "service": "checkout",
                            "environment": "production"},
               "roles": [{"id": "devops-lead", "title": "DevOps Lead", "approves": ["execution"]},
                         {"id": "tech-lead", "title": "Technical Lead", "approves": ["validation"]}],
               "steps": []}
    add(ev.SessionStarted, operator=operator, plan_name="checkout-rollback", plan_path="plan.yaml",
        plan_sha256="0" * 64, host="ops1", pid=4242, tool_version="test", outline=outline)
    add(ev.ApprovalGiven, gate="execution", role="devops-lead", role_title="DevOps Lead", name=approvers[0])
    add(ev.ApprovalGiven, gate="validation", role="tech-lead", role_title="Technical Lead", name=approvers[1])
    add(ev.SessionFinished, exit_state="completed", scopes={}, message="done")
    return out


def ssh_keygen_verify(report: Path, sig: Path, allowed_file: Path, principal: str) -> bool:
    with report.open("rb") as stdin:
        done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed_file), "-I", principal, "-n", NAMESPACE,
                               "-s", str(sig)], stdin=stdin, capture_output=True, text=True)
    return done.returncode == 0


def ssh_keygen_check_novalidate(report: Path, sig: Path) -> bool:
    """ssh-keygen's verdict on the signature alone (no allowed_signers): what `valid` means for us."""
    with report.open("rb") as stdin:
        done = subprocess.run(["ssh-keygen", "-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)],
                              stdin=stdin, capture_output=True, text=True)
    return done.returncode == 0


def signer(result: VerifyResult, identity: str) -> SignerInfo:
    return next(s for s in result.signers if s.identity == identity)


def agree(report: Path, sig: Path, allowed_file: Path | None, principal: str, result: VerifyResult | None = None) -> bool:
    """Our verdict on one signature equals ssh-keygen's (asserted); returns it. With no allowed_signers file the
    comparison is with `-Y check-novalidate` (cryptographic validity only)."""
    result = result or verify_report(report, allowed_signers=allowed_file)
    info = signer(result, principal)
    if allowed_file is None:
        theirs = ssh_keygen_check_novalidate(report, sig)
        assert info.valid == theirs, (info, theirs)
        return theirs
    theirs = ssh_keygen_verify(report, sig, allowed_file, principal)
    assert info.trusted == theirs, (info, result.problems, theirs)
    return theirs
