"""Resume: cancellation leaves a resumable journal; a journal cut at any event resumes to the same outcome."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.engine.decisions import AutoDecisions, Decision
from rollback_tui.record.events import DecisionRequested
from rollback_tui.record.journal import read_journal
from rollback_tui.engine.replay import ReplayMismatch
from rollback_tui.engine.session import Session
from rollback_tui.errors import JournalError
from rollback_tui.plan.loader import load_plan

from .conftest import Scripted, approving, check_journal, of_type, run_plan, simple_steps


def procedure_view(events: list[Any]) -> list[tuple[Any, ...]]:
    """What the procedure did, without the artefacts of stopping and resuming."""
    return [(e.type, getattr(e, "step", ""), getattr(e, "action", ""), getattr(e, "status", ""),
             getattr(e, "choice", ""), getattr(e, "exit_state", "")) for e in events
            if e.type in ("step_started", "step_finished", "decision_made", "session_finished", "approval_given")]


async def resume(journal: Path, decisions: Any, **kwargs: Any) -> Any:
    session = Session.resume(journal, decisions=decisions, operator="olivia", no_sign=True, **kwargs)
    return await session.run()


async def test_interrupt_during_an_action_then_resume(write_plan: Any, tmp_path: Path) -> None:
    steps = simple_steps()
    steps[2]["actions"] = [{"id": "slow", "kind": "shell", "argv": ["sleep", "30"]}]
    journal = tmp_path / "j.jsonl"
    session = Session.start(load_plan(write_plan(steps)), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True,
                            listeners=[lambda e: e.type == "action_started" and e.action == "slow"
                                       and asyncio.get_running_loop().call_soon(session.interrupt, "SIGINT")])
    result = await asyncio.wait_for(session.run(), timeout=20)  # the sleep is killed, not waited for
    assert result.exit_state is None and result.interrupted == "SIGINT"
    events = check_journal(journal)
    assert [(e.action, e.status) for e in of_type(events, "action_finished")][-1] == ("slow", "interrupted")
    assert events[-1].type == "session_interrupted" and events[-1].reason == "SIGINT"
    assert not journal.with_name("j.jsonl.lock").exists()

    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "interrupted":
            assert request.options[:3] == ["rerun", "verify_only", "mark_done"]
            return Decision("mark_done", "restarted by hand")
        return approving()(request)

    result = await resume(journal, Scripted(answer))
    assert result.exit_state == "completed"
    events = check_journal(journal)
    resumed = of_type(events, "session_resumed")[0]
    assert resumed.last_seq == resumed.seq - 1
    assert of_type(events, "session_finished")[0].scopes["code"] == "manual"
    assert len(of_type(events, "step_started")) == 4  # nothing that finished ran again


async def test_verify_only_decides_from_the_read_back(write_plan: Any, tmp_path: Path) -> None:
    steps = simple_steps()
    steps[2]["actions"] = [{"id": "slow", "kind": "shell", "argv": ["sleep", "30"], "verify_argv": ["true"]}]
    journal = tmp_path / "j.jsonl"
    session = Session.start(load_plan(write_plan(steps)), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True,
                            listeners=[lambda e: e.type == "action_started" and e.action == "slow"
                                       and asyncio.get_running_loop().call_soon(session.interrupt, "SIGTERM")])
    assert (await session.run()).interrupted == "SIGTERM"

    def answer(request: DecisionRequested) -> Decision:
        return Decision("verify_only") if request.kind == "interrupted" else approving()(request)

    result = await resume(journal, Scripted(answer))
    assert result.exit_state == "completed"
    events = check_journal(journal)
    slow = [e for e in events if e.type == "action_started" and e.action == "slow"]
    assert len(slow) == 1  # read back, not run again
    assert [v.ok for v in of_type(events, "verification") if v.action == "slow"] == [True, True]


async def test_a_journal_cut_after_any_event_resumes_to_the_same_outcome(write_plan: Any, tmp_path: Path) -> None:
    """What a crash (SIGKILL) leaves is a prefix of the journal: resume every kind of prefix."""
    steps = simple_steps()
    answers = approving({("gate", "flags"): Decision("no_go", "EU flag on")})
    first = {"n": 0}

    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "gate" and request.step == "flags":
            first["n"] += 1
            return Decision("no_go", "EU flag on") if request.occurrence == 1 else Decision("go")
        if request.kind == "no_go":
            return Decision("retry")
        return answers(request)

    reference, events = await run_plan(write_plan(steps), Scripted(answer), tmp_path)
    assert reference.exit_state == "completed"
    whole = (tmp_path / "session.journal.jsonl").read_bytes().split(b"\n")[:-1]
    expected = procedure_view(events)
    cuts = sorted(set(range(1, len(whole), 3)) | {len(whole) - 1})
    reruns = 0
    for cut in cuts:
        journal = tmp_path / f"cut-{cut}.jsonl"
        journal.write_bytes(b"\n".join(whole[:cut]) + b"\n")
        os.chmod(journal, 0o600)
        result = await resume(journal, Scripted(answer), report_path=tmp_path / f"cut-{cut}.md")
        assert result.exit_state == "completed", cut
        resumed = check_journal(journal)
        view = procedure_view(resumed)
        assert view == expected or _only_interrupted_differs(view, expected), cut
        reruns += view != expected
    assert reruns >= 2  # some cuts fell inside an action: it came back interrupted and ran again


def _only_interrupted_differs(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> bool:
    """A cut inside an action adds the operator's rerun decision; everything else is identical."""
    return [row for row in got if row[4] != "rerun"] == expected


