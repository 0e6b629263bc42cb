"""The one fold on scripted event sequences: reassess, retries, interruption, reopen, screens; illegal moves raise."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_tui.record import events as ev
from rollback_tui.procedure.fold import FOLDED, HOT, SessionState, fold
from rollback_tui.procedure.states import IllegalTransition, StepState

S = StepState
OUTLINE = {"window": 60, "roles": [{"id": "tech-lead", "title": "Technical Lead", "approves": ["validation"]}],
           "steps": [{"id": s, "applicable": s != "database", "actions": [{"id": "a", "kind": "shell"}]}
                     for s in ("assess", "flags", "code", "configuration", "database", "infrastructure", "validate")]}


class Script:
    """Numbered events, folded one at a time (the states after each are kept)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.state = SessionState()
        self.request_id = 0

    def add(self, event: Any) -> SessionState:
        event = event.model_copy(update={"seq": len(self.events) + 1})
        self.events.append(event)
        self.state.apply(event)
        return self.state

    def start(self) -> SessionState:
        return self.add(ev.SessionStarted(operator="o", plan_path="p", plan_sha256="x", plan_name="n", host="h",
                                          pid=1, tool_version="0", outline=OUTLINE))

    def ask(self, kind: str, step: str, options: list[str], choice: str, reason: str = "", action: str = "",
            subject: str = "") -> None:
        self.request_id += 1
        self.add(ev.DecisionRequested(request_id=self.request_id, kind=kind, step=step, action=action,
                                      subject=subject, question="?", options=options))
        assert self.state.pending is not None and self.state.pending.request_id == self.request_id
        if step:
            assert self.state.step(step).state is S.awaiting_decision
        self.add(ev.DecisionMade(request_id=self.request_id, kind=kind, step=step, action=action, subject=subject,
                                 choice=choice, reason=reason, by="o"))
        assert self.state.pending is None

    def run_step(self, step: str, attempt: int = 1, status: str = "ok") -> None:
        self.add(ev.StepStarted(step=step, attempt=attempt))
        self.add(ev.ActionStarted(step=step, action="a", kind="shell", attempt=attempt, hosts=["web-1"]))
        self.add(ev.ActionFinished(step=step, action="a", attempt=attempt, status=status,
                                   hosts=[ev.HostResult(host="web-1", status="ok" if status == "ok" else "failed")]))

    def go(self, step: str) -> None:
        self.ask("gate", step, ["go", "no_go", "abort"], "go")
        self.add(ev.StepFinished(step=step, status="done"))


def test_every_event_type_is_folded_or_counted() -> None:
    types = {cls.model_fields["type"].default for cls in ev.Event.__args__[0].__args__}  # type: ignore[attr-defined]
    assert types == set(FOLDED) | HOT


def test_outline_sets_titles_and_not_applicable_steps() -> None:
    script = Script()
    state = script.start()
    assert state.step("database").state is S.not_applicable
    assert state.step("assess").title == "Assess rollback situation"
    assert [a.id for a in state.step("code").actions] == ["a"]
    assert state.screen == "main" and state.window == 60


def test_screens_follow_the_questions_before_execution_and_the_ending() -> None:
    script = Script()
    script.start()
    script.add(ev.InputChecked(input_id="snap", category="artifact", ok=False, needs_confirmation=True))
    assert script.state.inputs[0].ok is None
    script.ask("input", "", ["approve", "halt"], "approve", subject="snap")
    assert script.state.screen == "input" and script.state.inputs[0].choice == "approve"
    script.ask("plan_review", "", ["approve", "reject"], "approve")
    script.add(ev.PlanReviewed(approved=True))
    assert script.state.screen == "plan_review" and script.state.plan_review is True
    script.ask("approval", "", ["approve", "reject"], "approve")
    assert script.state.screen == "approval"
    script.run_step("assess")
    assert script.state.screen == "main"
    script.add(ev.SessionFinished(exit_state="blocked", message="halted"))
    assert script.state.screen == "summary" and script.state.exit_state == "blocked"
    script.add(ev.SessionReopened(reason="fixed", previous_exit_state="blocked", reopened_by="o",
                                  continue_after_seq=3))
    assert script.state.screen == "main" and script.state.exit_state == "" and script.state.finished is None


def test_reassess_sends_unfinished_steps_back_and_keeps_finished_ones_done() -> None:
    script = Script()
    script.start()
    script.run_step("assess")
    script.go("assess")
    script.run_step("flags")
    script.ask("gate", "flags", ["go", "no_go", "abort"], "no_go")
    assert script.state.step("flags").state is S.failed
    script.ask("no_go", "flags", ["retry", "reassess", "abort", "halt"], "reassess", "EU flag")
    assert script.state.step("flags").state is S.pending  # it runs again on the next pass
    assert script.state.step("assess").state is S.done  # what was done stays done until it runs again
    script.run_step("assess", attempt=2)
    assert script.state.step("assess").state is S.running and script.state.step("assess").attempt == 2


