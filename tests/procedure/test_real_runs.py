"""The fold on journals of real runs (the demo sandbox rolled back for real, and plans of real commands): every
state it produces is a move of the table, every question offers a gate's options, and the end agrees with the
exit state and per-scope record the engine wrote."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_tui.engine.decisions import AnswersDecisions, AutoDecisions
from rollback_tui.record.journal import read_journal
from rollback_tui.engine.session import Session
from rollback_tui.plan.loader import load_plan
from rollback_tui.procedure.choices import GATES
from rollback_tui.procedure.exits import signals_for
from rollback_tui.procedure.fold import SessionState
from rollback_tui.procedure.states import FINISHED, TRANSITIONS, StepState

S = StepState


def gate_of(request: Any) -> str:
    """The gate of the table whose offer this request is (AssertionError when none is)."""
    options = list(request.options)
    for gate in GATES.values():
        if gate.kind == request.kind and set(options) <= set(gate.options) \
                and gate.offer(set(options) & gate.conditional) == options:
            assert list(request.needs_reason) == gate.reasons(options), request
            return gate.name
    raise AssertionError(f"request {request.seq} offers {options}: no gate of the table offers that")


def check_against_table(events: list[Any]) -> tuple[SessionState, list[str]]:
    """Fold event by event; assert every change of a step state is a move of the table. Returns the gates asked."""
    state = SessionState()
    before = state.step_states()
    gates = []
    for event in events:
        state.apply(event)
        after = state.step_states()
        for step, new in after.items():
            old = before.get(step, S.pending)
            assert new == old or new in TRANSITIONS[old], f"event {event.seq}: step {step} {old} -> {new}"
        before = after
        if event.type == "decision_requested":
            gates.append(gate_of(event))
        if event.type == "session_finished":
            for scope, outcome in event.scopes.items():
                step = state.step(scope).state
                if outcome == "rolled_back":
                    assert step is S.done, (scope, step)
                elif outcome == "manual":
                    assert step is S.manual, (scope, step)
                elif outcome == "not_rolled_back":
                    assert step not in FINISHED, (scope, step)
    return state, gates


async def run(plan: Path, decisions: Any, journal: Path, variables: dict[str, str] | None = None) -> list[Any]:
    session = Session.start(load_plan(plan, variables), decisions=decisions, operator="olivia", journal_path=journal,
                            no_sign=True)
    await session.run()
    read = read_journal(journal)
    assert read.dropped == []
    return read.events


def answers(path: Path, text: str) -> AnswersDecisions:
    path.write_text(text)
    return AnswersDecisions.from_file(path, "olivia")


# ---------------------------------------------------------------- the demo sandbox


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Any]:
    from rollback_tui.demo.sandbox import build_sandbox

    sandbox = build_sandbox(tmp_path / "sandbox", operator="olivia")
    try:
        yield sandbox.start(ports={"web_port": 0, "ssh_port": 0, "hook_port": 0})
    finally:
        sandbox.stop()


@pytest.mark.slow
async def test_the_demo_rolled_back_by_auto_folds_to_completed(demo: Any, tmp_path: Path) -> None:
    variables = {**demo.variables, "watch_seconds": "1"}
    events = await run(demo.plan_path, AutoDecisions("olivia"), tmp_path / "auto.jsonl", variables)
    state, gates = check_against_table(events)
    assert state.exit_state == "completed" and state.screen == "summary"
    assert [s.state for s in state.steps] == [S.done] * 5 + [S.not_applicable, S.done]
    assert state.signals == signals_for("completed", reached_validation=True)
    assert {"input_confirm", "plan_review", "approval", "step"} <= set(gates)


@pytest.mark.slow
async def test_the_demo_with_a_retry_a_reassess_and_an_abort_at_validation(demo: Any, tmp_path: Path) -> None:
    source = answers(tmp_path / "answers.yaml", (
        "approvals: {devops-lead: Dana, tech-lead: Terry}\n"
        "steps:\n"
        "  flags: [{choice: no_go, reason: check again, then: retry}, go]\n"
        "  code: [{choice: reassess, reason: the service needs a second look}, go]\n"
        "  validate: {choice: abort, reason: the drill stops here}\n"))
    variables = {**demo.variables, "watch_seconds": "1"}
    events = await run(demo.plan_path, source, tmp_path / "drill.jsonl", variables)
    state, gates = check_against_table(events)
    # an abort at validation with every applicable scope rolled back is aborted, not partial
    assert state.exit_state == "aborted", state.message
    assert set(state.scopes.values()) == {"rolled_back", "not_applicable"}
    assert state.step("validate").state is S.aborted
    assert state.step("assess").attempt == 2 and state.step("flags").attempt == 3
    assert state.signals == ["Root cause analysis initiated"]
    assert gates.count("no_go") == 2  # after the no-go at flags and at code; validate is aborted at its gate


# ---------------------------------------------------------------- plans of real commands


def shell_plan(tmp_path: Path, steps: list[dict[str, Any]]) -> Path:
    path = tmp_path / "plan.yaml"
    scope = [step["id"] for step in steps if step["id"] not in ("assess", "validate")]
    path.write_text(yaml.safe_dump({"version": 1, "metadata": {"name": "fold test"},
                                    "rollback": {"scope": scope}, "steps": steps}, sort_keys=False))
    return path


async def test_a_failed_action_done_by_hand_and_an_override(tmp_path: Path) -> None:
    plan = shell_plan(tmp_path, [
        {"id": "assess", "actions": [{"id": "look", "kind": "shell", "argv": ["echo", "ok"]}]},
        {"id": "flags", "actions": [{"id": "off", "kind": "shell", "argv": ["false"]}]},
        {"id": "code", "actions": [{"id": "checkout", "kind": "shell", "argv": ["echo", "x"],
                                    "verify_argv": ["false"]}]},
        {"id": "validate", "actions": [{"id": "smoke", "kind": "shell", "argv": ["echo", "smoke"]}]},
    ])
    source = answers(tmp_path / "answers.yaml", (
        "approvals: {devops-lead: Dana, tech-lead: Terry}\n"
        "on_failed_action: {choice: manual, reason: turned off in the console}\n"
        "steps:\n  code: {choice: override, reason: the read-back is cached}\n"))
    events = await run(plan, source, tmp_path / "j.jsonl")
    state, gates = check_against_table(events)
    assert state.exit_state == "completed", state.message
    assert state.step("flags").state is S.manual and state.scopes["flags"] == "manual"
    assert state.step("code").state is S.done and "step_failed_check" in gates and "action_failed" in gates


async def test_a_halt_blocks_and_the_reopened_session_completes(tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    plan = shell_plan(tmp_path, [
        {"id": "assess", "actions": [{"id": "look", "kind": "shell", "argv": ["echo", "ok"]}]},
        {"id": "code", "actions": [{"id": "checkout", "kind": "shell",
                                    "argv": [sys.executable, "-c", f"import os,sys; sys.exit(0 if os.path.exists({str(marker)!r}) else 1)"]}]},
    ])
    journal = tmp_path / "j.jsonl"
    events = await run(plan, AutoDecisions("olivia"), journal)
    state, gates = check_against_table(events)
    assert state.exit_state == "blocked" and state.step("code").state is S.failed
    assert state.signals == []
    marker.write_text("")
    session = Session.resume(journal, decisions=AutoDecisions("olivia"), operator="olivia", no_sign=True)
    await session.run()
    events = read_journal(journal).events
    state, gates = check_against_table(events)
    assert state.endings == ["blocked", "completed"] and state.reopens == 1
    assert state.exit_state == "completed" and state.step("code").state is S.done
    assert state.signals.count("Root cause analysis initiated") == 1  # once per session, across the reopen


async def test_an_illegal_transition_is_a_bug_that_stops_the_session(tmp_path: Path) -> None:
    from rollback_tui.record.events import SessionStarted, StepFinished
    from rollback_tui.procedure.states import IllegalTransition

    plan = shell_plan(tmp_path, [{"id": "code", "actions": [{"id": "c", "kind": "shell", "argv": ["echo", "x"]}]}])
    journal = tmp_path / "j.jsonl"
    loaded = load_plan(plan)
    session = Session.start(loaded, decisions=AutoDecisions("olivia"), operator="olivia", journal_path=journal,
                            no_sign=True)
    try:
        session.record([SessionStarted(operator="olivia", plan_path=str(plan), plan_sha256=loaded.sha256,
                                       plan_name="fold test", host="h", pid=1, tool_version="0")])
        with pytest.raises(IllegalTransition, match="step code cannot go from pending to done"):
            session.record([StepFinished(step="code", status="done")])  # finished without running or a decision
    finally:
        session.journal.close()
    with pytest.raises(IllegalTransition, match="step code cannot go from pending to done"):
        Session.resume(journal, decisions=AutoDecisions("olivia"), operator="olivia", no_sign=True)


async def test_an_interrupted_action_may_be_halted_until_its_outcome_is_known(tmp_path: Path) -> None:
    import asyncio

    from rollback_tui.engine.decisions import Decision

    plan = shell_plan(tmp_path, [{"id": "code", "actions": [{"id": "slow", "kind": "shell", "argv": ["sleep", "30"]}]}])
    journal = tmp_path / "j.jsonl"
    session = Session.start(load_plan(plan), decisions=AutoDecisions("olivia"), operator="olivia",
                            journal_path=journal, no_sign=True,
                            listeners=[lambda e: e.type == "action_started" and e.action == "slow"
                                       and asyncio.get_running_loop().call_soon(session.interrupt, "SIGINT")])
    assert (await asyncio.wait_for(session.run(), timeout=20)).interrupted == "SIGINT"

    class Halting(AutoDecisions):
        async def decide(self, request: Any) -> Decision:
            if request.kind == "interrupted":
                assert "halt" in request.options and "halt" in request.needs_reason
                return Decision("halt", "checking web-2 by hand first")
            return await super().decide(request)

    resumed = Session.resume(journal, decisions=Halting("olivia"), operator="olivia", no_sign=True)
    assert (await resumed.run()).exit_state == "blocked"
    state, gates = check_against_table(read_journal(journal).events)
    assert gates[-1] == "interrupted" and state.step("code").state is S.failed and state.exit_state == "blocked"
