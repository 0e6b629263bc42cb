"""Co-signing: approvers add their own signature; verify lists every signer and role and checks the claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_sessions import realistic_session
from report_sshtools import Key, ssh_keygen_verify, write_allowed

from rollback_tui.errors import ReportError, SignatureError
from rollback_tui.report.cosign import cosign_path, cosign_report, sanitise
from rollback_tui.report.verify import verify_report
from rollback_tui.report.writer import write_report


@pytest.fixture
def report(tmp_path: Path, keys: dict[str, Key]) -> Path:
    return write_report(realistic_session(), tmp_path / "r.md", sign_key=keys["ed25519"].path, no_sign=False,
                        operator="alice").path


def test_cosigned_report_lists_every_signer(tmp_path: Path, report: Path, keys: dict[str, Key]) -> None:
    cosign_report(report, keys["ecdsa"].path, "bob", "devops-lead")
    outcome = cosign_report(report, keys["rsa"].path, "carol")  # role taken from carol's one approval
    assert outcome.role == "tech-lead" and outcome.sig_path == tmp_path / "r.md.carol.sig"
    allowed = write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"]), ("bob", keys["ecdsa"]),
                                                    ("carol", keys["rsa"])])
    result = verify_report(report, allowed_signers=allowed)
    assert result.ok, result.problems
    assert [(s.identity, s.role, s.ok) for s in result.signers] == [
        ("alice", "operator", True), ("bob", "devops-lead", True), ("carol", "tech-lead", True)]
    for identity in ("bob", "carol"):
        done = ssh_keygen_verify(report, cosign_path(report, identity), allowed, identity)
        assert done.returncode == 0, done.stderr


def test_cosigner_with_a_key_not_allowed_for_them(tmp_path: Path, report: Path, keys: dict[str, Key]) -> None:
    cosign_report(report, keys["other"].path, "bob", "DevOps Lead")  # the role title is accepted too
    allowed = write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"]), ("bob", keys["ecdsa"])])
    result = verify_report(report, allowed_signers=allowed)
    assert not result.ok
    assert any("r.md.bob.sig: key SHA256:" in p and "not trusted to sign as 'bob'" in p for p in result.problems)


def test_role_claim_must_match_an_approval(report: Path, keys: dict[str, Key]) -> None:
    with pytest.raises(ReportError, match="no approval event names 'bob' for role 'tech-lead'"):
        cosign_report(report, keys["ecdsa"].path, "bob", "tech-lead")
    with pytest.raises(ReportError, match="no approval event names 'mallory' in this session"):
        cosign_report(report, keys["other"].path, "mallory")


def test_edited_role_claim_is_caught(report: Path, keys: dict[str, Key]) -> None:
    cosign_report(report, keys["ecdsa"].path, "bob", "devops-lead")
    listing = Path(f"{report}.cosigners")
    data = json.loads(listing.read_text())
    data["cosigners"][0]["role"] = "tech-lead"
    listing.write_text(json.dumps(data))
    result = verify_report(report)
    assert not result.ok
    assert any("co-signer 'bob' claims role 'tech-lead', but no approval event names 'bob' for that role "
               "(approvals by 'bob': devops-lead (execution))" in p for p in result.problems)


def test_tampered_report_is_not_cosigned(report: Path, keys: dict[str, Key]) -> None:
    report.write_bytes(report.read_bytes().replace(b"- Why: digest differs", b"- Why: digest differed"))
    with pytest.raises(SignatureError, match="fails verification; refusing to co-sign"):
        cosign_report(report, keys["ecdsa"].path, "bob", "devops-lead")
    assert not Path(f"{report}.cosigners").exists()


def test_identity_becomes_a_safe_file_name() -> None:
    assert sanitise("bob@example.com") == "bob@example.com"
    assert sanitise("../../etc/passwd") == "_.._etc_passwd"
    assert sanitise("Jane Doe") == "Jane_Doe"
