"""Interop with the real OpenSSH: our signatures pass `ssh-keygen -Y verify`, ssh-keygen's pass `rollback-tui verify`,
from key files and through an ssh-agent; any changed byte fails both."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_sessions import realistic_session
from report_sshtools import Agent, Key, ssh_keygen_sign, ssh_keygen_verify, write_allowed

from rollback_tui.report.verify import verify_report
from rollback_tui.report.writer import write_report

KINDS = ["ed25519", "ecdsa", "rsa"]


def _write(tmp_path: Path, key: Key | None, name: str = "report.md") -> Path:
    outcome = write_report(realistic_session(), tmp_path / name, sign_key=key.path if key else None, no_sign=False,
                           operator="alice")
    assert outcome.signed, outcome.error
    return outcome.path


@pytest.mark.parametrize("kind", KINDS)
def test_our_signature_passes_ssh_keygen(tmp_path: Path, keys: dict[str, Key], kind: str) -> None:
    report = _write(tmp_path, keys[kind])
    allowed = write_allowed(tmp_path / "allowed_signers", [("alice", keys[kind])])
    done = ssh_keygen_verify(report, Path(f"{report}.sig"), allowed, "alice")
    assert done.returncode == 0, done.stderr
    assert 'Good "rollback-tui" signature for alice' in done.stdout
    result = verify_report(report, allowed_signers=allowed, identity="alice")
    assert result.ok, result.problems
    assert [(s.identity, s.role, s.ok) for s in result.signers] == [("alice", "operator", True)]


@pytest.mark.parametrize("kind", KINDS)
def test_ssh_keygen_signature_passes_our_verify(tmp_path: Path, keys: dict[str, Key], kind: str) -> None:
    report = _write(tmp_path, keys[kind])
    ssh_keygen_sign(report, keys[kind].path)
    allowed = write_allowed(tmp_path / "allowed_signers", [("alice", keys[kind])])
    result = verify_report(report, allowed_signers=allowed, identity="alice")
    assert result.ok, result.problems


@pytest.mark.parametrize("kind", KINDS)
def test_agent_signs_and_both_verify(tmp_path: Path, keys: dict[str, Key], agent: Agent, kind: str) -> None:
    """No --sign-key: the agent's first key signs (RSA must come back as rsa-sha2-512, not SHA-1)."""
    agent.add(keys[kind])
    report = _write(tmp_path, None)
    allowed = write_allowed(tmp_path / "allowed_signers", [("alice", keys[kind])])
    done = ssh_keygen_verify(report, Path(f"{report}.sig"), allowed, "alice")
    assert done.returncode == 0, done.stderr
    assert verify_report(report, allowed_signers=allowed).ok


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_ssh_keygen_signing_through_the_agent_passes_our_verify(tmp_path: Path, keys: dict[str, Key], agent: Agent,
                                                                 kind: str) -> None:
    agent.add(keys[kind])
    report = _write(tmp_path, keys[kind])
    ssh_keygen_sign(report, keys[kind].pub, env=agent.env)  # only the public half on the command line
    allowed = write_allowed(tmp_path / "allowed_signers", [("alice", keys[kind])])
    assert verify_report(report, allowed_signers=allowed).ok


def test_protected_key_in_the_agent_needs_no_passphrase(tmp_path: Path, keys: dict[str, Key], agent: Agent) -> None:
    from report_sshtools import PASSPHRASE

    agent.add(keys["protected"], PASSPHRASE)
    outcome = write_report(realistic_session(), tmp_path / "r.md", sign_key=keys["protected"].path, no_sign=False,
                           operator="alice")  # no passphrase callable: the agent's copy of the key signs
    assert outcome.signed and "protected@test" in outcome.signer, outcome.error


@pytest.mark.parametrize("kind", KINDS)
def test_one_changed_byte_fails_both_verifiers(tmp_path: Path, keys: dict[str, Key], kind: str) -> None:
    report = _write(tmp_path, keys[kind])
    allowed = write_allowed(tmp_path / "allowed_signers", [("alice", keys[kind])])
    original = report.read_bytes()
    decision = original.index(b"- Why: digest differs")
    log = original.index(b'{"prev":"') + 200
    for position in (0, decision + 8, log, len(original) - 1):
        changed = bytearray(original)
        changed[position] ^= 0x01
        report.write_bytes(bytes(changed))
        assert ssh_keygen_verify(report, Path(f"{report}.sig"), allowed, "alice").returncode != 0
        assert not verify_report(report, allowed_signers=allowed).ok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_fails_our_verify(tmp_path: Path, keys: dict[str, Key], data: st.DataObject) -> None:
    report = tmp_path / "r.md"
    if not report.exists():
        _write(tmp_path, keys["ed25519"], "r.md")
        (tmp_path / "orig").write_bytes(report.read_bytes())
    original = (tmp_path / "orig").read_bytes()
    position = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[position]))
    changed = bytearray(original)
    changed[position] = value
    report.write_bytes(bytes(changed))
    result = verify_report(report)  # a changed byte is a failed check, never "not a report"
    assert not result.ok
    assert result.problems
