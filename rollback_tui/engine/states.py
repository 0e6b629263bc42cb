"""Step states as data: the enum, the table of allowed transitions, and the fold of events into procedure state.

The runner never sets a step state directly: every event it records goes through `ProcedureState.apply`, which
moves steps only through `transition`, so the table below is the single authority on what may follow what. The
same fold rebuilds the state from a journal on resume, and a viewer may use it to draw the checklist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from rollback_tui.engine.events import (
    ActionFinished,
    ActionStarted,
    ApprovalGiven,
    DecisionMade,
    DecisionRequested,
    Event,
    SessionFinished,
    SessionInterrupted,
    SessionResumed,
    SessionStarted,
    StepFinished,
    StepStarted,
    WindowWarning,
)
from rollback_tui.errors import RollbackError
from rollback_tui.plan.types import STEP_ORDER


class StepState(str, Enum):
    """Where one step of the procedure stands."""

    pending = "pending"
    running = "running"
    awaiting_decision = "awaiting_decision"
    done = "done"
    failed = "failed"
    retrying = "retrying"
    skipped = "skipped"
    """Not applicable: the plan has no such step."""
    interrupted = "interrupted"
    aborted = "aborted"
    announcing = "announcing"
    """The step's go is given; the notices that announce it (after_decision actions) run."""


S = StepState

#: Allowed moves. Staying in the same state is not a move and is always allowed.
TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    # failed: a reassess that would go past a step's budget stops the step that asked for it (runner budgets)
    S.pending: frozenset({S.running, S.skipped, S.aborted, S.failed}),
    S.running: frozenset({S.awaiting_decision, S.failed, S.interrupted, S.aborted}),
    # a decision resolves into work again (manual completion, verify only), done, a failure (no-go),
    # a retry, an abort, back to pending (reassess), or the session stopping while it waits
    S.awaiting_decision: frozenset({S.running, S.done, S.failed, S.retrying, S.aborted, S.pending, S.interrupted,
                                    S.announcing}),
    # a notice of the decision ran: done, or it failed (the operator is asked), or the session stopped
    S.announcing: frozenset({S.done, S.failed, S.interrupted, S.aborted, S.awaiting_decision}),
    S.failed: frozenset({S.awaiting_decision, S.retrying, S.pending, S.aborted}),
    # failed: a retry that would go past the step's budget stops the step instead
    S.retrying: frozenset({S.running, S.aborted, S.interrupted, S.failed, S.announcing}),
    S.interrupted: frozenset({S.running, S.awaiting_decision, S.retrying, S.aborted, S.announcing}),
    # reassess sends the procedure back to step 1: finished steps run again
    S.done: frozenset({S.pending, S.retrying}),
    S.skipped: frozenset(),
    S.aborted: frozenset(),
}

TERMINAL: frozenset[StepState] = frozenset(state for state, nexts in TRANSITIONS.items() if not nexts)


class IllegalTransition(RollbackError):
    """A step was asked to move to a state the table does not allow (a bug in the runner or a corrupt journal)."""


def transition(current: StepState, new: StepState) -> StepState:
    """The new state, or IllegalTransition when the table does not allow the move."""
    if new == current or new in TRANSITIONS[current]:
        return new
    allowed = ", ".join(sorted(state.value for state in TRANSITIONS[current])) or "nothing (terminal)"
    raise IllegalTransition(f"a step cannot go from {current.value} to {new.value}; from {current.value}: {allowed}")


# ---------------------------------------------------------------- the fold

_RETRY = {"retry", "retry_failed", "rerun"}
_BACK_TO_WORK = {"manual", "mark_done", "verify_only"}
_STEP_FINISHED = {"done": S.done, "manual": S.done, "failed": S.failed, "aborted": S.aborted,
                  "skipped": S.skipped, "not_applicable": S.skipped}


