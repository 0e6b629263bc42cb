"""Decision sources: who answers the procedure's questions (the cockpit, an answers file, or `auto`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rollback_tui.record.events import DecisionChoice, DecisionRequested
from rollback_tui.errors import PlanError

if TYPE_CHECKING:
    from rollback_tui.engine.answers import Answers, AnswerSpec
    from rollback_tui.plan.models import Plan


@dataclass
class Decision:
    """An answer to a DecisionRequested. For approvals `by` is the approver's name; else '' means the operator."""

    choice: DecisionChoice
    reason: str = ""
    by: str = ""


@runtime_checkable
class DecisionSource(Protocol):
    """Answers the engine's questions. `request` is the journaled DecisionRequested event itself: `options` says
    what may be answered, `needs_reason` which of those need a reason, `evidence` what the operator sees.

    A source may also define `bind(plan)`, called once before the session starts (to check itself against the plan).
    Raising a RollbackError stops the session as blocked with its message."""

    async def decide(self, request: DecisionRequested) -> Decision: ...


def _failed_checks(request: DecisionRequested) -> list[str]:
    return [str(check.get("check", "?")) for check in request.evidence.verifications if not check.get("ok")]


class AutoDecisions:
    """`--answers auto`: go on every step whose verifications pass; stop as blocked at the first that fails.

    Inputs that need confirmation are confirmed, missing inputs halt, the plan is approved, every role is approved
    (by the operator's name only when the plan allows one person to hold two roles, else `auto:<role>`), an
    interrupted action is run again, and anything that failed halts the session (exit state blocked). A question
    asked again after a blocked session was reopened (the issue is taken as resolved) is answered `retry` where
    that is offered: the step or action runs again, and halts again if it still fails."""

    def __init__(self, operator: str, *, allow_same_person: bool = False) -> None:
        self.operator = operator
        self.allow_same_person = allow_same_person

    def bind(self, plan: Plan) -> None:
        self.allow_same_person = plan.approvals.allow_same_person

    async def decide(self, request: DecisionRequested) -> Decision:
        kind, options = request.kind, request.options
        if kind == "input":
            if "approve" in options:
                return Decision("approve", "auto: confirmed for this run", self.operator)
            return Decision("halt", f"auto: required input {request.subject} is missing", self.operator)
        if kind in ("plan_review", "approval"):
            by = self.operator if kind == "plan_review" or self.allow_same_person else f"auto:{request.subject}"
            return Decision("approve", "auto", by)
        if kind == "gate":
            failed = _failed_checks(request)
            if "go" in options and not failed:
                return Decision("go", "auto: every verification passed", self.operator)
            if "no_go" in options:
                return Decision("no_go", "auto: verification failed: " + ", ".join(failed), self.operator)
            return Decision("halt", "auto: a manual procedure needs the operator", self.operator)
        if kind == "wave":  # go on; a wave with failed hosts (within the budget) gets its failed hosts retried once
            if request.evidence.failed_hosts and "retry_failed" in options and request.occurrence == 1:
                return Decision("retry_failed", "auto: retry the wave's failed hosts once", self.operator)
            down = sorted(probe for probe, item in request.evidence.health.items() if item.get("state") == "down")
            if down:
                return Decision("no_go", "auto: health is down: " + ", ".join(down), self.operator)
            return Decision("go", "auto: the wave is within its failure budget", self.operator)
        if request.reopened and "retry" in options:
            return Decision("retry", "auto: the session was reopened after the issue was addressed", self.operator)
        if kind == "interrupted" and "rerun" in options:
            return Decision("rerun", "auto: run the interrupted action again", self.operator)
        where = f"step {request.step}" + (f", action {request.action}" if request.action else "")
        if "halt" in options:
            return Decision("halt", f"auto: stopped at {where}", self.operator)
        return Decision(options[0], "auto", self.operator)


