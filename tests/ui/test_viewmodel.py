"""The pure fold from events to what the cockpit draws (no Textual)."""

from __future__ import annotations

import itertools
import subprocess
import sys

from rollback_tui.procedure.choices import GATES
from rollback_tui.procedure.fold import fold as fold_strictly
from rollback_tui.procedure.states import ActionState, HostState, StepState
from rollback_tui.ui.viewmodel import STATE_LABELS, SessionView, label
from scripted import Clock, code_step_running, finished


def fold(events: list) -> SessionView:
    view = SessionView()
    for event in events:
        view.apply(event)
    return view


def test_fold_of_a_failed_code_step_awaiting_decision() -> None:
    view = fold(code_step_running(Clock()))
    states = {step.id: step.state for step in view.steps}
    assert states == {"assess": "done", "flags": "done", "code": "awaiting_decision", "configuration": "pending",
                      "database": "pending", "infrastructure": "not_applicable", "validate": "pending"}
    code = view.step("code")
    restart = code.action("restart-web")
    assert restart.state == "failed" and restart.host_states == {"web-1": "ok", "web-2": "failed"}
    assert view.pending is not None and view.pending.options[0] == "retry"
    assert view.probes["web-health"].state == "down" and view.probes["web-version"].latency_ms == 9.5
    assert [(i.id, i.ok, i.choice) for i in view.inputs] == [
        ("deployment-snapshot", True, ""), ("migration-scripts", False, "remediate"), ("rollback-approved", None, "")]
    assert view.window_percent == 50 and view.outcome == "? awaiting decision"
    assert view.output_lines == 9


def test_fold_to_the_end_marks_the_aborted_step_and_outcome() -> None:
    view = fold(finished(Clock()))
    assert view.step("code").state == "aborted"
    assert view.exit_state == "partial" and view.outcome == "◐ partial rollback"
    assert view.scopes["flags"] == "rolled_back" and view.pending is None
    assert view.decisions[-1]["reason"] == "web-2 will not start"


def test_snapshots_are_plain_comparable_data() -> None:
    a, b = fold(finished(Clock())), fold(finished(Clock()))
    assert a.snapshot() == b.snapshot()
    c = fold(finished(Clock())[:-1])
    assert c.snapshot() != a.snapshot()


def test_the_scripted_session_is_one_the_engine_can_produce() -> None:
    events = finished(Clock())
    assert fold_strictly(events).exit_state == "partial"  # no move the table refuses
    offers = {(gate.kind, tuple(gate.offer(allow))) for gate in GATES.values()
              for size in range(len(gate.conditional) + 1)
              for allow in itertools.combinations(sorted(gate.conditional), size)}
    for event in events:
        if event.type == "decision_requested":
            assert (event.kind, tuple(event.options)) in offers, event


def test_a_viewer_notes_a_move_the_table_refuses_and_goes_on() -> None:
    view = fold(finished(Clock())[:1])
    from rollback_tui.record import events as ev

    view.apply(ev.StepFinished(seq=2, step="code", status="done"))
    [problem] = view.problems
    assert problem.startswith("event 2: step code cannot go from pending to done; from pending: ")
    assert view.step("code").state == "pending" and view.events == 2


def test_every_state_has_a_word_not_only_a_symbol() -> None:
    for state in [*StepState, *ActionState, *HostState]:
        symbol, _, word = label(state).partition(" ")
        assert symbol and len(word) >= 2 and word != "·", state
        assert state.value in STATE_LABELS, state


def test_viewmodel_does_not_import_textual_or_pydantic() -> None:
    code = ("import sys, rollback_tui.ui.viewmodel\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'pydantic')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
