"""Reopening a blocked session (seed §11: blocked waits for the issue's resolution): `resume` continues it from the
decision or check that blocked it; everything before stays done; completed, aborted and partial stay final."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_tui.engine.decisions import AutoDecisions, Decision
from rollback_tui.record.events import DecisionRequested, Event
from rollback_tui.engine.session import Session, SessionResult
from rollback_tui.plan.loader import load_plan
from rollback_tui.report.facts import collect
from rollback_tui.ui.viewmodel import SessionView

from .conftest import PY, Scripted, approving, check_journal, of_type, plan_data, run_plan, sh, simple_steps

CLI = [sys.executable, "-m", "rollback_tui"]
APPROVERS = {"devops-lead": "Dana Ops", "tech-lead": "Terry Tech"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


async def resume(journal: Path, decisions: Any, **kwargs: Any) -> SessionResult:
    session = Session.resume(journal, decisions=decisions, operator="olivia", no_sign=True, **kwargs)
    return await session.run()


def started(events: list[Event]) -> Counter[tuple[str, str]]:
    return Counter((e.step, e.action) for e in of_type(events, "action_started"))


def exists_check(path: Path) -> list[str]:
    return [PY, "-c", f"import os, sys; sys.exit(0 if os.path.exists({str(path)!r}) else 1)"]


def assert_reopened_once_at(events: list[Event], halting: Any) -> Any:
    """One reopen, continuing right after the halting event; request ids unique and in order."""
    [reopen] = of_type(events, "session_reopened")
    assert reopen.previous_exit_state == "blocked" and reopen.continue_after_seq == halting.seq
    ids = [e.request_id for e in of_type(events, "decision_requested")]
    assert ids == list(range(1, len(ids) + 1))
    return reopen


def test_headless_blocked_at_a_failed_verification_reopens_and_completes(tmp_path: Path) -> None:
    marker = tmp_path / "service-restarted"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(plan_data(simple_steps(code_verify=exists_check(marker)))))
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({
        "inputs": "confirm", "approvals": APPROVERS,
        "steps": {"code": {"choice": "no_go", "reason": "service not restarted", "then": "halt"}}}))
    if shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH ssh-keygen not installed")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "olivia", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'olivia namespaces="rollback-tui" {key.with_suffix(".pub").read_text()}')
    common = ["--headless", "--operator", "olivia", "--sign-key", str(key)]

    blocked = cli("run", str(plan), *common, "--answers", str(answers), "--journal", "j.jsonl", cwd=tmp_path)
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    before = check_journal(tmp_path / "j.jsonl")
    assert before[-1].type == "session_finished" and before[-1].exit_state == "blocked"
    halt = of_type(before, "decision_made")[-1]
    assert (halt.kind, halt.step, halt.choice) == ("no_go", "code", "halt")

    marker.write_text("restarted by hand\n")  # the issue is resolved
    done = cli("resume", "j.jsonl", *common, "--answers", "auto", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "session reopened by" in done.stdout and "[asked again: the session was reopened]" in done.stdout
    assert done.stdout.splitlines()[-2:] == [f"report: {(tmp_path / 'j.md').resolve()}", "journal: j.jsonl"]

    events = check_journal(tmp_path / "j.jsonl")
    assert events[:len(before)] == before  # the blocked history is kept as it was
    assert_reopened_once_at(events, halt)
    assert [e.exit_state for e in of_type(events, "session_finished")] == ["blocked", "completed"]
    # the halting answer was not reused: the no-go follow-up was asked again (a new request) and answered retry
    again = [e for e in of_type(events, "decision_requested") if e.seq > len(before)]
    assert (again[0].kind, again[0].step, again[0].reopened) == ("no_go", "code", True)
    assert "reopened" in again[0].evidence.detail
    made = [e for e in of_type(events, "decision_made") if e.seq > len(before)]
    assert (made[0].request_id, made[0].choice) == (again[0].request_id, "retry")
    # nothing done before was done again: only the retried step's action ran a second time
    assert started(before) == {("assess", "look"): 1, ("flags", "off"): 1, ("code", "checkout"): 1}
    assert started(events) == {("assess", "look"): 1, ("flags", "off"): 1, ("code", "checkout"): 2,
                               ("validate", "smoke"): 1}
    assert len(of_type(events, "input_checked")) == len(of_type(before, "input_checked"))

    verified = cli("verify", "j.md", "--allowed-signers", str(allowed), "--identity", "olivia", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = (tmp_path / "j.md").read_text()
    assert "finished: blocked" in report and "reopened by" in report

    again = cli("resume", "j.jsonl", *common, "--answers", "auto", cwd=tmp_path)  # completed is final
    assert again.returncode == 0 and "already finished (completed)" in again.stdout
    assert check_journal(tmp_path / "j.jsonl") == events


@pytest.mark.parametrize("remediation", ["halt", "use_backup"])
async def test_a_required_input_that_halted_is_checked_again(write_plan: Any, tmp_path: Path,
                                                             remediation: str) -> None:
    snapshot = tmp_path / "deployment-snapshot.json"
    inputs = {"artifacts": [{"id": "runbook"},  # no automatic check: the operator confirms it (before the halt)
                            {"id": "snapshot", "check": {"path": str(snapshot)}, "remediation": remediation}]}
    journal = tmp_path / "j.jsonl"
    # a missing input halts: with remediation halt there is no question; with use_backup auto answers halt
    result, before = await run_plan(write_plan(inputs=inputs), AutoDecisions("olivia"), tmp_path, journal_path=journal)
    assert result.exit_state == "blocked" and "snapshot" in result.message
    assert not of_type(before, "action_started") and not of_type(before, "plan_reviewed")
    confirmed = [e for e in of_type(before, "input_checked") if e.input_id == "runbook" and e.ok]
    halted = [e for e in of_type(before, "decision_made") if e.subject == "snapshot"]
    assert len(halted) == (0 if remediation == "halt" else 1)

    # reopened while still missing: checked again, blocked again; the confirmed input is not asked again
    result = await resume(journal, AutoDecisions("olivia"))
    assert result.exit_state == "blocked"
    middle = check_journal(journal)
    recheck = [e for e in of_type(middle, "input_checked") if e.input_id == "snapshot"]
    assert [e.ok for e in recheck] == [False, False]
    halted_again = [e for e in of_type(middle, "decision_made") if e.subject == "snapshot"]

    snapshot.write_text("{}")
    result = await resume(journal, AutoDecisions("olivia"))
    assert result.exit_state == "completed", result.message
    events = check_journal(journal)
    assert [e.ok for e in of_type(events, "input_checked") if e.input_id == "snapshot"] == [False, False, True]
    assert len([e for e in of_type(events, "decision_made") if e.subject == "runbook"]) == 1
    assert len([e for e in of_type(events, "decision_made") if e.subject == "snapshot"]) == len(halted) * 2
    cuts = [r.continue_after_seq for r in of_type(events, "session_reopened")]
    assert cuts == ([confirmed[0].seq, recheck[-1].seq] if remediation == "halt"
                    else [halted[0].seq, halted_again[-1].seq])  # each at the check or answer that halted
    assert [e.exit_state for e in of_type(events, "session_finished")] == ["blocked", "blocked", "completed"]
    assert sum(started(events).values()) == 4


async def test_rejected_plan_review_and_approval_are_asked_again(write_plan: Any, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    reject = {("plan_review", ""): Decision("reject", "rollback target unclear")}
    result, before = await run_plan(write_plan(), Scripted(approving(reject)), tmp_path, journal_path=journal)
    assert result.exit_state == "blocked" and not of_type(before, "action_started")

    reject = {("approval", "devops-lead"): Decision("reject", "not in the change window", by="Dana")}
    result = await resume(journal, Scripted(approving(reject)))
    assert result.exit_state == "blocked"

    asked = Scripted(approving())
    result = await resume(journal, asked)
    assert result.exit_state == "completed"
    assert [r.kind for r in asked.seen[:1]] == ["approval"] and asked.seen[0].reopened
    events = check_journal(journal)
    assert [e.approved for e in of_type(events, "plan_reviewed")] == [False, True]
    assert [(e.kind, e.choice) for e in of_type(events, "decision_made")][:4] == [
        ("plan_review", "reject"), ("plan_review", "approve"), ("approval", "reject"), ("approval", "approve")]
    assert len(of_type(events, "session_reopened")) == 2


async def test_failed_action_halt_reopened_runs_only_that_action_again_and_survives_a_crash(
        write_plan: Any, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    steps = simple_steps()
    steps[2]["actions"] = [{"id": "checkout", **sh(f"import os, sys; sys.exit(0 if os.path.exists({str(fixed)!r}) "
                                                   "else 1)")}]
    journal = tmp_path / "j.jsonl"
    result, before = await run_plan(write_plan(steps), AutoDecisions("olivia"), tmp_path, journal_path=journal)
    assert result.exit_state == "blocked"
    halt = of_type(before, "decision_made")[-1]
    assert (halt.kind, halt.choice) == ("action_failed", "halt")

    fixed.write_text("")
    # reopened, then stopped while the retried action runs: the next resume replays across the reopen
    session = Session.resume(journal, decisions=AutoDecisions("olivia"), operator="olivia", no_sign=True,
                             reopen_reason="checkout fixed by hand",
                             listeners=[lambda e: e.type == "action_started" and e.attempt == 2
                                        and asyncio.get_running_loop().call_soon(session.interrupt, "SIGINT")])
    result = await session.run()
    assert result.exit_state is None and result.interrupted == "SIGINT"
    result = await resume(journal, AutoDecisions("olivia"))
    assert result.exit_state == "completed", result.message
    events = check_journal(journal)
    reopen = assert_reopened_once_at(events, halt)
    assert reopen.reason == "checkout fixed by hand" and reopen.reopened_by == "olivia"
    counts = started(events)
    assert counts[("assess", "look")] == counts[("flags", "off")] == 1  # done before: not again
    assert counts[("code", "checkout")] == 3  # failed, retried after the reopen (interrupted), rerun
    # the views fold the whole history: blocked, then in progress again, then completed
    view = SessionView()
    for event in events:
        view.apply(event)
        if event.type == "session_reopened":
            assert view.exit_state == "" and view.finished_at is None
    assert view.exit_state == "completed"
    facts = collect(events)
    assert [e.exit_state for e in facts.endings] == ["blocked", "completed"] and len(facts.reopens) == 1


async def test_a_signal_is_emitted_once_per_session_across_a_reopen(write_plan: Any, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    halt = {("gate", "validate"): Decision("no_go", "smoke test not conclusive"),
            ("no_go", "validate"): Decision("halt", "waiting for the smoke test owner")}
    result, before = await run_plan(write_plan(), Scripted(approving(halt)), tmp_path, journal_path=journal)
    assert result.exit_state == "blocked"
    assert [s.name for s in of_type(before, "signal")] == ["Root cause analysis initiated"]
    result = await resume(journal, Scripted(approving({("no_go", "validate"): Decision("retry", "owner is back")})))
    assert result.exit_state == "completed", result.message
    events = check_journal(journal)
    assert sorted(s.name for s in of_type(events, "signal")) == sorted(
        ["Root cause analysis initiated", "Rollback complete", "System restored"])
    again = await resume(journal, Scripted(approving()))  # replaying the reopened history emits nothing new
    assert again.exit_state == "completed" and check_journal(journal) == events


@pytest.mark.parametrize("outcome", ["completed", "aborted", "partial"])
async def test_final_outcomes_are_not_reopened(write_plan: Any, tmp_path: Path, outcome: str) -> None:
    overrides = {"completed": {}, "aborted": {("gate", "assess"): Decision("abort", "wrong incident")},
                 "partial": {("gate", "code"): Decision("abort", "stop here")}}[outcome]
    journal = tmp_path / "j.jsonl"
    result, before = await run_plan(write_plan(), Scripted(approving(overrides)), tmp_path, journal_path=journal)
    assert result.exit_state == outcome
    asked = Scripted(approving())
    result = await resume(journal, asked)
    assert result.exit_state == outcome and "already finished" in result.message and "final" in result.message
    assert asked.seen == [] and check_journal(journal) == before


async def test_a_question_the_decision_source_failed_is_asked_again(write_plan: Any, tmp_path: Path) -> None:
    class Failing:
        async def decide(self, request: DecisionRequested) -> Decision:
            if request.kind == "gate" and request.step == "flags":
                from rollback_tui.errors import PlanError

                raise PlanError(["answers.yaml: no answer for step flags"])
            return approving()(request)

    journal = tmp_path / "j.jsonl"
    result, before = await run_plan(write_plan(), Failing(), tmp_path, journal_path=journal)
    assert result.exit_state == "blocked"
    pending = of_type(before, "decision_requested")[-1]
    result = await resume(journal, Scripted(approving()))
    assert result.exit_state == "completed"
    events = check_journal(journal)
    assert_reopened_once_at(events, pending)
    answer = [e for e in of_type(events, "decision_made") if e.request_id == pending.request_id]
    assert [e.choice for e in answer] == ["go"]  # the open question itself was answered


async def test_a_disk_full_block_continues_where_it_stopped(write_plan: Any, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    full = {"on": False}

    def write(fd: int, data: bytes) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    session = Session.start(load_plan(write_plan()), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True, journal_writer=write,
                            listeners=[lambda e: e.type == "action_finished" and e.step == "code"
                                       and full.update(on=True)])
    result = await session.run()
    assert result.exit_state == "blocked" and "disk is full" in result.message
    before = check_journal(journal)
    assert not of_type(before, "session_finished")  # the end could not be journaled: nothing to reopen
    result = await resume(journal, AutoDecisions("olivia"))
    assert result.exit_state == "completed"
    events = check_journal(journal)
    assert not of_type(events, "session_reopened") and len(of_type(events, "session_resumed")) == 1
    assert set(started(events).values()) == {1}  # every action ran once
