"""No subcommand prints a control character that came from its input: `validate`, `plan`, `verify`, `cosign`,
headless `run`, argparse's own complaints and plan errors show escape sequences visibly (`␛]52;…`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_text import HOSTILE_PLAN, OSC52, SHOWN_OSC52, leaks, stray_controls


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, ROLLBACK_TUI_CONFIG_DIR=str(cwd / "config"), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "rollback_tui", *args], cwd=cwd, env=env, capture_output=True,
                          timeout=120)


def assert_clean(done: subprocess.CompletedProcess[bytes]) -> str:
    for name, data in (("stdout", done.stdout), ("stderr", done.stderr)):
        assert b"\x1b" not in data, f"{name} has an ESC byte: {data[:2000]!r}"
        assert stray_controls(data) == [], f"{name}: {data[:2000]!r}"
        assert leaks(data) == []
    return (done.stdout + done.stderr).decode()


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE_PLAN)
    return path


def test_validate(plan: Path, tmp_path: Path) -> None:
    done = cli("validate", str(plan), cwd=tmp_path)
    out = assert_clean(done)
    assert done.returncode == 0, out
    assert "/nonexistent␛[45mPATH does not exist" in out  # shown, not dropped


def test_validate_errors_of_a_broken_plan(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text('version: 1\nmetadata: {name: x}\n"key\\e]52;c;SGVsbG8=\\a\\e[31mKEY": 1\n')
    done = cli("validate", str(broken), cwd=tmp_path)
    out = assert_clean(done)
    assert done.returncode == 2 and "KEY" in out


def test_plan_to_stdout_and_to_a_file(plan: Path, tmp_path: Path) -> None:
    done = cli("plan", str(plan), cwd=tmp_path)
    out = assert_clean(done)
    assert done.returncode == 0 and SHOWN_OSC52 in out and "<U+202E>" in out
    target = tmp_path / f"out{OSC52}.md"
    done = cli("plan", str(plan), "-o", str(target), cwd=tmp_path)
    out = assert_clean(done)
    assert done.returncode == 0 and f"plan: {tmp_path}/out{SHOWN_OSC52}.md" in out
    assert target.exists()


def test_headless_run_then_verify_and_cosign(plan: Path, tmp_path: Path) -> None:
    report = tmp_path / f"report{OSC52}.md"
    done = cli("run", str(plan), "--headless", "--answers", "auto", "--no-sign", "--operator", "op\x1b[8mHIDDEN",
               "--journal", str(tmp_path / "s.journal.jsonl"), "--report", str(report), cwd=tmp_path)
    out = assert_clean(done)
    assert done.returncode == 0, out
    # the host's output: escape sequences visible, its CR shown (it cannot return to overwrite the line)
    assert f"flags/off | out{SHOWN_OSC52} and ␛[44mOUTPUT <U+009B> c1␍ overwrite" in out
    assert "by op␛[8mHIDDEN on" in out
    assert "[31mTITLE" in out  # the plan's name, quoted by repr()
    for marker in ("[42mROLE", "[43mQUESTION", "[44mOUTPUT", "[45mPATH"):
        assert f"␛{marker}" in out
    assert report.exists()

    done = cli("verify", str(report), cwd=tmp_path)
    out = assert_clean(done)
    assert f"report{SHOWN_OSC52}.md" in out
    done = cli("cosign", str(report), "--key", str(tmp_path / f"nokey{OSC52}"), "--identity", f"x{OSC52}",
               cwd=tmp_path)
    out = assert_clean(done)
    assert done.returncode != 0 and "op␛[8mHIDDEN" in out  # the approvers read from the report


def test_missing_report_and_usage_errors(tmp_path: Path) -> None:
    done = cli("verify", str(tmp_path / f"gone{OSC52}.md"), cwd=tmp_path)
    assert_clean(done)
    assert done.returncode == 2
    done = cli(f"bogus{OSC52}", cwd=tmp_path)  # argparse quotes the unknown command back
    out = assert_clean(done)
    assert done.returncode == 2 and "bogus" in out
    done = cli("validate", "p.yaml", "--var", "novalue\x1b[31mVAR", cwd=tmp_path)  # SystemExit's message
    out = assert_clean(done)
    assert "novalue" in out and "[31mVAR" in out


def test_schema_output_has_no_control_character(tmp_path: Path) -> None:
    done = cli("schema", cwd=tmp_path)
    assert done.returncode == 0
    assert_clean(done)
