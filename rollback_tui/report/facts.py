"""One pass over the events: everything the report's human sections are rendered from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollback_tui.procedure.fold import SessionState
from rollback_tui.procedure.states import IllegalTransition, StepState
from rollback_tui.procedure.steps import STEP_IDS, Scope
from rollback_tui.record import events as ev
from rollback_tui.record.events import Event
from rollback_tui.record.lightevents import OutputRef
from rollback_tui.report.hosts import fold_waved

SCOPES = tuple(scope.value for scope in Scope)
#: A step state as the report words it (the others by their own name).
STATUS_WORDS = {StepState.pending: "not started", StepState.awaiting_decision: "awaiting decision",
                StepState.not_applicable: "not_applicable"}


@dataclass
class ActionRun:
    started: ev.ActionStarted
    finished: ev.ActionFinished | None = None
    output_lines: int = 0


@dataclass
class StepFacts:
    step: str
    outline: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    first_started: datetime | None = None
    finishes: list[ev.StepFinished] = field(default_factory=list)
    runs: list[ActionRun] = field(default_factory=list)
    verifications: list[ev.Verification] = field(default_factory=list)
    output_lines: int = 0
    state: StepState = StepState.pending
    """The step's state in the procedure's one fold (the cockpit shows the same)."""

    @property
    def status(self) -> str:
        if not self.outline.get("applicable", True):
            return "not_applicable"
        return STATUS_WORDS.get(self.state, self.state.value)

    @property
    def title(self) -> str:
        return str(self.outline.get("title") or self.step)

    @property
    def completed_at(self) -> datetime | None:
        """When the step last finished with its work done (by the tool or by hand)."""
        for finish in reversed(self.finishes):
            if finish.status in ("done", "manual"):
                return finish.ts
        return None


@dataclass
class Decision:
    made: ev.DecisionMade
    request: ev.DecisionRequested | None


@dataclass
class Facts:
    started: ev.SessionStarted | None = None
    finished: ev.SessionFinished | None = None
    """The last end: after a reopen, the blocked end is in `endings` and the later outcome here."""
    endings: list[ev.SessionFinished] = field(default_factory=list)
    reopens: list[ev.SessionReopened] = field(default_factory=list)
    resumes: list[ev.SessionResumed] = field(default_factory=list)
    interruptions: list[ev.SessionInterrupted] = field(default_factory=list)
    inputs: list[ev.InputChecked] = field(default_factory=list)
    reviews: list[ev.PlanReviewed] = field(default_factory=list)
    approvals: list[ev.ApprovalGiven] = field(default_factory=list)
    steps: dict[str, StepFacts] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    health_changes: list[ev.HealthChanged] = field(default_factory=list)
    alerts: list[ev.HealthAlert] = field(default_factory=list)
    window_warnings: list[ev.WindowWarning] = field(default_factory=list)
    signals: list[ev.Signal] = field(default_factory=list)
    health_now: dict[str, ev.HealthChanged] = field(default_factory=dict)
    state: SessionState = field(default_factory=SessionState)
    """The procedure's one fold of the same events: step states, pending question, ending."""
    problems: list[str] = field(default_factory=list)
    """Moves of the record the procedure's table refuses (a bug or a hand-edited journal)."""
    waved: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(step, action) -> the per-host record of a waved action (report/hosts.py)."""
    count: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None

    @property
    def outline(self) -> dict[str, Any]:
        return dict(self.started.outline) if self.started else {}

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.outline.get("metadata")
        return dict(meta) if isinstance(meta, dict) else {}

    @property
    def exit_state(self) -> str:
        return self.finished.exit_state if self.finished else "unfinished"

    def step(self, step_id: str) -> StepFacts:
        if step_id not in self.steps:
            self.steps[step_id] = StepFacts(step_id)
        return self.steps[step_id]

    def ordered_steps(self) -> list[StepFacts]:
        """The outline's steps in order, then any step seen only in events."""
        order = [str(s.get("id")) for s in self.outline.get("steps", []) if isinstance(s, dict)]
        order += [s for s in STEP_IDS if s not in order and s in self.steps]
        order += [s for s in self.steps if s not in order]
        return [self.step(s) for s in order]


def collect(events: list[Event]) -> Facts:
    facts = Facts()
    requests: dict[int, ev.DecisionRequested] = {}
    open_runs: dict[tuple[str, str], ActionRun] = {}
    state = facts.state
    if events:
        facts.first_ts, facts.last_ts = events[0].ts, events[-1].ts
    for event in events:
        try:
            state.apply(event)
        except IllegalTransition as exc:  # the record is reported as it is; the move is named, not hidden
            facts.problems.append(f"event {event.seq}: {exc}")
        facts.count += 1
        kind = type(event)
        if kind is ev.ActionOutput or kind is OutputRef:
            # The hot path: 100k-event logs are mostly output batches (read light from a journal: only counted).
            run = open_runs.get((event.step, event.action))
            count = event.line_count if kind is OutputRef else len(event.lines)
            if run is not None:
                run.output_lines += count
            facts.step(event.step).output_lines += count
        elif kind is ev.HealthSample:
            pass
        elif kind is ev.SessionStarted:
            facts.started = event
            for outline_step in event.outline.get("steps", []):
                if isinstance(outline_step, dict) and outline_step.get("id"):
                    facts.step(str(outline_step["id"])).outline = dict(outline_step)
        elif kind is ev.SessionFinished:
            facts.finished = event
            facts.endings.append(event)
        elif kind is ev.SessionReopened:
            facts.reopens.append(event)
        elif kind is ev.SessionResumed:
            facts.resumes.append(event)
        elif kind is ev.SessionInterrupted:
            facts.interruptions.append(event)
        elif kind is ev.InputChecked:
            facts.inputs.append(event)
        elif kind is ev.PlanReviewed:
            facts.reviews.append(event)
        elif kind is ev.ApprovalGiven:
            facts.approvals.append(event)
        elif kind is ev.StepStarted:
            step = facts.step(event.step)
            step.attempts += 1
            step.first_started = step.first_started or event.ts
        elif kind is ev.StepFinished:
            facts.step(event.step).finishes.append(event)
        elif kind is ev.ActionStarted:
            run = ActionRun(event)
            facts.step(event.step).runs.append(run)
            open_runs[(event.step, event.action)] = run
        elif kind is ev.ActionFinished:
            run = open_runs.pop((event.step, event.action), None)
            if run is None:  # finished without a start (a resumed session): still report it
                run = ActionRun(ev.ActionStarted(step=event.step, action=event.action, kind="?", ts=event.ts,
                                                 attempt=event.attempt))
                facts.step(event.step).runs.append(run)
            run.finished = event
        elif kind is ev.Verification:
            facts.step(event.step).verifications.append(event)
        elif kind is ev.HealthChanged:
            facts.health_changes.append(event)
            facts.health_now[event.probe] = event
        elif kind is ev.HealthAlert:
            facts.alerts.append(event)
        elif kind is ev.WindowWarning:
            facts.window_warnings.append(event)
        elif kind is ev.DecisionRequested:
            requests[event.request_id] = event
        elif kind is ev.DecisionMade:
            facts.decisions.append(Decision(event, requests.get(event.request_id)))
        elif kind is ev.Signal:
            facts.signals.append(event)
    if any(getattr(event, "type", "") == "waves_planned" for event in events):
        facts.waved = fold_waved(events)
    for step in state.steps:
        if step.id in facts.steps:
            facts.steps[step.id].state = step.state
    return facts