@dataclass
class ProcedureState:
    """Everything known about a session from its events (the runner's view and resume's starting point)."""

    steps: dict[str, StepState] = field(default_factory=lambda: {step.value: S.pending for step in STEP_ORDER})
    step_attempts: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0
    started: SessionStarted | None = None
    finished: SessionFinished | None = None
    current_step: str = ""
    pending_request: DecisionRequested | None = None
    """A question asked and not answered yet."""
    running_actions: dict[tuple[str, str], ActionStarted] = field(default_factory=dict)
    """Actions started and not finished: after a crash these come back as interrupted."""
    approvals: dict[str, str] = field(default_factory=dict)
    """role id -> approver name."""
    warned: set[int] = field(default_factory=set)
    """Window warnings already given (percent)."""
    interruptions: int = 0
    resumes: int = 0
    reopens: int = 0

    @property
    def started_at(self) -> datetime | None:
        return self.started.ts if self.started else None

    @property
    def window(self) -> float:
        return float(self.started.outline.get("window", 0.0)) if self.started else 0.0

    def move(self, step: str, new: StepState) -> None:
        self.steps[step] = transition(self.steps[step], new)

    def apply(self, event: Event | Any) -> None:
        """Fold one event in; raises IllegalTransition on a move the table refuses."""
        if event.seq:
            self.last_seq = event.seq
        kind = event.type
        if kind == "action_output" or kind == "health_sample" or kind == "verification":
            return  # the hot events change no step state
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

    # ------------------------------------------------------------ per event type

    def _session_started(self, event: SessionStarted) -> None:
        self.started = event

    def _session_resumed(self, event: SessionResumed) -> None:
        self.resumes += 1

    def _session_interrupted(self, event: SessionInterrupted) -> None:
        self.interruptions += 1
        for step, state in self.steps.items():
            if state in (S.running, S.retrying):  # a step waiting for a decision is simply asked again
                self.move(step, S.interrupted)

    def _session_finished(self, event: SessionFinished) -> None:
        self.finished = event

    def _session_reopened(self, event: Any) -> None:
        self.finished = None  # a blocked session goes on; its steps move on from where the blocked ending left them
        self.reopens += 1

    def _step_started(self, event: StepStarted) -> None:
        self.current_step = event.step
        self.step_attempts[event.step] = event.attempt
        if self.steps[event.step] not in (S.pending, S.retrying, S.interrupted):
            self.move(event.step, S.retrying)
        self.move(event.step, S.running)

    def _step_finished(self, event: StepFinished) -> None:
        self.move(event.step, _STEP_FINISHED[event.status])

    def _action_started(self, event: ActionStarted) -> None:
        self.running_actions[(event.step, event.action)] = event
        if self.steps[event.step] == S.failed:  # an automatic retry after a failed attempt
            self.move(event.step, S.retrying)
        self.move(event.step, S.announcing if event.after_decision else S.running)

    def _action_finished(self, event: ActionFinished) -> None:
        self.running_actions.pop((event.step, event.action), None)
        if event.status in ("failed", "timeout"):
            self.move(event.step, S.failed)
        elif event.status in ("interrupted", "cancelled"):
            self.move(event.step, S.interrupted)

    def _decision_requested(self, event: DecisionRequested) -> None:
        self.pending_request = event
        if event.step:
            self.move(event.step, S.awaiting_decision)

    def _decision_made(self, event: DecisionMade) -> None:
        self.pending_request = None
        step, choice = event.step, event.choice
        if not step:
            return
        if choice == "reassess":
            for other, state in self.steps.items():
                if state not in TERMINAL and state != S.pending:
                    self.move(other, S.pending)
        elif choice == "abort":
            self.move(step, S.aborted)
        elif choice in _RETRY:
            self.move(step, S.retrying)
        elif choice in _BACK_TO_WORK:
            self.move(step, S.running)
        elif choice in ("no_go", "halt", "reject"):
            self.move(step, S.failed)

    def _approval_given(self, event: ApprovalGiven) -> None:
        self.approvals[event.role] = event.name

    def _window_warning(self, event: WindowWarning) -> None:
        self.warned.add(event.percent)


_HANDLERS = {
    "session_started": ProcedureState._session_started,
    "session_resumed": ProcedureState._session_resumed,
    "session_interrupted": ProcedureState._session_interrupted,
    "session_finished": ProcedureState._session_finished,
    "session_reopened": ProcedureState._session_reopened,
    "step_started": ProcedureState._step_started,
    "step_finished": ProcedureState._step_finished,
    "action_started": ProcedureState._action_started,
    "action_finished": ProcedureState._action_finished,
    "decision_requested": ProcedureState._decision_requested,
    "decision_made": ProcedureState._decision_made,
    "approval_given": ProcedureState._approval_given,
    "window_warning": ProcedureState._window_warning,
}


def fold(events: Iterable[Event]) -> ProcedureState:
    """The procedure state after these events (in journal order)."""
    state = ProcedureState()
    for event in events:
        state.apply(event)
    return state
