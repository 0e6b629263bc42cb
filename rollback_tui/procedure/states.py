"""Step, action and host states as data, and the one table of allowed step transitions (an illegal move raises)."""

from __future__ import annotations

from enum import StrEnum

from rollback_tui.errors import RollbackError


class StepState(StrEnum):
    """Where one step of the procedure stands."""

    pending = "pending"
    """Not started (or, after a reassess, waiting to run again)."""
    running = "running"
    awaiting_decision = "awaiting_decision"
    done = "done"
    manual = "manual"
    """Done, with work completed by hand."""
    failed = "failed"
    retrying = "retrying"
    """A retry was decided; the step (or action) has not started again yet."""
    not_applicable = "not_applicable"
    """Outside the plan: the plan has no such step."""
    interrupted = "interrupted"
    aborted = "aborted"
    announcing = "announcing"
    """The step's go is given; the notices that announce it (actions with after_decision) run."""


S = StepState

#: Allowed moves. Staying in the same state is not a move and is always allowed.
TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    # failed: a reassess that would go past a step's budget stops the step that asked for it (runner budgets)
    S.pending: frozenset({S.running, S.not_applicable, S.failed}),
    # work ends in a question (gate, failed or interrupted action), a failure, or the session stopping: nothing
    # finishes without a decision
    S.running: frozenset({S.awaiting_decision, S.failed, S.interrupted}),
    # an answer finishes the step (go, override, the last approval), sends it back to work (manual completion, verify
    # only), to a failure (no-go, halt, reject), to a retry, to an abort, or back to pending (reassess). A session
    # stopped while it waits leaves the step waiting: the same question is asked again after the resume.
    # A notice of the decision (an action with after_decision) starts once the go is given: announcing.
    S.awaiting_decision: frozenset({S.done, S.manual, S.running, S.announcing, S.failed, S.retrying, S.aborted,
                                    S.pending}),
    # a notice ran: the step finishes, or the notice failed (then its question), or the session stopped
    S.announcing: frozenset({S.done, S.manual, S.failed, S.awaiting_decision, S.interrupted}),
    # a failure is followed by its question, or by an automatic retry of the action
    S.failed: frozenset({S.awaiting_decision, S.retrying}),
    # failed: a retry that would go past the step's budget stops the step instead
    S.retrying: frozenset({S.running, S.announcing, S.interrupted, S.failed}),
    S.interrupted: frozenset({S.running, S.announcing, S.awaiting_decision}),
    # a finished step runs again on the next pass through steps 1-7 after a reassess
    S.done: frozenset({S.running}),
    S.manual: frozenset({S.running}),
    S.not_applicable: frozenset(),
    S.aborted: frozenset(),
}

TERMINAL: frozenset[StepState] = frozenset(state for state, nexts in TRANSITIONS.items() if not nexts)
#: A step that finished its work (the scope it owns is rolled back).
FINISHED: frozenset[StepState] = frozenset({S.done, S.manual})


class IllegalTransition(RollbackError):
    """A step was asked to move to a state the table does not allow: a bug in the runner, or a corrupt journal."""


def transition(current: StepState, new: StepState, where: str = "a step") -> StepState:
    """The new state, or IllegalTransition when the table does not allow the move."""
    if new == current or new in TRANSITIONS[current]:
        return new
    allowed = ", ".join(sorted(state.value for state in TRANSITIONS[current])) or "nothing (terminal)"
    raise IllegalTransition(f"{where} cannot go from {current.value} to {new.value}; from {current.value}: {allowed}")


class ActionState(StrEnum):
    """Where one action stands: pending or running, then the status of its last attempt (ActionFinished)."""

    pending = "pending"
    running = "running"
    ok = "ok"
    failed = "failed"
    timeout = "timeout"
    cancelled = "cancelled"
    interrupted = "interrupted"
    manual = "manual"
    skipped = "skipped"
    """A manual procedure that was not done (the operator aborted or halted instead)."""


class HostState(StrEnum):
    """Where one host of an action stands."""

    pending = "pending"
    running = "running"
    ok = "ok"
    failed = "failed"
    unreachable = "unreachable"
    timeout = "timeout"
    cancelled = "cancelled"
    excluded = "excluded"
    """Left out of a waved action by the operator, with a reason: never run again, not counted against the budget."""


H = HostState
#: Allowed moves of a host of a waved action. A host runs from pending; a finished host runs again only on a retry
#: (its failed hosts, or the whole action: the operator's choice); an interrupted wave's host that had not finished
#: stays running until it runs again or its state is read back; only a failed host is excluded, and for good.
HOST_TRANSITIONS: dict[HostState, frozenset[HostState]] = {
    H.pending: frozenset({H.running}),
    H.running: frozenset({H.ok, H.failed, H.unreachable, H.timeout, H.cancelled}),
    H.ok: frozenset({H.running}),
    H.failed: frozenset({H.running, H.excluded}),
    H.unreachable: frozenset({H.running, H.excluded}),
    H.timeout: frozenset({H.running, H.excluded}),
    H.cancelled: frozenset({H.running, H.excluded}),
    H.excluded: frozenset(),
}
#: Host states that count against a failure budget.
HOST_FAILS: frozenset[HostState] = frozenset({H.failed, H.unreachable, H.timeout, H.cancelled})


def host_transition(current: HostState, new: HostState, where: str = "a host") -> HostState:
    """The new state, or IllegalTransition when HOST_TRANSITIONS does not allow the move."""
    if new == current and current != H.excluded or new in HOST_TRANSITIONS[current]:
        return new
    allowed = ", ".join(sorted(state.value for state in HOST_TRANSITIONS[current])) or "nothing (excluded for good)"
    raise IllegalTransition(f"{where} cannot go from {current.value} to {new.value}; from {current.value}: {allowed}")


#: What an ActionFinished (and one of its hosts) may report: the states after an attempt.
ACTION_STATUSES: tuple[str, ...] = tuple(s.value for s in ActionState if s not in (ActionState.pending,
                                                                                   ActionState.running))
HOST_STATUSES: tuple[str, ...] = tuple(s.value for s in HostState if s not in (HostState.pending, HostState.running,
                                                                               HostState.excluded))

#: How a StepFinished status sets the step's state.
STEP_FINISHED: dict[str, StepState] = {"done": S.done, "manual": S.manual, "failed": S.failed,
                                       "aborted": S.aborted, "not_applicable": S.not_applicable,
                                       "skipped": S.not_applicable}
#: ActionFinished statuses that fail the step, and those that interrupt it.
ACTION_FAILS: frozenset[str] = frozenset({"failed", "timeout"})
ACTION_INTERRUPTS: frozenset[str] = frozenset({"interrupted", "cancelled"})
