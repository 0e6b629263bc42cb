"""The procedure table: the step transitions (an illegal move raises), the decision vocabulary, the exit codes."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from rollback_tui.procedure.choices import CHOICES, DESTRUCTIVE, GATES, KINDS, NEEDS_REASON, offered
from rollback_tui.procedure.exits import (
    EXIT_FOR_SIGNAL,
    EXIT_FOR_STATE,
    EXIT_STATES,
    SIGNALS,
    ExitState,
    abort_state,
    exit_code,
    signals_for,
)
from rollback_tui.procedure.states import FINISHED, TERMINAL, TRANSITIONS, IllegalTransition, StepState, transition
from rollback_tui.procedure.steps import STEP_IDS, STEP_QUESTIONS, STEP_TITLES, step_number

S = StepState


def test_table_covers_every_state_and_names_only_states() -> None:
    assert set(TRANSITIONS) == set(StepState)
    for nexts in TRANSITIONS.values():
        assert nexts <= set(StepState)
    assert TERMINAL == {S.not_applicable, S.aborted}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(StepState, StepState)))
def test_transition_accepts_exactly_the_table(current: StepState, new: StepState) -> None:
    if new == current or new in TRANSITIONS[current]:
        assert transition(current, new) is new
    else:
        with pytest.raises(IllegalTransition, match=f"step x cannot go from {current.value} to {new.value}"):
            transition(current, new, "step x")


def test_every_state_is_reachable_from_pending_and_can_end() -> None:
    seen, todo = {S.pending}, [S.pending]
    while todo:
        for new in TRANSITIONS[todo.pop()]:
            if new not in seen:
                seen.add(new)
                todo.append(new)
    assert seen == set(StepState)
    # from every state but the terminal ones, some path reaches an end (finished or terminal)
    ends = TERMINAL | FINISHED
    for start in set(StepState) - ends:
        reach, todo = {start}, [start]
        while todo:
            for new in TRANSITIONS[todo.pop()]:
                if new not in reach:
                    reach.add(new)
                    todo.append(new)
        assert reach & ends, start


def test_nothing_finishes_from_pending_and_nothing_fails_after_it_finished() -> None:
    assert not FINISHED & TRANSITIONS[S.pending]
    assert not FINISHED & TRANSITIONS[S.running]  # nothing finishes without a decision
    for finished in FINISHED:
        assert TRANSITIONS[finished] == {S.running}  # only a reassess's next pass runs it again


def test_steps_have_titles_and_questions_in_order() -> None:
    assert STEP_IDS == ("assess", "flags", "code", "configuration", "database", "infrastructure", "validate")
    assert [step_number(s) for s in STEP_IDS] == [1, 2, 3, 4, 5, 6, 7]
    assert step_number("nope") == 0
    assert len(STEP_TITLES) == len(STEP_QUESTIONS) == 7
    assert all(question.endswith("?") for question in STEP_QUESTIONS.values())


def test_plan_types_re_export_the_procedure_steps() -> None:
    from rollback_tui.plan import types
    from rollback_tui.procedure import steps

    assert types.StepId is steps.StepId and types.STEP_TITLES is steps.STEP_TITLES
    assert types.Scope is steps.Scope and types.SCOPE_STEP is steps.SCOPE_STEP


def test_every_choice_is_offered_by_some_gate_and_every_option_is_a_choice() -> None:
    assert offered() == set(CHOICES)
    assert "skip" not in CHOICES  # the engine never offers it, so no screen or document does
    for gate in GATES.values():
        assert gate.kind in KINDS
        assert set(gate.options) <= set(CHOICES)
        assert gate.conditional <= set(gate.options)


def test_keys_are_unique_and_reasons_and_confirmations_are_the_table() -> None:
    keys = [choice.key for choice in CHOICES.values()]
    assert len(keys) == len(set(keys))
    assert NEEDS_REASON == {"reassess", "manual", "override", "abort", "reject", "remediate", "halt", "mark_done",
                            "exclude_failed"}
    assert DESTRUCTIVE <= set(CHOICES)
    assert "go" not in DESTRUCTIVE and "abort" in DESTRUCTIVE


def test_a_gate_offers_its_conditional_options_only_when_allowed() -> None:
    failed = GATES["action_failed"]
    assert failed.offer() == ["retry", "manual", "abort", "halt"]
    assert failed.offer(["retry_failed"]) == ["retry", "retry_failed", "manual", "abort", "halt"]
    assert failed.reasons(failed.offer()) == ["manual", "abort", "halt"]
    assert GATES["input_confirm"].offer() == ["approve", "halt"]
    with pytest.raises(ValueError, match="not conditional"):
        GATES["step"].offer(["retry_failed"])


def test_the_wave_gate_offers_retry_and_exclude_only_with_failed_hosts() -> None:
    wave = GATES["wave"]
    assert wave.kind == "wave" and KINDS["wave"] == "Wave go / no-go"
    assert wave.offer() == ["go", "no_go", "abort", "halt"]
    assert wave.offer(["retry_failed", "exclude_failed"]) == ["go", "no_go", "retry_failed", "exclude_failed",
                                                              "abort", "halt"]
    assert wave.reasons(wave.offer(["exclude_failed"])) == ["exclude_failed", "abort", "halt"]
    assert "exclude_failed" in DESTRUCTIVE and CHOICES["exclude_failed"].key == "c"
    # a waved action whose failure budget is exceeded may leave its failed hosts out too
    assert GATES["action_failed"].offer(["retry_failed", "exclude_failed"]) == [
        "retry", "retry_failed", "exclude_failed", "manual", "abort", "halt"]


def test_exit_codes_are_distinct_and_every_state_has_one() -> None:
    assert set(EXIT_FOR_STATE) == set(EXIT_STATES) == set(ExitState)
    codes = list(EXIT_FOR_STATE.values()) + list(EXIT_FOR_SIGNAL.values())
    assert len(codes) == len(set(codes))
    assert exit_code("completed") == 0 and exit_code("partial") == 5
    with pytest.raises(ValueError):
        exit_code("skipped")


def test_abort_is_partial_only_when_some_applicable_scopes_are_rolled_back_and_others_not() -> None:
    assert abort_state({"flags": "rolled_back", "code": "not_rolled_back"}) is ExitState.partial
    assert abort_state({"flags": "manual", "code": "not_applicable"}) is ExitState.aborted  # all that applied
    assert abort_state({"flags": "not_rolled_back", "code": "not_applicable"}) is ExitState.aborted  # none


def test_signals_appear_once_per_session() -> None:
    assert signals_for("completed", reached_validation=True) == list(SIGNALS)
    assert signals_for("blocked", reached_validation=False) == []
    assert signals_for("blocked", reached_validation=True) == ["Root cause analysis initiated"]
    assert signals_for("completed", reached_validation=True, already={"Root cause analysis initiated"}) == [
        "Rollback complete", "System restored"]


def test_the_procedure_package_imports_neither_pydantic_nor_textual() -> None:
    code = ("import sys, importlib, pkgutil, rollback_tui.procedure as p\n"
            "for m in pkgutil.iter_modules(p.__path__): importlib.import_module('rollback_tui.procedure.' + m.name)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'textual', 'yaml', 'rich'))\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
