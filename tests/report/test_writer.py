"""Writing: mode 0600, key discovery, passphrases, never losing a report, unwritable directories."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from report_sessions import realistic_session
from report_sshtools import PASSPHRASE, Agent, Key, make_unwritable, restore_writable, write_allowed

from rollback_tui.errors import ReportError
from rollback_tui.report.render import split_sections
from rollback_tui.report.verify import verify_report
from rollback_tui.report.writer import write_report


def _write(path: Path, **kwargs) -> object:
    options = {"sign_key": None, "no_sign": False, "operator": "alice"} | kwargs
    return write_report(realistic_session(), path, **options)


def test_report_and_signature_are_mode_0600(tmp_path: Path, keys: dict[str, Key]) -> None:
    outcome = _write(tmp_path / "r.md", sign_key=keys["ed25519"].path, journal_path=tmp_path / "j.jsonl")
    assert outcome.signed and outcome.sig_path == tmp_path / "r.md.sig" and not outcome.error
    assert outcome.signer.startswith("SHA256:") and outcome.signer.endswith("ed25519@test")
    for path in (outcome.path, outcome.sig_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = outcome.path.read_text()
    assert "> **Journal:** `" + str(tmp_path / "j.jsonl") + "`" in text
    assert "by operator `alice`" in text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["r.md", "r.md.sig"]  # no temp files left


def test_no_sign_says_so_at_the_top(tmp_path: Path) -> None:
    outcome = _write(tmp_path / "r.md", no_sign=True)
    assert not outcome.signed and outcome.sig_path is None and outcome.error == ""
    header = dict(split_sections(outcome.path.read_text()))["Header"]
    assert "> **UNSIGNED REPORT:** written with --no-sign" in header
    result = verify_report(outcome.path)
    assert not result.ok and result.integrity_ok and result.signature_ok is None
    assert result.problems == ["the report is unsigned: written with --no-sign: nothing proves who wrote it or that it is unchanged."]


def test_default_key_is_found_in_home(tmp_path: Path, keys: dict[str, Key], isolated_home: Path) -> None:
    shutil.copy(keys["ecdsa"].path, isolated_home / ".ssh" / "id_ecdsa")
    outcome = _write(tmp_path / "r.md")
    assert outcome.signed and "ecdsa@test" in outcome.signer


def test_agent_key_comes_before_key_files(tmp_path: Path, keys: dict[str, Key], agent: Agent, isolated_home: Path) -> None:
    shutil.copy(keys["ecdsa"].path, isolated_home / ".ssh" / "id_ed25519")
    agent.add(keys["rsa"])
    assert "rsa@test" in _write(tmp_path / "r.md").signer


def test_no_key_anywhere_still_writes_the_report(tmp_path: Path) -> None:
    outcome = _write(tmp_path / "r.md")
    assert not outcome.signed and outcome.sig_path is None
    assert "no signing key found" in outcome.error and "--no-sign" in outcome.error
    header = dict(split_sections(outcome.path.read_text()))["Header"]
    assert "> **UNSIGNED REPORT:** signing failed (no signing key found" in header
    assert verify_report(outcome.path).integrity_ok


def test_protected_key_without_a_prompt(tmp_path: Path, keys: dict[str, Key]) -> None:
    outcome = _write(tmp_path / "r.md", sign_key=keys["protected"].path)
    assert not outcome.signed
    assert outcome.error.startswith(f"key {keys['protected'].path} is protected by a passphrase: ")
    assert outcome.path.exists()


def test_protected_key_with_a_prompt(tmp_path: Path, keys: dict[str, Key]) -> None:
    answers = iter(["wrong", PASSPHRASE])
    asked: list[str] = []

    def prompt() -> str:
        asked.append("?")
        return next(answers)

    outcome = _write(tmp_path / "r.md", sign_key=keys["protected"].path, passphrase=prompt)
    assert outcome.signed, outcome.error
    assert len(asked) == 2
    assert verify_report(outcome.path, allowed_signers=write_allowed(tmp_path / "allowed", [("alice", keys["protected"])])).ok


def test_wrong_passphrase_three_times(tmp_path: Path, keys: dict[str, Key]) -> None:
    outcome = _write(tmp_path / "r.md", sign_key=keys["protected"].path, passphrase=lambda: "nope")
    assert not outcome.signed and "incorrect passphrase (3 attempts)" in outcome.error


def test_missing_key_file(tmp_path: Path) -> None:
    outcome = _write(tmp_path / "r.md", sign_key=tmp_path / "nope")
    assert not outcome.signed and "does not exist" in outcome.error


def test_rewriting_unsigned_removes_stale_signatures(tmp_path: Path, keys: dict[str, Key]) -> None:
    _write(tmp_path / "r.md", sign_key=keys["ed25519"].path)
    (tmp_path / "r.md.cosigners").write_text('{"version": 1, "cosigners": [{"signature": "r.md.bob.sig"}]}')
    (tmp_path / "r.md.bob.sig").write_text("stale")
    _write(tmp_path / "r.md", no_sign=True)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["r.md"]


def test_missing_directory_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError) as caught:
        _write(tmp_path / "nope" / "r.md", journal_path=tmp_path / "j.jsonl")
    message = str(caught.value)
    assert f"cannot write the report in {tmp_path / 'nope'}: no such directory" in message
    assert "--report PATH" in message and str(tmp_path / "j.jsonl") in message


def test_unwritable_directory_is_a_report_error(tmp_path: Path, keys: dict[str, Key]) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    if not make_unwritable(directory):
        pytest.skip("cannot make a directory unwritable here (needs chattr as root, or a non-root user)")
    try:
        with pytest.raises(ReportError) as caught:
            _write(directory / "r.md", sign_key=keys["ed25519"].path)
        assert f"cannot write the report in {directory}: " in str(caught.value)
        assert "make" in caught.value.hint and "writable" in caught.value.hint
        assert list(directory.iterdir()) == []
    finally:
        restore_writable(directory)


async def test_async_writer_with_a_prompt_from_the_loop(tmp_path: Path, keys: dict[str, Key]) -> None:
    """The cockpit's path: the writer runs in a thread; the prompt hops back to the loop to ask."""
    import asyncio

    from rollback_tui.report.writer import write_report_async

    loop = asyncio.get_running_loop()

    async def ask() -> str:
        return PASSPHRASE

    outcome = await write_report_async(
        realistic_session(), tmp_path / "r.md", sign_key=keys["protected"].path, no_sign=False, operator="alice",
        passphrase=lambda: asyncio.run_coroutine_threadsafe(ask(), loop).result(timeout=30))
    assert outcome.signed, outcome.error


def test_empty_session_is_written_and_fails_verification(tmp_path: Path) -> None:
    outcome = write_report([], tmp_path / "r.md", sign_key=None, no_sign=True, operator="alice")
    result = verify_report(outcome.path)
    assert not result.ok and "the event log is empty: there is no session to verify" in result.problems
