"""Every tamper case names what changed: a decision, a removed or reordered event, a human section, line endings,
a foreign namespace, a SHA-1 RSA signature, a missing or foreign signature."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_sessions import realistic_session
from report_sshtools import Key, ssh_keygen_verify, write_allowed

from rollback_tui.report import sshsig
from rollback_tui.report.verify import VerifyResult, verify_report
from rollback_tui.report.writer import write_report


@pytest.fixture
def report(tmp_path: Path, keys: dict[str, Key]) -> Path:
    outcome = write_report(realistic_session(), tmp_path / "r.md", sign_key=keys["ed25519"].path, no_sign=False,
                           operator="alice")
    assert outcome.signed
    return outcome.path


def _lines(report: Path) -> list[bytes]:
    return report.read_bytes().split(b"\n")


def _log_index(lines: list[bytes], seq: int) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(b'{"prev"') and f'"seq":{seq},'.encode() in line)


def _failed(report: Path) -> VerifyResult:
    result = verify_report(report)
    assert not result.ok
    assert result.signature_ok is False
    assert any("signature does not match" in p for p in result.problems)
    return result


def test_intact_report_verifies(tmp_path: Path, report: Path, keys: dict[str, Key]) -> None:
    allowed = write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"])])
    result = verify_report(report, allowed_signers=allowed)
    assert result.ok and result.integrity_ok and result.signature_ok
    assert ssh_keygen_verify(report, Path(f"{report}.sig"), allowed, "alice").returncode == 0  # both agree
    assert not result.problems and not result.line_endings_note
    assert result.events == realistic_session()


def test_intact_report_without_allowed_signers_is_unverified(report: Path) -> None:
    # was: OK with a note "identities not checked"; trust is never implied any more (issue 12)
    result = verify_report(report)
    assert not result.ok and result.unverified and result.integrity_ok and result.signature_ok
    assert [(s.valid, s.ok) for s in result.signers] == [(True, False)]
    assert any("signer is unverified" in p for p in result.problems)


def test_changed_decision_in_the_human_section(report: Path) -> None:
    report.write_bytes(report.read_bytes().replace(b"- Why: digest differs", b"- Why: digest differed"))
    line = _lines(report).index(b"- Why: digest differed only by the injected build id; values checked by hand") + 1
    result = _failed(report)
    assert any(p.startswith("section 'Decisions' does not match") and f"line {line} reads" in p for p in result.problems)
    assert not any(p.startswith("event log") for p in result.problems)


def test_changed_decision_in_the_event_log(report: Path) -> None:
    report.write_bytes(report.read_bytes().replace(b'"reason":"digest differs', b'"reason":"digest differed'))
    result = _failed(report)
    chain = [p for p in result.problems if "hash chain breaks" in p]
    assert len(chain) == 1 and chain[0].startswith("event log: the hash chain breaks between event seq 60 (decision_made")
    # the human sections still tell the signed story, so they no longer match the altered log
    assert any(p.startswith("section 'Decisions'") for p in result.problems)


def test_removed_event(report: Path) -> None:
    lines = _lines(report)
    del lines[_log_index(lines, 40)]
    report.write_bytes(b"\n".join(lines))
    result = _failed(report)
    assert any("seq 40 is missing (removed)" in p for p in result.problems)
    assert any("hash chain breaks between event seq 39" in p for p in result.problems)


def test_reordered_events(report: Path) -> None:
    lines = _lines(report)
    at = _log_index(lines, 40)
    lines[at], lines[at + 1] = lines[at + 1], lines[at]
    report.write_bytes(b"\n".join(lines))
    result = _failed(report)
    assert any("event seq 40 (verification" in p and "events were reordered" in p for p in result.problems)


def test_removed_last_event(report: Path) -> None:
    lines = _lines(report)
    del lines[_log_index(lines, 87)]
    report.write_bytes(b"\n".join(lines))
    result = _failed(report)
    assert any("the last event (seq 86, signal) was changed, or events were removed from the end" in p
               for p in result.problems)


def test_changed_human_section(report: Path) -> None:
    report.write_bytes(report.read_bytes().replace(b"- [ ] Root cause identified", b"- [x] Root cause identified"))
    line = _lines(report).index(b"- [x] Root cause identified") + 1
    result = _failed(report)
    assert [p for p in result.problems if p.startswith("section")] == [
        f"section 'Root cause analysis' does not match what the event log generates: line {line} reads "
        "'- [x] Root cause identified', the events give '- [ ] Root cause identified'"]


def test_added_section(report: Path) -> None:
    report.write_bytes(report.read_bytes().replace(b"## Signals\n", b"## Extra approvals\n\n- bob\n\n## Signals\n"))
    assert any("section 'Extra approvals' was added" in p for p in _failed(report).problems)


def test_consistent_forgery_is_caught_by_the_signature(tmp_path: Path, report: Path) -> None:
    """Re-rendering a changed session gives a self-consistent file: only the signature can tell."""
    forged = realistic_session()
    forged[59] = forged[59].model_copy(update={"reason": "approved by the CTO"})
    write_report(forged, tmp_path / "forged.md", sign_key=None, no_sign=True, operator="alice")
    report.write_text((tmp_path / "forged.md").read_text().replace(
        (tmp_path / "forged.md").read_text().split("\n")[4], report.read_text().split("\n")[4]))
    result = verify_report(report)
    assert not result.ok
    assert result.problems == ["operator signature r.md.sig (alice): the signature does not match the file's bytes"]


@pytest.mark.parametrize("change, words", [
    (lambda data: data.replace(b"\n", b"\r\n"), "its line endings were changed to CRLF"),
    (lambda data: data[:-1], "its final newline was dropped"),
    (lambda data: data.replace(b"\n", b"\r\n")[:-2], "line endings were changed to CRLF and its final newline was dropped"),
])
def test_line_ending_only_changes_are_named(report: Path, change, words: str) -> None:
    report.write_bytes(change(report.read_bytes()))
    result = verify_report(report)
    assert not result.ok
    assert words in result.line_endings_note and "content is authentic" in result.line_endings_note
    assert result.integrity_ok


def test_crlf_signature_file_is_read(tmp_path: Path, report: Path, keys: dict[str, Key]) -> None:
    sig = Path(f"{report}.sig")
    sig.write_bytes(sig.read_bytes().replace(b"\n", b"\r\n"))
    assert verify_report(report, allowed_signers=write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"])])).ok


def test_other_namespace_is_rejected(report: Path, keys: dict[str, Key]) -> None:
    import subprocess

    sig = Path(f"{report}.sig")
    sig.unlink()
    subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(keys["ed25519"].path), str(report)],
                   check=True, capture_output=True)
    result = verify_report(report)
    assert not result.ok
    assert any("namespace 'git', not 'rollback-tui'" in p for p in result.problems)


def test_sha1_rsa_signature_is_rejected(report: Path, keys: dict[str, Key]) -> None:
    import asyncssh

    key = asyncssh.read_private_key(str(keys["rsa"].path))
    data = report.read_bytes()
    signature = key.sign(sshsig.signed_data(data), b"ssh-rsa")
    public = asyncssh.read_public_key(str(keys["rsa"].pub))
    assert public.verify(sshsig.signed_data(data), signature)  # asyncssh alone would accept it
    Path(f"{report}.sig").write_text(sshsig.armor(sshsig.encode(bytes(key.public_data), signature)))
    result = verify_report(report)
    assert not result.ok
    assert any("ssh-rsa (SHA-1) is rejected" in p for p in result.problems)


def test_signature_by_another_key_than_the_report_names(report: Path, keys: dict[str, Key]) -> None:
    from report_sshtools import ssh_keygen_sign

    ssh_keygen_sign(report, keys["other"].path)
    result = verify_report(report)
    assert not result.ok
    assert any("the report names key SHA256:" in p for p in result.problems)


def test_allowed_signers_checks_the_identity(tmp_path: Path, report: Path, keys: dict[str, Key]) -> None:
    allowed = write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"]), ("mallory", keys["other"])])
    assert verify_report(report, allowed_signers=allowed).ok  # identity from the signature line: alice
    result = verify_report(report, allowed_signers=allowed, identity="mallory")
    assert not result.ok  # --identity asserts who the operator is; it never replaces the operator
    assert any("--identity 'mallory' was given, but the report's operator (who signed it) is 'alice'" in p
               for p in result.problems)
    only_mallory = write_allowed(tmp_path / "only_mallory", [("mallory", keys["ed25519"])])
    result = verify_report(report, allowed_signers=only_mallory)
    assert not result.ok and any("is not trusted to sign as 'alice'" in p and "listed only for 'mallory'" in p
                                 for p in result.problems)
    only_git = tmp_path / "only_git"
    only_git.write_text(keys["ed25519"].allowed_line("alice", 'namespaces="git"') + "\n")
    assert not verify_report(report, allowed_signers=only_git).ok


def test_missing_signature_file(report: Path) -> None:
    Path(f"{report}.sig").unlink()
    result = verify_report(report)
    assert not result.ok and result.signature_ok is False
    assert any("r.md.sig is missing" in p for p in result.problems)
