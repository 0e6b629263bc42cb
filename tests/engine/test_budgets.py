"""Every loop has a budget: no-go + retry, reassess and action retries end blocked after exactly the step's budget."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.engine.decisions import Decision
from rollback_tui.record.events import DecisionRequested
from rollback_tui.engine.session import Session
from rollback_tui.errors import PlanError
from rollback_tui.plan.loader import parse_plan

from .conftest import Scripted, approving, check_journal, echo, of_type, plan_data, run_plan
from .test_headless import CLI, HERE, write

APPROVALS = {"devops-lead": "Dana Ops", "tech-lead": "Terry Tech"}


def counting(path: Path, *, exit_code: int = 0) -> dict[str, Any]:
    """A real action that appends one line to `path` each time it really runs."""
    return {"kind": "shell", "argv": ["sh", "-c", f"echo run >> '{path}'; exit {exit_code}"]}


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def headless(plan: Path, answers: Path, cwd: Path, journal: str = "j.jsonl") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", str(plan), "--headless", "--answers", str(answers), "--no-sign",
                           "--journal", journal], cwd=cwd, capture_output=True, text=True, timeout=120)


def started(events: list[Any], step: str, action: str = "") -> int:
    if action:
        return sum(1 for e in of_type(events, "action_started") if e.step == step and e.action == action)
    return sum(1 for e in of_type(events, "step_started") if e.step == step)


def test_no_go_retry_for_ever_stops_after_exactly_the_default_budget(tmp_path: Path) -> None:
    counter = tmp_path / "assess.runs"
    steps = [{"id": "assess", "actions": [{"id": "look", **counting(counter)}]},
             {"id": "flags", "actions": [{"id": "off", **echo("flag off")}]}]
    plan = write(tmp_path / "plan.yaml", plan_data(steps, rollback={"scope": ["flags"]}))
    answers = write(tmp_path / "answers.yaml", {"approvals": APPROVALS, "default_step": "retry"})
    begun = time.monotonic()
    done = headless(plan, answers, tmp_path)
    elapsed = time.monotonic() - begun
    assert done.returncode == 3, done.stdout + done.stderr
    assert runs(counter) == 5  # real runs, counted by the action itself
    events = check_journal(tmp_path / "j.jsonl")
    assert started(events, "assess") == 5 and started(events, "flags") == 0
    finished = of_type(events, "session_finished")[0]
    assert finished.exit_state == "blocked"
    assert finished.message.startswith("step assess: 5 of 5 attempts used (budget.attempts, the plan's default); "
                                       "a retry after the no-go would go past the budget"), finished.message
    assert "raise the budget" in finished.message and "resume" in finished.message
    assert "5 of 5 attempts used" in done.stdout
    assert elapsed < 30, elapsed


def test_a_step_budget_replaces_the_plan_default(tmp_path: Path) -> None:
    counter = tmp_path / "flags.runs"
    steps = [{"id": "assess", "actions": [{"id": "look", **echo("assessing")}]},
             {"id": "flags", "budget": {"attempts": 2}, "actions": [{"id": "off", **counting(counter)}]}]
    plan = write(tmp_path / "plan.yaml", plan_data(steps, rollback={"scope": ["flags"]}, budget={"attempts": 7}))
    answers = write(tmp_path / "answers.yaml", {"approvals": APPROVALS, "steps": {"flags": "retry"}})
    done = headless(plan, answers, tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert runs(counter) == 2
    message = of_type(check_journal(tmp_path / "j.jsonl"), "session_finished")[0].message
    assert message.startswith("step flags: 2 of 2 attempts used (steps[1].budget.attempts)"), message


def test_reassess_for_ever_stops_after_the_budget(tmp_path: Path) -> None:
    assess, flags = tmp_path / "assess.runs", tmp_path / "flags.runs"
    steps = [{"id": "assess", "actions": [{"id": "look", **counting(assess)}]},
             {"id": "flags", "actions": [{"id": "off", **counting(flags)}]}]
    plan = write(tmp_path / "plan.yaml", plan_data(steps, rollback={"scope": ["flags"]}, budget={"attempts": 4}))
    answers = write(tmp_path / "answers.yaml", {"approvals": APPROVALS,
                                                "steps": {"flags": {"choice": "reassess", "reason": "still on"}}})
    done = headless(plan, answers, tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert (runs(assess), runs(flags)) == (4, 4)
    events = check_journal(tmp_path / "j.jsonl")
    assert [d.choice for d in of_type(events, "decision_made") if d.kind == "no_go"] == ["reassess"] * 4
    message = of_type(events, "session_finished")[0].message
    assert message.startswith("step flags: 4 of 4 attempts used (budget.attempts, the plan's default); a reassess "
                              "from step flags"), message


def test_action_retries_count_automatic_ones_and_stop_after_the_budget(tmp_path: Path) -> None:
    counter = tmp_path / "off.runs"
    off = {"id": "off", **counting(counter, exit_code=1), "retry": {"attempts": 3, "delay": 0}}
    steps = [{"id": "flags", "actions": [off]}]
    plan = write(tmp_path / "plan.yaml", plan_data(steps, rollback={"scope": ["flags"]}))
    answers = write(tmp_path / "answers.yaml", {"approvals": APPROVALS, "on_failed_action": "retry"})
    done = headless(plan, answers, tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert runs(counter) == 5  # 3 automatic, then one question: 2 more automatic, the budget ends them
    events = check_journal(tmp_path / "j.jsonl")
    asked = [r for r in of_type(events, "decision_requested") if r.kind == "action_failed"]
    assert len(asked) == 2 and "a retry now ends the session blocked" in asked[1].question
    message = of_type(events, "session_finished")[0].message
    assert message.startswith("step flags, action off: 5 of 5 attempts used"), message
    assert "a retry of the action would go past the budget" in message


@pytest.mark.parametrize("attempts", [0, 101, 10**6, 2.5])
def test_the_budget_is_bounded(tmp_path: Path, attempts: Any) -> None:
    text = json.dumps(plan_data([{"id": "flags", "budget": {"attempts": attempts}, "actions": []}],
                                rollback={"scope": ["flags"]}))
    with pytest.raises(PlanError) as caught:
        parse_plan(text, path=tmp_path / "p.yaml", label="p.yaml")
    assert any("steps[0].budget.attempts" in problem for problem in caught.value.problems), caught.value.problems


def test_the_count_survives_sigkill_and_resume(tmp_path: Path) -> None:
    """Killed in the middle of the loop, the resumed session goes on counting from the journal."""
    work = tmp_path / "work"
    work.mkdir()
    counter = tmp_path / "assess.runs"
    steps = [{"id": "assess", "actions": [{"id": "look", **counting(counter)}]},
             {"id": "flags", "actions": [{"id": "off", **echo("flag off")}]}]
    plan = write(tmp_path / "plan.yaml", plan_data(steps, rollback={"scope": ["flags"]}))
    answers = write(tmp_path / "answers.yaml", {"approvals": APPROVALS, "default_step": "retry",
                                                "on_interrupted": "rerun"})
    reference = headless(plan, answers, tmp_path, "ref.jsonl")
    assert reference.returncode == 3, reference.stdout
    counter.unlink()
    # killed while the third go/no-go of the loop waits for its answer
    kill_at = [e.seq for e in of_type(check_journal(tmp_path / "ref.jsonl"), "decision_requested")
               if e.kind == "gate"][2]
    common = ["--headless", "--answers", str(answers), "--no-sign"]
    jobs = [{"dir": str(work), "kill_at": kill_at, "run": ["run", str(plan), *common, "--journal", "j.jsonl"],
             "resume": ["resume", "j.jsonl", *common]}]
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    driver = subprocess.run([sys.executable, str(HERE / "forkrun.py"), str(spec)], capture_output=True, text=True,
                            timeout=120)
    assert driver.returncode == 0, driver.stderr
    result = json.loads(driver.stdout)[0]
    assert result["killed"] == -signal.SIGKILL and result["resumed"] == 3, (work / "resume.out").read_text()
    events = check_journal(work / "j.jsonl")
    assert of_type(events, "session_resumed") and started([e for e in events if e.seq <= kill_at], "assess") == 3
    assert started(events, "assess") == 5 and started(events, "assess", "look") == 5
    assert runs(counter) == 5  # 5 real runs in all, not 3 before the kill and 5 more after the resume
    assert "5 of 5 attempts used" in of_type(events, "session_finished")[0].message


async def test_a_reopen_gives_a_fresh_budget(write_plan: Any, tmp_path: Path) -> None:
    counter = tmp_path / "flags.runs"
    steps = [{"id": "assess", "actions": [{"id": "look", **echo("assessing")}]},
             {"id": "flags", "actions": [{"id": "off", **counting(counter)}]}]
    plan = write_plan(steps, rollback={"scope": ["flags"]}, budget={"attempts": 3})
    fixed = {"yes": False}

    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "gate" and request.step == "flags":
            return Decision("go") if fixed["yes"] else Decision("no_go", "flag still on")
        if request.kind == "no_go":
            return Decision("retry")
        return approving()(request)

    result, events = await run_plan(plan, Scripted(answer), tmp_path)
    assert result.exit_state == "blocked" and runs(counter) == 3
    assert "step flags: 3 of 3 attempts used" in result.message
    fixed["yes"] = True  # the operator fixed the cause; the reopen asks the no-go follow-up again
    session = Session.resume(tmp_path / "session.journal.jsonl", decisions=Scripted(answer), operator="olivia",
                             no_sign=True)
    again = await session.run()
    assert again.exit_state == "completed", again.message
    assert runs(counter) == 4
    events = check_journal(tmp_path / "session.journal.jsonl")
    reasked = [r for r in of_type(events, "decision_requested") if r.kind == "no_go" and r.reopened]
    assert len(reasked) == 1


async def test_a_rerun_after_an_interruption_counts(write_plan: Any, tmp_path: Path) -> None:
    import asyncio

    from rollback_tui.engine.decisions import AutoDecisions
    from rollback_tui.plan.loader import load_plan

    counter = tmp_path / "slow.runs"
    slow = {"id": "slow", "kind": "shell", "argv": ["sh", "-c", f"echo run | tee -a '{counter}'; sleep 30"]}
    steps = [{"id": "flags", "budget": {"attempts": 1}, "actions": [slow]}]
    journal = tmp_path / "j.jsonl"
    session = Session.start(load_plan(write_plan(steps, rollback={"scope": ["flags"]})),
                            decisions=AutoDecisions("olivia"), operator="olivia", journal_path=journal, no_sign=True,
                            listeners=[lambda e: e.type == "action_output" and e.action == "slow"
                                       and asyncio.get_running_loop().call_soon(session.interrupt, "SIGINT")])
    assert (await asyncio.wait_for(session.run(), timeout=30)).interrupted == "SIGINT"
    again = Session.resume(journal, decisions=AutoDecisions("olivia"), operator="olivia", no_sign=True)
    result = await asyncio.wait_for(again.run(), timeout=30)  # auto answers rerun: one run too many
    assert result.exit_state == "blocked", result.message
    assert result.message.startswith("step flags, action slow: 1 of 1 attempts used (steps[0].budget.attempts); "
                                     "a re-run after the interruption would go past the budget")
    assert runs(counter) == 1
    assert started(check_journal(journal), "flags", "slow") == 1
