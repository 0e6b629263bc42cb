"""One vocabulary: the events, the answers file and the cockpit take their choices from the procedure's table."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from rollback_tui.record import events as ev
from rollback_tui.engine.answers import _CHOICES, parse_answers
from rollback_tui.errors import PlanError
from rollback_tui.procedure.choices import CHOICE_IDS, GATES, KIND_IDS, NEEDS_REASON
from rollback_tui.procedure.exits import EXIT_STATES


def test_the_events_accept_exactly_the_tables_words() -> None:
    assert typing.get_args(ev.DecisionChoice) == CHOICE_IDS
    assert typing.get_args(ev.DecisionKind) == KIND_IDS
    assert typing.get_args(ev.ExitState) == EXIT_STATES
    with pytest.raises(Exception, match="choice"):
        ev.DecisionMade(request_id=1, kind="gate", choice="skip", by="o")


def test_the_answers_file_answers_with_the_gates_options() -> None:
    assert _CHOICES["on_failed_action"] == set(GATES["action_failed"].options)
    assert _CHOICES["on_interrupted"] == set(GATES["interrupted"].options)
    assert _CHOICES["steps"] == set(GATES["step"].options) | set(GATES["step_failed_check"].options) | set(
        GATES["no_go"].options)
    assert _CHOICES["inputs"] - {"confirm"} == set(GATES["input_confirm"].options)


def test_an_answers_halt_without_a_reason_names_the_answers_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    answers = parse_answers("on_failed_action: halt\nsteps: {code: {choice: no_go, then: halt}}\n", path)
    [spec] = answers.on_failed_action["default"]
    assert (spec.choice, spec.reason) == ("halt", f"halted by the answers file ({path}:1:19)")
    assert answers.steps["code"][0].then is not None and answers.steps["code"][0].then.reason.startswith("halted by")
    for choice in sorted(NEEDS_REASON - {"halt", "remediate", "reject", "mark_done"}):
        with pytest.raises(PlanError, match=f"'{choice}' needs a reason"):
            parse_answers(f"on_failed_action: {choice}\nsteps: {{code: {choice}}}\n"
                          if choice in _CHOICES["on_failed_action"] else f"steps: {{code: {choice}}}\n", path)
    with pytest.raises(PlanError, match="'skip' is not an answer here"):
        parse_answers("steps: {code: skip}\n", path)
