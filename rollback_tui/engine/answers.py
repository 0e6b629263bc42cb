"""The answers file of drills and CI: every decision the procedure asks, written down in advance (YAML).

```yaml
operator: Dana Ops            # optional: the name decisions are recorded under (default: --operator)
inputs: confirm               # inputs the operator must confirm: confirm | halt | remediate (reason), or a mapping
                              #   input-id -> answer with an optional `default:` key
missing_inputs: halt          # an input found missing: halt | remediate (reason); or a mapping like `inputs`
plan_review: approve          # approve | {choice: reject, reason: ...}
approvals:                    # role id -> approver name, for every role of the plan
  devops-lead: Dana Ops
  tech-lead: Terry Tech
steps:                        # step id -> its go/no-go answer, or a list: one entry per time the question is asked
  assess: go
  flags:
    - {choice: no_go, reason: EU flag still on, then: retry}   # then: retry | reassess (reason) | abort | halt
    - go
  code: {choice: override, reason: version endpoint is cached for 60 s}
default_step: go              # steps not listed
on_failed_action: halt        # retry | retry_failed | manual (reason) | abort (reason) | halt; or step/action -> answer
on_interrupted: rerun         # rerun | verify_only | mark_done (reason) | abort | halt; or step/action -> answer
on_wave:                      # the go / no-go between the waves of a waved action: go | no_go (then: ...) |
  code/restart-fleet:         #   retry_failed | exclude_failed (reason) | abort | halt; a list answers the n-th
    - go                      #   time a wave's question is asked; keys: step/action/wave-N, step/action, step,
  default: go                 #   default (none: a wave gate halts the drill, naming the action and the wave)
manual:                       # notes for manual procedures (step/action -> note); without one the drill halts there
  database/restore-replica: restored by hand from the 02:00 snapshot
```

Every answer is a choice, or `{choice, reason}`; a list gives one answer per occurrence of the question (the last
entry repeats), so a `retry` that repeats for ever ends the session blocked when the step's budget of attempts is
spent (the plan's `budget: {attempts: N}`, default 5). A choice that needs a reason (override, abort, manual,
mark_done, reject, remediate, reassess; rollback_tui/procedure/choices.py) must have one; a `halt` without one is
recorded as halted by the answers file, with the answer's `file:line:col`. Errors name `file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollback_tui.errors import PlanError
from rollback_tui.people import person_key
from rollback_tui.plan.types import NAME_MAX, TEXT_MAX
from rollback_tui.plan.yamlpos import Path_, YamlDocument
from rollback_tui.procedure.choices import GATES, NEEDS_REASON
from rollback_tui.safeio import FileRefused, read_regular

def _of(*gates: str) -> set[str]:
    return {option for gate in gates for option in GATES[gate].options}


#: What each section may answer: the options of the gates it answers (a step's answer may name its no-go's follow-up:
#: `retry`, `reassess` or `halt` there means no-go, then that).
_CHOICES: dict[str, set[str]] = {
    "inputs": {"confirm"} | _of("input_confirm"),
    "missing_inputs": _of("input_missing"),
    "plan_review": _of("plan_review"),
    "steps": _of("step", "step_failed_check", "no_go"),
    "default_step": _of("step", "step_failed_check", "no_go"),
    "on_failed_action": _of("action_failed"),
    "on_interrupted": _of("interrupted"),
    "on_wave": _of("wave", "no_go"),
    "then": _of("no_go"),
}
_TOP = {"operator", "inputs", "missing_inputs", "plan_review", "approvals", "steps", "default_step",
        "on_failed_action", "on_interrupted", "on_wave", "manual"}


@dataclass
class AnswerSpec:
    """One answer and where it was written."""

    choice: str
    reason: str = ""
    then: AnswerSpec | None = None
    where: str = ""
    """`file:line:col` of the answer, for messages."""


@dataclass
class Answers:
    """A parsed answers file."""

    path: Path
    operator: str = ""
    inputs: dict[str, list[AnswerSpec]] = field(default_factory=dict)
    missing_inputs: dict[str, list[AnswerSpec]] = field(default_factory=dict)
    plan_review: list[AnswerSpec] = field(default_factory=list)
    approvals: dict[str, tuple[str, AnswerSpec]] = field(default_factory=dict)
    """role id -> (approver name, answer: approve or reject)."""
    steps: dict[str, list[AnswerSpec]] = field(default_factory=dict)
    default_step: list[AnswerSpec] = field(default_factory=list)
    on_failed_action: dict[str, list[AnswerSpec]] = field(default_factory=dict)
    on_interrupted: dict[str, list[AnswerSpec]] = field(default_factory=dict)
    on_wave: dict[str, list[AnswerSpec]] = field(default_factory=dict)
    """step/action/wave-N, step/action, step or `default` -> the wave gate's answer(s) (a no_go may have `then`)."""
    manual: dict[str, AnswerSpec] = field(default_factory=dict)
    positions: dict[Path_, str] = field(default_factory=dict)
    """path -> `file:line:col` of the value there."""
    key_positions: dict[Path_, str] = field(default_factory=dict)
    """path -> `file:line:col` of the key that names it."""