class AnswersDecisions:
    """Decisions from an answers file (format: rollback_tui/engine/answers.py). An answer the situation does not
    allow stops the session as blocked, naming the answer's file:line:col."""

    def __init__(self, answers: Answers, operator: str) -> None:
        self.answers = answers
        self.operator = answers.operator or operator
        self.allow_same_person = False

    @classmethod
    def from_file(cls, path: Path, operator: str) -> AnswersDecisions:
        from rollback_tui.engine.answers import load_answers

        return cls(load_answers(Path(path)), operator)

    def _at(self, *path: object) -> str:
        """Where a key of the file stands (the nearest enclosing one), for messages."""
        answers = self.answers
        key = tuple(path)
        if key in answers.key_positions:
            return answers.key_positions[key]
        while key and key not in answers.positions:
            key = key[:-1]
        return answers.positions.get(key, f"{answers.path}:1:1")

    def bind(self, plan: Plan) -> None:
        """Check the file against the plan: every role named, step and action names that exist."""
        from rollback_tui.plan.types import STEP_ORDER

        problems: list[str] = []
        self.allow_same_person = plan.approvals.allow_same_person
        roles = {role.id: role for role in plan.approvals.roles}
        for role_id, role in roles.items():
            if role_id not in self.answers.approvals:
                problems.append(f"{self._at('approvals')}: no approver named for role {role_id!r} ({role.title})")
        for role_id in self.answers.approvals:
            if role_id not in roles:
                problems.append(f"{self._at('approvals', role_id)}: the plan has no role {role_id!r}; "
                                f"its roles: {', '.join(roles) or 'none'}")
        if not self.allow_same_person:
            from rollback_tui.people import person_key

            seen: dict[str, tuple[str, str]] = {}
            for role_id, (name, spec) in self.answers.approvals.items():
                key = person_key(name)
                if spec.choice == "approve" and key in seen:
                    first, other = seen[key]
                    who = name if first == name else f"{name!r} is the same person as {first!r}, who"
                    problems.append(f"{self._at('approvals', role_id)}: {who} already approves as {other}; "
                                    "the plan requires a different person for each role (approvals.allow_same_person)")
                seen.setdefault(key, (name, role_id))
        step_ids = {step.value for step in STEP_ORDER}
        for step_id in self.answers.steps:
            if step_id not in step_ids:
                problems.append(f"{self._at('steps', step_id)}: no step {step_id!r}; steps are "
                                + ", ".join(step.value for step in STEP_ORDER))
        actions = {f"{step.id.value}/{action.id}" for step in plan.steps for action in step.actions}
        waved = {f"{step.id.value}/{action.id}" for step in plan.steps for action in step.actions
                 if getattr(action, "waves", None) is not None}

        def wave_key(key: str) -> bool:  # step/action/wave-N of a waved action
            head, _, wave = key.rpartition("/")
            return head in waved and wave.startswith("wave-") and wave[5:].isdigit()

        for section in ("on_failed_action", "on_interrupted", "on_wave", "manual"):
            table = getattr(self.answers, section)
            for key in table:
                if key != "default" and key not in actions and key not in step_ids and not wave_key(key):
                    problems.append(f"{self._at(section, key)}: no action {key!r} in the plan; write step/action, "
                                    f"e.g. {sorted(actions)[0] if actions else 'code/checkout'}")
        if problems:
            raise PlanError(problems, hint="fix the answers file")

    # ------------------------------------------------------------ answering

    def _keyed(self, table: dict[str, list[AnswerSpec]], request: DecisionRequested) -> AnswerSpec | None:
        from rollback_tui.engine.answers import pick

        wave = f"{request.step}/{request.action}/{request.subject}" if request.action and request.subject else ""
        for key in (wave, f"{request.step}/{request.action}", request.step, request.subject, "default"):
            if key and key in table:
                return pick(table[key], request.occurrence)
        return None

    def _answer(self, request: DecisionRequested) -> tuple[AnswerSpec | None, str, str]:
        """(answer, by, what the question was) for a request; answer None means the file has none."""
        from rollback_tui.engine.answers import AnswerSpec, pick

        kind = request.kind
        if kind == "input":
            table = self.answers.inputs if "approve" in request.options else self.answers.missing_inputs
            spec = self._keyed(table, request)
            if spec is None:
                default = "approve" if "approve" in request.options else "halt"
                spec = AnswerSpec(default, f"answers file: default for input {request.subject}",
                                  where=f"{self.answers.path}: inputs (default)")
            return spec, self.operator, f"input {request.subject}"
        if kind == "plan_review":
            spec = pick(self.answers.plan_review, request.occurrence) or AnswerSpec(
                "approve", "", where=f"{self.answers.path}: plan_review (default approve)")
            return spec, self.operator, "plan review"
        if kind == "approval":
            name, spec = self.answers.approvals.get(request.subject, ("", None))  # type: ignore[assignment]
            return spec, name, f"approval for role {request.subject}"
        steps = self.answers.steps.get(request.step) or self.answers.default_step
        if kind == "gate" and request.action:
            return self.answers.manual.get(f"{request.step}/{request.action}"), self.operator, \
                f"manual procedure {request.step}/{request.action}"
        if kind == "gate":
            return pick(steps, request.occurrence), self.operator, f"step {request.step}"
        if kind == "wave":
            return self._keyed(self.answers.on_wave, request), self.operator, \
                f"{request.subject.replace('-', ' ')} of {request.step}/{request.action}"
        if kind == "no_go" and request.action:  # after a no-go at a wave gate: its answer's `then`
            gate = self._keyed(self.answers.on_wave, request)
            return (gate.then if gate is not None else None), self.operator, \
                f"after no-go at {request.subject.replace('-', ' ')} of {request.step}/{request.action}"
        if kind == "no_go":
            gate = pick(steps, request.occurrence)
            then = gate.then if gate is not None else None
            return then, self.operator, f"after no-go of step {request.step}"
        if kind == "action_failed":
            return self._keyed(self.answers.on_failed_action, request), self.operator, \
                f"failed action {request.step}/{request.action}"
        if kind == "interrupted":
            return self._keyed(self.answers.on_interrupted, request), self.operator, \
                f"interrupted action {request.step}/{request.action}"
        return None, self.operator, kind

    async def decide(self, request: DecisionRequested) -> Decision:
        spec, by, what = self._answer(request)
        if spec is None:
            if "halt" in request.options:
                return Decision("halt", f"the answers file {self.answers.path} has no answer for {what}", by)
            raise PlanError([f"{self.answers.path}: no answer for {what}"],
                            hint=f"add one; possible here: {', '.join(request.options)}")
        if spec.choice not in request.options:
            raise PlanError([f"{spec.where}: {what}: {spec.choice!r} is not possible here; "
                             f"possible: {', '.join(request.options)}"],
                            hint="a failed verification allows no 'go': write override with a reason, or no_go"
                            if spec.choice == "go" else "")
        return Decision(spec.choice, spec.reason, by)