def test_a_failed_action_retried_automatically_then_by_decision_then_by_hand() -> None:
    script = Script()
    script.start()
    script.run_step("code", status="failed")
    assert script.state.step("code").state is S.failed
    assert script.state.step("code").action("a").host_states == {"web-1": "failed"}
    script.add(ev.ActionStarted(step="code", action="a", kind="shell", attempt=2))  # the plan's retry.attempts
    assert script.state.step("code").state is S.running
    script.add(ev.ActionFinished(step="code", action="a", attempt=2, status="timeout"))
    script.ask("action_failed", "code", ["retry", "manual", "abort", "halt"], "retry", action="a")
    assert script.state.step("code").state is S.retrying
    script.add(ev.ActionStarted(step="code", action="a", kind="shell", attempt=3))
    script.add(ev.ActionFinished(step="code", action="a", attempt=3, status="failed"))
    script.ask("action_failed", "code", ["retry", "manual", "abort", "halt"], "manual", "by hand", action="a")
    assert script.state.step("code").state is S.running
    script.ask("gate", "code", ["go", "no_go", "abort"], "go")
    script.add(ev.StepFinished(step="code", status="manual"))
    assert script.state.step("code").state is S.manual


def test_an_interruption_stops_running_work_and_keeps_the_question_pending() -> None:
    script = Script()
    script.start()
    script.add(ev.StepStarted(step="assess"))
    script.add(ev.ActionStarted(step="assess", action="a", kind="shell"))
    script.add(ev.SessionInterrupted(reason="SIGINT"))
    assert script.state.step("assess").state is S.interrupted
    assert script.state.step("assess").action("a").state == "interrupted"
    assert script.state.interrupted == "SIGINT"
    script.add(ev.SessionResumed(operator="p", host="h", pid=2, last_seq=3))
    assert script.state.interrupted == "" and script.state.operator == "p"
    script.add(ev.ActionFinished(step="assess", action="a", status="interrupted"))
    script.ask("interrupted", "assess", ["rerun", "verify_only", "mark_done", "abort"], "rerun", action="a")
    assert script.state.step("assess").state is S.retrying
    script.add(ev.ActionStarted(step="assess", action="a", kind="shell", attempt=2))
    script.add(ev.DecisionRequested(request_id=9, kind="gate", step="assess", question="?", options=["go"]))
    script.add(ev.SessionInterrupted(reason="SIGTERM"))
    assert script.state.step("assess").state is S.awaiting_decision  # asked again after the next resume
    assert script.state.pending is not None and script.state.pending.request_id == 9


def test_abort_and_validation_rejection() -> None:
    script = Script()
    script.start()
    script.run_step("validate")
    script.ask("gate", "validate", ["go", "no_go", "abort"], "go")
    assert script.state.step("validate").state is S.awaiting_decision  # the validation's approvals come next
    script.ask("approval", "validate", ["approve", "reject"], "reject", "not yet")
    assert script.state.step("validate").state is S.failed
    script.ask("no_go", "validate", ["retry", "reassess", "abort", "halt"], "abort", "give up")
    script.add(ev.StepFinished(step="validate", status="aborted"))
    assert script.state.step("validate").state is S.aborted
    script.add(ev.Signal(name="Root cause analysis initiated"))
    script.add(ev.SessionFinished(exit_state="aborted", scopes={"flags": "not_applicable"}))
    assert script.state.signals == ["Root cause analysis initiated"] and script.state.scopes == {
        "flags": "not_applicable"}


@pytest.mark.parametrize("bad", [
    ev.StepFinished(step="assess", status="done"),  # done without running
    ev.DecisionMade(request_id=1, kind="no_go", step="database", choice="retry", by="o"),  # not applicable step
])
def test_an_illegal_move_raises(bad: Any) -> None:
    script = Script()
    script.start()
    with pytest.raises(IllegalTransition, match="cannot go from"):
        script.add(bad)


def test_a_step_cannot_finish_without_a_decision() -> None:
    script = Script()
    script.start()
    script.run_step("assess")
    with pytest.raises(IllegalTransition, match="step assess cannot go from running to done"):
        script.add(ev.StepFinished(step="assess", status="done"))


def test_a_finished_step_cannot_fail_afterwards() -> None:
    script = Script()
    script.start()
    script.run_step("assess")
    script.go("assess")
    with pytest.raises(IllegalTransition, match="step assess cannot go from done to failed"):
        script.add(ev.ActionFinished(step="assess", action="a", status="failed"))


def test_fold_upto_is_the_state_after_the_first_n_events() -> None:
    script = Script()
    script.start()
    script.run_step("assess")
    script.go("assess")
    for n in range(len(script.events) + 1):
        partial = fold(script.events, upto=n)
        expected = SessionState()
        for event in script.events[:n]:
            expected.apply(event)
        assert partial.snapshot() == expected.snapshot()
    assert fold(script.events).snapshot() == script.state.snapshot()


def test_a_notice_after_the_go_announces_and_a_failed_notice_done_by_hand_finishes_the_step() -> None:
    script = Script()
    script.start()
    script.run_step("validate")
    script.ask("gate", "validate", ["go", "no_go", "abort"], "go")
    script.add(ev.ActionStarted(step="validate", action="notify", kind="http", after_decision=True))
    assert script.state.step("validate").state is S.announcing
    script.add(ev.ActionFinished(step="validate", action="notify", status="failed"))
    script.ask("action_failed", "validate", ["retry", "manual", "abort", "halt"], "manual", "phoned", action="notify")
    assert script.state.step("validate").state is S.announcing  # back to announcing, not to running
    script.add(ev.StepFinished(step="validate", status="manual"))
    assert script.state.step("validate").state is S.manual
    script.add(ev.SessionInterrupted(reason="SIGINT"))
    assert script.state.step("validate").state is S.manual
