"""Loading for replay (report or journal) and the verify/cosign commands with their exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_sessions import realistic_session
from report_sshtools import Key, write_allowed

from rollback_tui.cli import main
from rollback_tui.record.events import dump_event
from rollback_tui.report.load import load_events
from rollback_tui.report.writer import write_report


@pytest.fixture
def report(tmp_path: Path, keys: dict[str, Key]) -> Path:
    return write_report(realistic_session(), tmp_path / "r.md", sign_key=keys["ed25519"].path, no_sign=False,
                        operator="alice").path


def test_load_report(tmp_path: Path, report: Path, keys: dict[str, Key]) -> None:
    loaded = load_events(report, allowed_signers=write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"])]))
    assert loaded.source == "report" and loaded.verify is not None and loaded.verify.ok
    untrusted = load_events(report)
    assert untrusted.verify is not None and not untrusted.verify.ok and untrusted.verify.unverified
    assert loaded.events == realistic_session() and loaded.dropped == []


def test_load_tampered_report_still_gives_events(report: Path) -> None:
    report.write_bytes(report.read_bytes().replace(b'"reason":"digest differs', b'"reason":"digest differed'))
    loaded = load_events(report)
    assert loaded.verify is not None and not loaded.verify.ok
    assert len(loaded.events) == len(realistic_session())


def test_load_journal_with_a_torn_last_line(tmp_path: Path) -> None:
    events = realistic_session()
    journal = tmp_path / "session.jsonl"
    journal.write_text("".join(dump_event(e) + "\n" for e in events[:-1]) + dump_event(events[-1])[:40])
    loaded = load_events(journal)
    assert loaded.source == "journal" and loaded.verify is None
    assert loaded.events == events[:-1]
    assert len(loaded.dropped) == 1 and "torn last line" in loaded.dropped[0]


def test_cli_verify_exit_codes(tmp_path: Path, report: Path, keys: dict[str, Key], capsys: pytest.CaptureFixture[str]) -> None:
    allowed = write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"])])
    assert main(["verify", str(report), "--allowed-signers", str(allowed), "--identity", "alice"]) == 0
    out = capsys.readouterr().out
    assert "signer: [ok  ] alice (operator) key SHA256:" in out and out.rstrip().endswith("result: OK")
    report.write_bytes(report.read_bytes().replace(b"- [ ] Root cause identified", b"- [x] Root cause identified"))
    assert main(["verify", str(report)]) == 6
    out = capsys.readouterr().out
    assert "section 'Root cause analysis' does not match" in out and "result: FAILED" in out
    (tmp_path / "notes.md").write_text("# Notes\n\nnothing here\n")
    assert main(["verify", str(tmp_path / "notes.md")]) == 2
    assert "is not a rollback-tui report" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing.md")]) == 2


def test_cli_cosign(tmp_path: Path, report: Path, keys: dict[str, Key], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cosign", str(report), "--key", str(keys["ecdsa"].path), "--identity", "bob"]) == 0
    assert "co-signed" in capsys.readouterr().out
    assert main(["cosign", str(report), "--key", str(keys["ecdsa"].path), "--identity", "zed"]) == 2
    assert main(["verify", str(report)]) == 6  # no allowed-signers source: valid but unverified
    assert "result: UNVERIFIED" in capsys.readouterr().out
    allowed = write_allowed(tmp_path / "allowed", [("alice", keys["ed25519"]), ("bob", keys["ecdsa"])])
    assert main(["verify", str(report), "--allowed-signers", str(allowed)]) == 0
    assert "bob (devops-lead)" in capsys.readouterr().out
