"""Headless runs as a user runs them: the CLI in a subprocess, exit codes, the journal lock, SIGINT and SIGKILL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import check_journal, echo, of_type, plan_data, simple_steps

HERE = Path(__file__).parent
CLI = [sys.executable, "-m", "rollback_tui"]
ANSWERS = {
    "inputs": "confirm",
    "approvals": {"devops-lead": "Dana Ops", "tech-lead": "Terry Tech"},
    "steps": {"flags": [{"choice": "no_go", "reason": "EU flag still on", "then": "retry"}, "go"]},
    "on_interrupted": "rerun",
}


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def kill_plan(tmp_path: Path) -> Path:
    steps = simple_steps(code_verify=["true"])
    steps[1]["actions"].append({"id": "report", **echo("flags reported")})
    data = plan_data(steps, inputs={"decisions": [{"id": "rollback-approved", "description": "Rollback approved"}]})
    return write(tmp_path / "plan.yaml", data)


def outcome(events: list[Any]) -> tuple[Any, ...]:
    finished = of_type(events, "session_finished")[0]
    done = [(e.step, e.status) for e in of_type(events, "step_finished")]
    return finished.exit_state, finished.scopes, done, [s.name for s in of_type(events, "signal")]


def test_exit_codes_and_the_closing_lines(tmp_path: Path) -> None:
    plan = kill_plan(tmp_path)
    done = cli("run", str(plan), "--headless", "--answers", "auto", "--no-sign", "--journal", "a.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2:] == ["report: a.md", "journal: a.jsonl"]
    assert any(" flags/off | flag off" in line for line in lines)  # output prefixed by step/action
    assert all(line[:8].count(":") == 2 for line in lines if line[:2].isdigit())  # each event with its time

    answers = write(tmp_path / "abort.yaml", {**ANSWERS, "steps": {"code": {"choice": "abort", "reason": "corrupt"}}})
    done = cli("run", str(plan), "--headless", "--answers", str(answers), "--no-sign", "--journal", "b.jsonl",
               cwd=tmp_path)
    assert done.returncode == 5, done.stdout  # flags were rolled back: partial
    answers = write(tmp_path / "abort1.yaml", {**ANSWERS, "steps": {"assess": {"choice": "abort", "reason": "x"}}})
    done = cli("run", str(plan), "--headless", "--answers", str(answers), "--no-sign", "--journal", "c.jsonl",
               cwd=tmp_path)
    assert done.returncode == 4, done.stdout
    failing = write(tmp_path / "failing.yaml", plan_data(simple_steps(code_verify=["false"])))
    done = cli("run", str(failing), "--headless", "--answers", "auto", "--no-sign", "--journal", "d.jsonl",
               cwd=tmp_path)
    assert done.returncode == 3, done.stdout


def test_invalid_answers_and_plans_exit_2_with_positions(tmp_path: Path) -> None:
    plan = kill_plan(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("approvals:\n  devops-lead: Dana\nsteps:\n  code: {choice: override}\n")
    done = cli("run", str(plan), "--headless", "--answers", str(bad), "--no-sign", cwd=tmp_path)
    assert done.returncode == 2
    assert f"{bad}:4:9: 'override' needs a reason" in done.stderr
    assert not list(tmp_path.glob("*.jsonl"))  # nothing started
    done = cli("run", str(tmp_path / "missing.yaml"), "--headless", "--answers", "auto", cwd=tmp_path)
    assert done.returncode == 2 and "no such file" in done.stderr


def _wait_for(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_second_resume_is_refused_and_sigint_leaves_it_resumable(tmp_path: Path) -> None:
    steps = simple_steps()
    steps[2]["actions"] = [{"id": "slow", "kind": "shell", "argv": ["sleep", "60"]}]
    plan = write(tmp_path / "plan.yaml", plan_data(steps))
    journal = tmp_path / "live.jsonl"
    proc = subprocess.Popen([*CLI, "run", str(plan), "--headless", "--answers", "auto", "--no-sign",
                             "--journal", str(journal)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(journal, '"action":"slow"')
        second = cli("resume", str(journal), "--headless", "--answers", "auto", "--no-sign", cwd=tmp_path)
        assert second.returncode == 2
        assert f"in use by a live session: pid {proc.pid} on host {socket.gethostname()}" in second.stderr
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "resumable" in out and f"journal: {journal}" in out
    events = check_journal(journal)
    assert events[-1].type == "session_interrupted" and events[-1].reason == "SIGINT"
    assert [e.status for e in of_type(events, "action_finished")][-1] == "interrupted"
    answers = write(tmp_path / "a.yaml", {**ANSWERS, "steps": {},
                                          "on_interrupted": {"code/slow": {"choice": "mark_done", "reason": "ok"}}})
    done = cli("resume", str(journal), "--headless", "--answers", str(answers), "--no-sign", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert of_type(check_journal(journal), "session_finished")[0].scopes["code"] == "manual"


@pytest.mark.slow
def test_sigkill_at_20_points_then_resume_gives_the_same_outcome(tmp_path: Path) -> None:
    plan = kill_plan(tmp_path)
    answers = write(tmp_path / "answers.yaml", ANSWERS)
    reference = cli("run", str(plan), "--headless", "--answers", str(answers), "--no-sign", "--journal", "ref.jsonl",
                    cwd=tmp_path)
    assert reference.returncode == 0, reference.stdout + reference.stderr
    expected = outcome(check_journal(tmp_path / "ref.jsonl"))
    total = len(check_journal(tmp_path / "ref.jsonl"))
    points = sorted({1 + (total - 2) * index // 19 for index in range(20)})
    assert len(points) == 20

    jobs = []
    for point in points:
        work = tmp_path / f"kill-{point}"
        work.mkdir()
        common = ["--headless", "--answers", str(answers), "--no-sign"]
        jobs.append({"dir": str(work), "kill_at": point, "run": ["run", str(plan), *common, "--journal", "j.jsonl"],
                     "resume": ["resume", "j.jsonl", *common]})
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    driver = subprocess.run([sys.executable, str(HERE / "forkrun.py"), str(spec)], capture_output=True, text=True,
                            timeout=300)
    assert driver.returncode == 0, driver.stderr
    results = []
    for point, job in zip(points, json.loads(driver.stdout)):
        work = Path(job["dir"])
        assert job["killed"] == -signal.SIGKILL, (work / "run.out").read_text()
        results.append((job["resumed"], check_journal(work / "j.jsonl"), (work / "resume.out").read_text()))
        assert sum(1 for e in results[-1][1] if e.seq <= point) == point
    for point, (code, events, output) in zip(points, results):
        assert code == 0, f"kill at {point}: {output}"
        assert outcome(events) == expected, f"kill at {point}"
        # a kill inside the final batch (signals + finish) leaves a finished journal: resume says so, runs nothing
        finished_before = "already finished" in output
        assert len(of_type(events, "session_resumed")) == (0 if finished_before else 1), output
    assert sum("already finished" in output for _, _, output in results) <= 1