async def test_disk_full_stops_blocked_then_resumes(write_plan: Any, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    full = {"on": False}

    def write(fd: int, data: bytes) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def fill_disk(event: Any) -> None:
        if event.type == "step_finished" and event.step == "flags":
            full["on"] = True

    session = Session.start(load_plan(write_plan()), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True, journal_writer=write, listeners=[fill_disk])
    result = await session.run()
    assert result.exit_state == "blocked"
    assert "disk is full" in result.message and "resume" in result.message
    events = check_journal(journal)
    assert events[-1].type == "step_finished" and events[-1].step == "flags"
    # the report still says how it ended (the journal could not)
    assert result.report is not None and "Blocked" in Path(result.report.path).read_text()
    result = await resume(journal, AutoDecisions("olivia"))
    assert result.exit_state == "completed"
    check_journal(journal)


async def test_resume_refuses_a_changed_plan_unless_given(write_plan: Any, tmp_path: Path) -> None:
    plan = write_plan()
    journal = tmp_path / "j.jsonl"
    session = Session.start(load_plan(plan), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True,
                            listeners=[lambda e: e.type == "step_finished" and e.step == "flags"
                                       and asyncio.get_running_loop().call_soon(session.interrupt, "SIGINT")])
    await session.run()
    plan.write_text(plan.read_text().replace("flag off", "flags off"))
    with pytest.raises(JournalError, match="changed since the session started"):
        Session.resume(journal, decisions=AutoDecisions("olivia"), operator="olivia", no_sign=True)
    assert not journal.with_name("j.jsonl.lock").exists()  # a refused resume leaves no lock behind
    result = await resume(journal, AutoDecisions("olivia"), plan_path=plan)
    assert result.exit_state == "completed"


async def test_resume_with_a_plan_whose_steps_changed_names_the_event(write_plan: Any, tmp_path: Path) -> None:
    plan = write_plan()
    journal = tmp_path / "j.jsonl"
    session = Session.start(load_plan(plan), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True,
                            listeners=[lambda e: e.type == "step_finished" and e.step == "code"
                                       and asyncio.get_running_loop().call_soon(session.interrupt, "SIGINT")])
    await session.run()
    other = simple_steps()
    other[1]["actions"][0]["id"] = "renamed"
    changed = write_plan(other, name="changed.yaml")
    with pytest.raises(ReplayMismatch, match="does not follow from the plan at event"):
        await resume(journal, AutoDecisions("olivia"), loaded=load_plan(changed))


async def test_resume_of_a_finished_session_rewrites_a_missing_report(write_plan: Any, tmp_path: Path) -> None:
    result, events = await run_plan(write_plan(), AutoDecisions("olivia"), tmp_path)
    report = Path(result.report.path)
    report.unlink()
    again = await resume(tmp_path / "session.journal.jsonl", AutoDecisions("olivia"))
    assert again.exit_state == "completed" and "already finished" in again.message
    assert report.exists()
    assert len(read_journal(tmp_path / "session.journal.jsonl").events) == len(events)  # nothing appended