def pick(specs: list[AnswerSpec], occurrence: int) -> AnswerSpec | None:
    """The answer for the n-th time a question is asked (the last one repeats)."""
    if not specs:
        return None
    return specs[min(max(occurrence, 1), len(specs)) - 1]


class _Parser:
    def __init__(self, text: str, label: str) -> None:
        self.doc = YamlDocument(text)
        self.label = label
        self.problems: list[tuple[int, int, str]] = [(p.line, p.col, p.message) for p in self.doc.problems]

    def where(self, path: Path_) -> str:
        line, col = self.doc.positions.value(path)
        return f"{self.label}:{line}:{col}"

    def problem(self, path: Path_, message: str, *, key: bool = False) -> None:
        line, col = self.doc.positions.key(path) if key else self.doc.positions.value(path)
        self.problems.append((line, col, message))

    def answer(self, value: Any, path: Path_, section: str, *, allow_then: bool = False) -> AnswerSpec | None:
        allowed = _CHOICES[section]
        if isinstance(value, str):
            choice, reason, then_value = value.strip(), "", None
        elif isinstance(value, dict):
            extra = set(value) - {"choice", "reason", "then"}
            for key in sorted(extra, key=str):
                self.problem(path + (key,), f"unknown key {key!r}: an answer has choice, reason"
                             + (", then" if allow_then else ""), key=True)
            if "then" in value and not allow_then:
                self.problem(path + ("then",), "'then' only follows a no_go answer of a step", key=True)
            choice = value.get("choice")
            reason = value.get("reason", "")
            then_value = value.get("then") if allow_then else None
            if not isinstance(choice, str):
                self.problem(path, "an answer needs 'choice' (a word such as go, no_go, abort)")
                return None
            if not isinstance(reason, str):
                self.problem(path + ("reason",), "a reason is text")
                reason = ""
            elif len(reason) > TEXT_MAX:
                self.problem(path + ("reason",), f"a reason of {len(reason):,} characters is too long "
                                                 f"(at most {TEXT_MAX:,})")
                reason = ""
        else:
            self.problem(path, f"expected an answer (one of: {', '.join(sorted(allowed))}) or {{choice, reason}}")
            return None
        if choice not in allowed:
            self.problem(path, f"{choice!r} is not an answer here; use one of: {', '.join(sorted(allowed))}")
            return None
        if choice == "confirm":
            choice = "approve"
        spec = AnswerSpec(choice, reason.strip(), where=self.where(path))
        if choice == "halt" and not spec.reason:
            spec.reason = f"halted by the answers file ({spec.where})"
        if choice in NEEDS_REASON and not spec.reason:
            self.problem(path, f"{choice!r} needs a reason: write {{choice: {choice}, reason: ...}}")
        if allow_then and choice in ("retry", "reassess", "halt"):
            # shorthand: `retry` at a gate means "no-go, then retry"
            spec = AnswerSpec("no_go", "", then=AnswerSpec(choice, spec.reason, where=spec.where), where=spec.where)
        elif then_value is not None:
            if choice != "no_go":
                self.problem(path + ("then",), "'then' only follows choice no_go", key=True)
            elif isinstance(then_value, (str, dict)):
                spec.then = self.answer(then_value, path + ("then",), "then")
            else:
                self.problem(path + ("then",), "'then' is a choice or {choice, reason}")
        return spec

    def answers(self, value: Any, path: Path_, section: str, *, allow_then: bool = False) -> list[AnswerSpec]:
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            self.problem(path, "an empty list: give at least one answer")
        out = []
        for index, item in enumerate(items):
            spec = self.answer(item, path + (index,) if isinstance(value, list) else path, section,
                               allow_then=allow_then)
            if spec is not None:
                out.append(spec)
        return out

    def per_key(self, value: Any, path: Path_, section: str, *, allow_then: bool = False
                ) -> dict[str, list[AnswerSpec]]:
        """An answer for all, or a mapping name -> answer(s) with an optional `default`."""
        if isinstance(value, dict) and "choice" not in value:
            return {str(key): self.answers(item, path + (key,), section, allow_then=allow_then)
                    for key, item in value.items()}
        return {"default": self.answers(value, path, section, allow_then=allow_then)}


