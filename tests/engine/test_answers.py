"""The answers file: positioned errors, checks against the plan, and the answers it gives (auto too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollback_tui.engine.answers import parse_answers
from rollback_tui.engine.decisions import AnswersDecisions, AutoDecisions
from rollback_tui.record.events import DecisionRequested, Evidence
from rollback_tui.errors import PlanError
from rollback_tui.plan.loader import load_plan

from .conftest import PY, of_type, run_plan, simple_steps


def request(kind: str, options: list[str], *, step: str = "", action: str = "", subject: str = "",
            occurrence: int = 1, verifications: list[dict[str, Any]] | None = None) -> DecisionRequested:
    return DecisionRequested(request_id=1, kind=kind, step=step, action=action, subject=subject, question="?",
                             options=options, occurrence=occurrence,  # type: ignore[arg-type]
                             evidence=Evidence(verifications=verifications or []))


def problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_answers(text, tmp_path / "a.yaml")
    return info.value.problems


def test_errors_name_file_line_and_column(tmp_path: Path) -> None:
    text = ("approvals:\n  devops-lead: Dana\n"
            "steps:\n  code: {choice: override}\n  flags: [go, {choice: maybe}]\n"
            "on_failed_action: {choice: manual}\n"
            "surprise: 1\n")
    found = problems(text, tmp_path)
    where = str(tmp_path / "a.yaml")
    assert f"{where}:4:9: 'override' needs a reason: write {{choice: override, reason: ...}}" in found
    assert any(p.startswith(f"{where}:5:15: 'maybe' is not an answer here") for p in found)
    assert any(p.startswith(f"{where}:6:19: 'manual' needs a reason") for p in found)
    assert any(p.startswith(f"{where}:7:1: unknown key 'surprise'") for p in found)


def test_yaml_syntax_errors_are_positioned(tmp_path: Path) -> None:
    found = problems("steps:\n  code: [go\n", tmp_path)
    assert found[0].startswith(f"{tmp_path / 'a.yaml'}:3:1: YAML syntax")


async def test_answers_follow_occurrences_and_then(tmp_path: Path) -> None:
    answers = parse_answers(
        "approvals: {devops-lead: Dana, tech-lead: Terry}\n"
        "steps:\n"
        "  flags:\n    - {choice: no_go, reason: EU flag on, then: retry}\n    - go\n"
        "on_failed_action:\n  default: halt\n  code/checkout: [retry, retry_failed]\n", tmp_path / "a.yaml")
    source = AnswersDecisions(answers, "olivia")
    gate = ["go", "no_go", "abort"]
    first = await source.decide(request("gate", gate, step="flags"))
    assert (first.choice, first.reason) == ("no_go", "EU flag on")
    assert (await source.decide(request("no_go", ["retry", "abort"], step="flags"))).choice == "retry"
    assert (await source.decide(request("gate", gate, step="flags", occurrence=2))).choice == "go"
    assert (await source.decide(request("gate", gate, step="flags", occurrence=9))).choice == "go"  # last repeats
    with pytest.raises(PlanError, match="'reassess' needs a reason"):
        parse_answers("steps: {code: reassess}\n", tmp_path / "b.yaml")
    fail = ["retry", "retry_failed", "manual", "abort", "halt"]
    assert (await source.decide(request("action_failed", fail, step="code", action="checkout"))).choice == "retry"
    assert (await source.decide(request("action_failed", fail, step="code", action="checkout",
                                        occurrence=2))).choice == "retry_failed"
    assert (await source.decide(request("action_failed", fail, step="flags", action="off"))).choice == "halt"
    approval = await source.decide(request("approval", ["approve", "reject"], subject="tech-lead"))
    assert (approval.choice, approval.by) == ("approve", "Terry")


async def test_an_answer_the_situation_does_not_allow_names_its_line(tmp_path: Path) -> None:
    answers = parse_answers("approvals: {devops-lead: D, tech-lead: T}\nsteps:\n  code: go\n", tmp_path / "a.yaml")
    source = AnswersDecisions(answers, "olivia")
    with pytest.raises(PlanError) as info:
        await source.decide(request("gate", ["override", "no_go", "abort"], step="code"))
    assert f"{tmp_path / 'a.yaml'}:3:9: step code: 'go' is not possible here" in str(info.value)


def test_bind_checks_roles_steps_and_actions(write_plan: Any, tmp_path: Path) -> None:
    plan = load_plan(write_plan()).plan
    answers = parse_answers(
        "approvals: {devops-lead: Dana, tech-lead: Dana, qa-lead: Quinn}\n"
        "steps: {deploy: go}\n"
        "on_interrupted: {code/nope: rerun}\n", tmp_path / "a.yaml")
    with pytest.raises(PlanError) as info:
        AnswersDecisions(answers, "olivia").bind(plan)
    text = str(info.value)
    assert "the plan has no role 'qa-lead'" in text
    assert "Dana already approves as devops-lead" in text
    assert ":2:9: no step 'deploy'" in text
    assert "no action 'code/nope' in the plan" in text


async def test_auto_goes_only_when_verifications_pass() -> None:
    auto = AutoDecisions("olivia")
    passing = request("gate", ["go", "no_go", "abort"], step="code", verifications=[{"check": "x", "ok": True}])
    failing = request("gate", ["override", "no_go", "abort"], step="code",
                      verifications=[{"check": "HEAD is v1.4.2", "ok": False}])
    assert (await auto.decide(passing)).choice == "go"
    no_go = await auto.decide(failing)
    assert no_go.choice == "no_go" and "HEAD is v1.4.2" in no_go.reason
    assert (await auto.decide(request("no_go", ["retry", "reassess", "abort", "halt"], step="code"))).choice == "halt"
    assert (await auto.decide(request("approval", ["approve"], subject="tech-lead"))).by == "auto:tech-lead"
    auto.allow_same_person = True
    assert (await auto.decide(request("approval", ["approve"], subject="tech-lead"))).by == "olivia"


async def test_an_answers_file_drives_a_whole_session(write_plan: Any, tmp_path: Path) -> None:
    answers_path = tmp_path / "answers.yaml"
    answers_path.write_text(
        "operator: Dana Ops\n"
        "approvals: {devops-lead: Dana Ops, tech-lead: Terry Tech}\n"
        "steps:\n  code: {choice: override, reason: read-back endpoint is cached}\n")
    plan = write_plan(simple_steps(code_verify=[PY, "-c", "raise SystemExit(1)"]))
    source = AnswersDecisions.from_file(answers_path, "olivia")
    source.bind(load_plan(plan).plan)
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed"
    override = [d for d in of_type(events, "decision_made") if d.choice == "override"][0]
    assert (override.by, override.reason) == ("Dana Ops", "read-back endpoint is cached")
