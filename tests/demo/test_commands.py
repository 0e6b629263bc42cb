"""`rollback-tui demo`: the missing-git message, and the headless run end to end with its report verified."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rollback_tui.cli import SessionOptions, main
from rollback_tui.demo.commands import cmd_demo

ROOT = Path(__file__).resolve().parents[2]


def test_missing_git_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no git
    assert cmd_demo(SessionOptions(keep=tmp_path / "kept")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "git is not installed" in err and "install git" in err
    assert not (tmp_path / "kept").exists()


def test_keep_refuses_a_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.txt").write_text("x")
    assert main(["demo", "--headless", "--keep", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def _demo(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(state)}
    return subprocess.run([sys.executable, "-m", "rollback_tui", "demo", "--headless", "--answers", "auto",
                           "--operator", "demo-operator", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


@pytest.mark.slow
def test_headless_demo_end_to_end(tmp_path: Path) -> None:
    done = _demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = Path(re.search(r"^report: (.+)$", done.stdout, re.M).group(1))
    allowed = Path(re.search(r"^allowed_signers: (.+)$", done.stdout, re.M).group(1))
    sandbox = re.search(r"building the sandbox in (.+)$", done.stderr, re.M).group(1)
    assert "rollback-tui verify: OK" in done.stdout
    with open(report, "rb") as message:
        verified = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "demo-operator", "-n",
                                   "rollback-tui", "-s", f"{report}.sig"], stdin=message, capture_output=True)
    assert verified.returncode == 0, verified.stderr
    assert not Path(sandbox).exists()  # the session is final: removed (without --keep)
    assert _processes_mentioning(sandbox) == []
    shutil.rmtree(report.parent)