def parse_answers(text: str, path: Path) -> Answers:
    """Parse answers text; PlanError lists every problem as `file:line:col: message`."""
    parser = _Parser(text, str(path))
    answers = Answers(path=path)
    data = parser.doc.data
    if parser.doc.problems:
        raise PlanError([f"{path}:{line}:{col}: {message}" for line, col, message in parser.problems])
    if not isinstance(data, dict):
        raise PlanError([f"{path}:1:1: an answers file is a mapping (steps, approvals, ...)"])
    for key in data:
        if key not in _TOP:
            parser.problem((key,), f"unknown key {key!r}; an answers file has: {', '.join(sorted(_TOP))}", key=True)
    if isinstance(data.get("operator"), str) and len(data["operator"]) > NAME_MAX:
        parser.problem(("operator",), f"operator: a name of at most {NAME_MAX} characters")
    elif isinstance(data.get("operator"), str):
        answers.operator = data["operator"].strip()
    elif "operator" in data:
        parser.problem(("operator",), "operator is a name")
    if "inputs" in data:
        answers.inputs = parser.per_key(data["inputs"], ("inputs",), "inputs")
    if "missing_inputs" in data:
        answers.missing_inputs = parser.per_key(data["missing_inputs"], ("missing_inputs",), "missing_inputs")
    if "plan_review" in data:
        answers.plan_review = parser.answers(data["plan_review"], ("plan_review",), "plan_review")
    approvals = data.get("approvals", {})
    if not isinstance(approvals, dict):
        parser.problem(("approvals",), "approvals maps a role id to the approver's name")
        approvals = {}
    for role, value in approvals.items():
        where = parser.where(("approvals", role))
        name = value if isinstance(value, str) else value.get("name") if isinstance(value, dict) else None
        if isinstance(name, str) and len(name) > NAME_MAX:
            parser.problem(("approvals", role), f"an approver's name of {len(name):,} characters is too long "
                                                f"(at most {NAME_MAX})")
            continue
        if isinstance(name, str) and name.strip() and not person_key(name):
            parser.problem(("approvals", role), "the approver's name is only invisible characters; write the name")
            continue
        if isinstance(value, str) and value.strip():
            answers.approvals[str(role)] = (value.strip(), AnswerSpec("approve", where=where))
        elif isinstance(value, dict) and isinstance(value.get("name"), str):
            extra = set(value) - {"name", "choice", "reason"}
            for key in extra:
                parser.problem(("approvals", role, key), f"unknown key {key!r}: use name, choice, reason", key=True)
            spec = parser.answer({k: v for k, v in value.items() if k != "name"} | {"choice": value.get("choice", "approve")},
                                 ("approvals", role), "plan_review")
            if spec is not None:
                answers.approvals[str(role)] = (value["name"].strip(), spec)
        else:
            parser.problem(("approvals", role), "give the approver's name, or {name, choice: reject, reason}")
    steps = data.get("steps", {})
    if not isinstance(steps, dict):
        parser.problem(("steps",), "steps maps a step id (assess, flags, ...) to its answer")
        steps = {}
    for step, value in steps.items():
        answers.steps[str(step)] = parser.answers(value, ("steps", step), "steps", allow_then=True)
    if "default_step" in data:
        answers.default_step = parser.answers(data["default_step"], ("default_step",), "default_step", allow_then=True)
    else:
        answers.default_step = [AnswerSpec("go", where=f"{path}: default_step (default go)")]
    if "on_failed_action" in data:
        answers.on_failed_action = parser.per_key(data["on_failed_action"], ("on_failed_action",), "on_failed_action")
    if "on_interrupted" in data:
        answers.on_interrupted = parser.per_key(data["on_interrupted"], ("on_interrupted",), "on_interrupted")
    if "on_wave" in data:
        answers.on_wave = parser.per_key(data["on_wave"], ("on_wave",), "on_wave", allow_then=True)
    manual = data.get("manual", {})
    if not isinstance(manual, dict):
        parser.problem(("manual",), "manual maps step/action to the note of what was done by hand")
        manual = {}
    for key, note in manual.items():
        if isinstance(note, str) and len(note) > TEXT_MAX:
            parser.problem(("manual", key), f"a note of at most {TEXT_MAX:,} characters")
        elif isinstance(note, str) and note.strip():
            answers.manual[str(key)] = AnswerSpec("manual", note.strip(), where=parser.where(("manual", key)))
        else:
            parser.problem(("manual", key), "a manual procedure needs a note of what was done by hand")
    answers.positions = {path_: f"{path}:{line}:{col}" for path_, (line, col) in parser.doc.positions.values.items()}
    answers.key_positions = {path_: f"{path}:{line}:{col}" for path_, (line, col) in parser.doc.positions.keys.items()}
    if parser.problems:
        raise PlanError([f"{path}:{line}:{col}: {message}" for line, col, message in sorted(set(parser.problems))],
                        hint="fix the answers file; its format is described in rollback_tui/engine/answers.py")
    return answers


def load_answers(path: Path) -> Answers:
    """Read and parse an answers file."""
    try:
        text = read_regular(Path(path), what="answers file").decode("utf-8")  # no FIFO or device, at most 10 MB
    except FileNotFoundError:
        raise PlanError([f"{path}: no such answers file"], hint="give --answers FILE or --answers auto") from None
    except FileRefused as exc:
        raise PlanError([str(exc)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"]) from None
    return parse_answers(text, Path(path))
