"""The transition table: every allowed move is accepted, every other refused; the fold follows a scripted session."""

from __future__ import annotations

import itertools

import pytest

from rollback_tui.engine import events as ev
from rollback_tui.engine.states import TERMINAL, TRANSITIONS, IllegalTransition, StepState, fold, transition

S = StepState


def test_table_covers_every_state_and_names_only_states() -> None:
    assert set(TRANSITIONS) == set(StepState)
    for nexts in TRANSITIONS.values():
        assert nexts <= set(StepState)


@pytest.mark.parametrize(("current", "new"), list(itertools.product(StepState, StepState)))
def test_transition_accepts_exactly_the_table(current: StepState, new: StepState) -> None:
    if new == current or new in TRANSITIONS[current]:
        assert transition(current, new) is new
    else:
        with pytest.raises(IllegalTransition, match=f"from {current.value} to {new.value}"):
            transition(current, new)


def test_the_moves_the_procedure_needs() -> None:
    # the seed's paths: run, ask, go; no-go then retry; failed action then manual; reassess; abort; crash
    assert {S.running} <= TRANSITIONS[S.pending]
    assert {S.awaiting_decision, S.failed, S.interrupted} <= TRANSITIONS[S.running]
    assert {S.done, S.failed, S.retrying, S.pending, S.aborted, S.running} <= TRANSITIONS[S.awaiting_decision]
    assert S.running in TRANSITIONS[S.retrying]
    assert S.awaiting_decision in TRANSITIONS[S.interrupted]
    assert TERMINAL == {S.skipped, S.aborted}
    # a notice of the decision runs only after it (announcing comes from a decision, never from running)
    assert S.announcing in TRANSITIONS[S.awaiting_decision] and S.done in TRANSITIONS[S.announcing]
    assert S.announcing not in TRANSITIONS[S.running] and S.announcing not in TRANSITIONS[S.pending]
    # nothing finishes without a decision, and a finished step never fails afterwards
    assert S.done not in TRANSITIONS[S.running]
    assert S.failed not in TRANSITIONS[S.done]


def test_fold_follows_a_session_with_a_no_go_retry_and_an_interruption() -> None:
    outline = {"window": 60, "steps": []}
    script = [
        ev.SessionStarted(seq=1, operator="o", plan_path="p", plan_sha256="x", plan_name="n", host="h", pid=1,
                          tool_version="0", outline=outline),
        ev.StepStarted(seq=2, step="assess"),
        ev.ActionStarted(seq=3, step="assess", action="a", kind="shell"),
        ev.ActionFinished(seq=4, step="assess", action="a", status="ok"),
        ev.DecisionRequested(seq=5, request_id=1, kind="gate", step="assess", question="?", options=["go", "no_go"]),
        ev.DecisionMade(seq=6, request_id=1, kind="gate", step="assess", choice="no_go", by="o"),
        ev.DecisionRequested(seq=7, request_id=2, kind="no_go", step="assess", question="?", options=["retry"]),
        ev.DecisionMade(seq=8, request_id=2, kind="no_go", step="assess", choice="retry", by="o"),
        ev.StepStarted(seq=9, step="assess", attempt=2),
        ev.ActionStarted(seq=10, step="assess", action="a", kind="shell", attempt=2),
        ev.SessionInterrupted(seq=11, reason="SIGINT"),
    ]
    state = fold(script)
    assert state.steps["assess"] is S.interrupted
    assert state.running_actions and state.last_seq == 11
    more = [
        ev.SessionResumed(seq=12, operator="o", host="h", pid=2, last_seq=11),
        ev.ActionFinished(seq=13, step="assess", action="a", status="interrupted", attempt=2),
        ev.DecisionRequested(seq=14, request_id=3, kind="interrupted", step="assess", action="a", question="?",
                             options=["rerun"]),
        ev.DecisionMade(seq=15, request_id=3, kind="interrupted", step="assess", action="a", choice="mark_done", by="o"),
        ev.DecisionRequested(seq=16, request_id=4, kind="gate", step="assess", question="?", options=["go"]),
        ev.DecisionMade(seq=17, request_id=4, kind="gate", step="assess", choice="go", by="o"),
        ev.StepFinished(seq=18, step="assess", status="done"),
        ev.StepFinished(seq=19, step="configuration", status="not_applicable"),
    ]
    state = fold(script + more)
    assert state.steps["assess"] is S.done
    assert state.steps["configuration"] is S.skipped
    assert state.steps["code"] is S.pending
    assert state.step_attempts["assess"] == 2
    assert state.pending_request is None and not state.running_actions


def test_fold_refuses_a_journal_that_finishes_a_step_without_a_decision() -> None:
    with pytest.raises(IllegalTransition):
        fold([ev.StepStarted(seq=1, step="code"), ev.StepFinished(seq=2, step="code", status="done")])
