"""Refusals before any cockpit opens: a plan that is not there, a journal a live session holds, a session that has
ended for good (its outcome is printed with its exit code, no live cockpit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "rollback_tui"]

PLAN = """\
version: 1
metadata: {name: launch-refusals}
rollback: {scope: [flags]}
approvals: {allow_same_person: true}
steps:
  - id: flags
    actions: [{id: off, kind: shell, argv: ["%s", "-c", "%s"], timeout: 2m}]
"""


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    # no TTY on purpose: a cockpit opened by mistake would hang here (or paint escape sequences)
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def write_plan(tmp_path: Path, code: str) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN % (sys.executable, code))
    return plan


def test_run_of_a_missing_plan_fails_before_the_first_frame(tmp_path: Path) -> None:
    done = cli("run", "nope.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert b"nope.yaml: no such file" in done.stderr and b"\x1b" not in done.stdout + done.stderr
    (tmp_path / "dir.yaml").mkdir()
    done = cli("run", "dir.yaml", cwd=tmp_path)
    assert done.returncode == 2 and b"not a regular file" in done.stderr


def test_resume_of_a_final_journal_prints_its_outcome_without_a_cockpit(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "print('flag off')")
    first = cli("run", str(plan), "--headless", "--answers", "auto", "--no-sign", "--journal", "j.jsonl", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = (tmp_path / "j.jsonl").read_bytes()
    (tmp_path / "j.md").unlink()  # the report is written again from the journal if it went missing
    again = cli("resume", "j.jsonl", "--no-sign", cwd=tmp_path)
    out = again.stdout.decode()
    assert again.returncode == 0, out + again.stderr.decode()
    assert "the session already finished (completed)" in out and "that outcome is final" in out
    assert f"report: {tmp_path / 'j.md'}" in out and (tmp_path / "j.md").is_file()
    assert b"\x1b" not in again.stdout and (tmp_path / "j.jsonl").read_bytes() == before


def test_a_journal_held_by_a_live_session_is_refused_before_the_cockpit(tmp_path: Path) -> None:
    started = tmp_path / "started"
    plan = write_plan(tmp_path, f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(60)")
    live = subprocess.Popen([*CLI, "run", str(plan), "--headless", "--answers", "auto", "--no-sign",
                             "--journal", "j.jsonl"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline and live.poll() is None, "the live session did not start its action"
            time.sleep(0.05)
        before = (tmp_path / "j.jsonl").read_bytes()
        for args in (["resume", "j.jsonl"], ["resume", "j.jsonl", "--headless", "--answers", "auto"]):
            refused = cli(*args, "--no-sign", cwd=tmp_path)
            err = refused.stderr.decode()
            assert refused.returncode == 2, err
            assert f"is in use by a live session: pid {live.pid} on host" in err, err
            assert "follow" in err and b"\x1b" not in refused.stdout
        assert (tmp_path / "j.jsonl").read_bytes() == before
    finally:
        os.killpg(live.pid, 9)
        live.wait(timeout=30)
