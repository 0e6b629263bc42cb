"""Every decision of the procedure, once: the choices (key, words, reason, confirmation), the kinds and each gate's options.

The runner offers exactly `Gate.offer(...)`; the request's `needs_reason` is `Gate.reasons(...)`; the answers file
accepts the choices of the gates its section answers; the cockpit draws keys and words from `CHOICES` and asks a
confirmation for `destructive` choices. A choice never offered by a gate is not in this table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """One answer an operator can give."""

    id: str
    key: str
    """The cockpit key (binding id `decide.<id>`, remappable)."""
    words: str
    """What the decision pane says next to the key."""
    short: str
    """The footer's shorter words (80 columns must hold every offered key)."""
    reason: bool
    """A reason (or a note of what was done by hand) is required."""
    destructive: bool
    """It changes the outcome or passes a safety check: the cockpit asks for a confirmation first."""
    meaning: str


def _c(id_: str, key: str, words: str, short: str, reason: bool, destructive: bool, meaning: str) -> Choice:
    return Choice(id_, key, words, short, reason, destructive, meaning)


CHOICES: dict[str, Choice] = {c.id: c for c in (
    _c("go", "g", "go", "go", False, False, "proceed to the next step"),
    _c("no_go", "n", "no-go", "no-go", False, False, "the step's answer is no: then retry, reassess, abort or halt"),
    _c("retry", "r", "retry all", "retry", False, False, "run the step's (or a failed action's) work again"),
    _c("retry_failed", "f", "retry failed hosts", "retry failed", False, False,
       "run a failed action again on the failed hosts only"),
    _c("reassess", "e", "reassess (back to step 1)", "reassess", True, True, "back to step 1 with what was learned"),
    _c("manual", "m", "done by hand", "by hand", True, True, "the operator did it by hand (note required)"),
    _c("override", "o", "override failed check", "override", True, True,
       "go on despite a failed verification (reason required)"),
    _c("abort", "a", "abort rollback", "abort", True, True, "stop the rollback: aborted or partial (reason required)"),
    _c("approve", "y", "approve", "approve", False, False, "plan review approved, input confirmed, role approval"),
    _c("reject", "x", "reject", "reject", True, True, "plan review or role approval rejected (blocked)"),
    _c("remediate", "p", "take remediation path", "remediate", True, False, "a missing input: take its remediation"),
    _c("halt", "h", "halt (blocked)", "halt", True, True, "stop as blocked, waiting for the issue to be resolved"),
    _c("rerun", "u", "run it again", "rerun", False, False, "an interrupted action: run it again"),
    _c("verify_only", "v", "verify only", "verify only", False, False,
       "an interrupted action: only read back the state"),
    _c("mark_done", "d", "mark done by hand", "mark done", True, True,
       "an interrupted action: the operator completed it by hand"),
    _c("exclude_failed", "c", "exclude failed hosts", "exclude", True, True,
       "a waved action: leave its failed hosts out for good (reason required; not counted against the budget)"),
)}

CHOICE_IDS: tuple[str, ...] = tuple(CHOICES)
#: The answers that end the procedure wherever a gate offers them: abort (aborted or partial), halt (blocked).
ENDS_PROCEDURE: frozenset[str] = frozenset({"abort", "halt"})
NEEDS_REASON: frozenset[str] = frozenset(c.id for c in CHOICES.values() if c.reason)
DESTRUCTIVE: frozenset[str] = frozenset(c.id for c in CHOICES.values() if c.destructive)

#: Decision kind -> the title of its pane.
KINDS: dict[str, str] = {
    "input": "Required input",
    "plan_review": "Plan review",
    "approval": "Approval",
    "gate": "Go / no-go",
    "action_failed": "An action failed",
    "interrupted": "An action was interrupted",
    "no_go": "No-go: what next?",
    "wave": "Wave go / no-go",
}
KIND_IDS: tuple[str, ...] = tuple(KINDS)


@dataclass(frozen=True)
class Gate:
    """One question of the procedure: its decision kind and the options offered, in order."""

    name: str
    kind: str
    options: tuple[str, ...]
    conditional: frozenset[str] = frozenset()
    """Options offered only when the situation allows them (named in `offer(allow=...)`)."""

    def offer(self, allow: Iterable[str] = ()) -> list[str]:
        """The options to offer: every unconditional one, and the conditional ones in `allow`."""
        allowed = set(allow)
        unknown = allowed - self.conditional
        if unknown:
            raise ValueError(f"gate {self.name}: {sorted(unknown)} are not conditional options of it")
        return [option for option in self.options if option not in self.conditional or option in allowed]

    def reasons(self, options: Iterable[str]) -> list[str]:
        """Which of these options need a reason."""
        return [option for option in options if option in NEEDS_REASON]


def _g(name: str, kind: str, *options: str, conditional: Iterable[str] = ()) -> Gate:
    return Gate(name, kind, tuple(options), frozenset(conditional))


GATES: dict[str, Gate] = {g.name: g for g in (
    _g("input_confirm", "input", "approve", "halt", "remediate", conditional={"remediate"}),
    _g("input_missing", "input", "remediate", "halt"),
    _g("plan_review", "plan_review", "approve", "reject"),
    _g("approval", "approval", "approve", "reject"),
    _g("step", "gate", "go", "no_go", "abort"),
    _g("step_failed_check", "gate", "override", "no_go", "abort"),
    _g("manual_procedure", "gate", "manual", "abort", "halt"),
    _g("no_go", "no_go", "retry", "reassess", "abort", "halt"),
    _g("action_failed", "action_failed", "retry", "retry_failed", "exclude_failed", "manual", "abort", "halt",
       conditional={"retry_failed", "exclude_failed"}),
    _g("interrupted", "interrupted", "rerun", "verify_only", "mark_done", "abort", "halt"),
    _g("wave", "wave", "go", "no_go", "retry_failed", "exclude_failed", "abort", "halt",
       conditional={"retry_failed", "exclude_failed"}),
)}


def offered(kinds: Iterable[str] | None = None) -> frozenset[str]:
    """Every option some gate (of these decision kinds) may offer."""
    wanted = set(kinds) if kinds is not None else None
    return frozenset(option for gate in GATES.values() if wanted is None or gate.kind in wanted
                     for option in gate.options)


def gate(name: str) -> Gate:
    return GATES[name]
