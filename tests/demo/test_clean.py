"""`demo --clean` removes only marked demo folders under the demo parent, never through a symlink; demo journals
are recognised by their marker; the demo's host command fails in one line when the services are gone."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from rollback_tui.cli import main
from rollback_tui.demo.home import DemoHome, demo_parent, home_of_journal
from rollback_tui.demo.sandbox import Sandbox


def _home(parent: Path, name: str, finished: str | None) -> DemoHome:
    root = parent / name
    (root / "sandbox").mkdir(parents=True)
    (root / "out").mkdir()
    journal = root / "out" / "s.journal.jsonl"
    lines = [{"type": "session_started", "plan_path": str(root / "sandbox" / "demo.yaml"), "seq": 1}]
    if finished:
        lines.append({"schema_version": 1, "seq": 2, "ts": "2026-12-02T10:00:00Z", "actor": "system",
                      "type": "session_finished", "exit_state": finished, "scopes": {}, "message": "done"})
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    home = DemoHome(root=root, sandbox=root / "sandbox", journal=journal, report=root / "out" / "s.md",
                    operator="op", keep=False, allowed_signers=None)
    home.write_marker()
    data = json.loads(home.marker.read_text())
    data["pid"] = 0  # no live process holds it
    home.marker.write_text(json.dumps(data))
    return home


@pytest.fixture
def parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = demo_parent()
    folder.mkdir(parents=True)
    return folder


def test_clean_removes_final_keeps_resumable_and_never_follows_symlinks(
        parent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    final = _home(parent, "demo-final", "completed")
    resumable = _home(parent, "demo-open", None)
    outside = _home(tmp_path / "elsewhere", "demo-victim", "completed")  # marked, but not under the parent
    (parent / "demo-link").symlink_to(outside.root)
    (parent / "not-ours").mkdir()
    (final.root / "sandbox" / "escape").symlink_to(outside.root)  # a symlink inside a removed folder
    assert home_of_journal(resumable.journal) == resumable
    assert main(["demo", "--clean"]) == 0
    out = capsys.readouterr().out
    assert not final.root.exists() and resumable.root.exists() and "kept 1 resumable" in out
    assert outside.journal.is_file() and (parent / "demo-link").is_symlink() and (parent / "not-ours").is_dir()
    assert main(["demo", "--clean", "--all"]) == 0
    assert not resumable.root.exists() and outside.journal.is_file() and (parent / "not-ours").is_dir()


def test_a_symlinked_marker_is_not_trusted(parent: Path, tmp_path: Path) -> None:
    home = _home(parent, "demo-x", "completed")
    real = tmp_path / "marker.json"
    home.marker.rename(real)
    os.symlink(real, home.marker)
    assert home_of_journal(home.journal) is None
    assert main(["demo", "--clean"]) == 0 and home.root.exists()


def test_a_plain_journal_is_not_a_demo_journal(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text(json.dumps({"type": "session_started", "plan_path": str(tmp_path / "plan.yaml")}) + "\n")
    assert home_of_journal(journal) is None


@pytest.mark.parametrize("command", ["status", "situation", "restart", "watch-health"])
def test_host_command_without_services_fails_in_one_line(built: Sandbox, command: str) -> None:
    done = subprocess.run([str(built.layout.bin / "checkout-service"), command, "--seconds", "0.5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    text = (done.stdout + done.stderr).strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert "`rollback-tui demo --resume`" in text


def test_host_command_with_services_gone_says_connection_refused(built: Sandbox) -> None:
    built.layout.ready.write_text(json.dumps({"web_port": 1, "hook_port": 1, "ssh_port": 1}))
    done = subprocess.run([str(built.layout.bin / "checkout-service"), "situation"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("checkout-service: cannot reach 127.0.0.1:1 (connection refused): is the demo "
                                   "running? `rollback-tui demo --resume`")
