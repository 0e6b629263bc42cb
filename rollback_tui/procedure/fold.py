"""The one fold: events (in journal order) into the session state every viewer and the engine show.

The runner, resume, the cockpit (live, follow, replay), the report, the answers checker and the headless printer all
read the same `SessionState`; a screen adds only what it alone needs (sparklines, log counters). Events are read by
attribute, so this module needs neither pydantic nor the events module: folding is cheap to import. Every step
move goes through `transition`, so an event sequence the table refuses raises IllegalTransition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollback_tui.procedure.states import (
    ACTION_FAILS,
    ACTION_INTERRUPTS,
    FINISHED,
    STEP_FINISHED,
    TERMINAL,
    ActionState,
    HostState,
    StepState,
    transition,
)
from rollback_tui.procedure.steps import STEP_IDS, title_of

S = StepState
#: Decisions that retry work, and those that send the step back to work. Go, override and approve leave the step
#: waiting until it finishes (after the validation's approvals, for step 7): nothing finishes without a decision.
RETRY_CHOICES = frozenset({"retry", "retry_failed", "rerun"})
BACK_TO_WORK = frozenset({"manual", "mark_done", "verify_only"})
STOPS_STEP = frozenset({"no_go", "halt", "reject"})
#: The screens a session shows, as a function of its events.
SCREENS = ("main", "input", "plan_review", "approval", "summary")
#: Events that change nothing the fold keeps (the hot ones; host_task is folded by procedure/hostmatrix.py): counted,
#: not dispatched.
HOT = frozenset({"action_output", "health_sample", "host_task"})


@dataclass
class ActionStatus:
    id: str
    kind: str = ""
    summary: str = ""
    hosts: list[str] = field(default_factory=list)
    state: ActionState = ActionState.pending
    attempt: int = 0
    error: str = ""
    host_states: dict[str, HostState] = field(default_factory=dict)


@dataclass
class StepStatus:
    id: str
    title: str
    question: str = ""
    applicable: bool = True
    state: StepState = S.pending
    attempt: int = 0
    actions: list[ActionStatus] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    """The read-backs of the current attempt."""
    decided: bool = False
    """The current attempt's go is given and its notices (after_decision actions) run: work resumes as announcing."""

    def action(self, action_id: str) -> ActionStatus:
        for action in self.actions:
            if action.id == action_id:
                return action
        created = ActionStatus(id=action_id)
        self.actions.append(created)
        return created


@dataclass
class InputStatus:
    id: str
    category: str
    ok: bool | None
    """None while it waits for the operator's confirmation."""
    detail: str = ""
    remediation: str = ""
    choice: str = ""


@dataclass
class Request:
    """The question the engine waits for (a DecisionRequested as plain data)."""

    request_id: int
    kind: str
    step: str
    action: str
    subject: str
    question: str
    options: list[str]
    needs_reason: list[str]
    raw_evidence: Any = None
    """The request's Evidence as recorded; `evidence` is it as plain data (made when first read)."""
    occurrence: int = 1
    reopened: bool = False
    _evidence: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def evidence(self) -> dict[str, Any]:
        if self._evidence is None:
            self._evidence = _plain(self.raw_evidence)
        return self._evidence


def _plain(value: Any) -> dict[str, Any]:
    dump = getattr(value, "model_dump", None)
    return dict(dump() if callable(dump) else value or {})


class SessionState:
    """Everything known about a session from its events."""

    def __init__(self) -> None:
        self.started: Any = None
        """The first SessionStarted event."""
        self.finished: Any = None
        """The SessionFinished in force (None while the session goes on, also after a reopen)."""
        self.plan_name = ""
        self.plan_path = ""
        self.operator = ""
        self.outline: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}
        self.window = 0.0
        self.roles: list[dict[str, Any]] = []
        self.allow_same_person = False
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.last_ts: datetime | None = None
        self.last_seq = 0
        self.count = 0
        self.steps: list[StepStatus] = [StepStatus(id=s, title=title_of(s)) for s in STEP_IDS]
        self._by_id: dict[str, StepStatus] = {step.id: step for step in self.steps}
        self.inputs: list[InputStatus] = []
        self.plan_review: bool | None = None
        self.approvals: list[dict[str, str]] = []
        self.pending: Request | None = None
        self.decisions: list[dict[str, Any]] = []
        self.health: dict[str, dict[str, Any]] = {}
        """probe -> {state, reason, latency_ms} (from the outline, then health_changed)."""
        self.alerts: list[tuple[str, str]] = []
        self.warned: set[int] = set()
        self.interrupted = ""
        """Why the session stopped, while it is stopped (cleared by a resume)."""
        self.interruptions = 0
        self.resumes = 0
        self.reopens = 0
        self.exit_state = ""
        self.scopes: dict[str, str] = {}
        self.message = ""
        self.endings: list[str] = []
        self.signals: list[str] = []
        self.current_step = ""
        self.screen = "main"
        self._screen_before_finish = "main"
        self.running_actions: dict[tuple[str, str], Any] = {}
        """Actions started and not finished: after a crash these come back as interrupted."""

    # ------------------------------------------------------------ queries

    def step(self, step_id: str) -> StepStatus:
        found = self._by_id.get(step_id)
        if found is not None:
            return found
        created = self._by_id[step_id] = StepStatus(id=step_id, title=step_id)
        self.steps.append(created)
        return created

    def step_states(self) -> dict[str, StepState]:
        return {step.id: step.state for step in self.steps}

    @property
    def window_percent(self) -> int:
        return max(self.warned, default=0)

    def move(self, step_id: str, new: StepState) -> None:
        step = self.step(step_id)
        step.state = transition(step.state, new, f"step {step_id}")

    # ------------------------------------------------------------ the fold

    def apply(self, event: Any) -> None:
        """Fold one event in; raises IllegalTransition on a step move the table refuses."""
        self.count += 1  # the hot path: 100k-event journals are mostly output batches and health samples
        if event.seq:
            self.last_seq = event.seq
        self.last_ts = event.ts
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)

    def _session_started(self, event: Any) -> None:
        if self.started is not None:
            return
        self.started, self.started_at = event, event.ts
        self.plan_name, self.plan_path, self.operator = event.plan_name, event.plan_path, event.operator
        outline = dict(event.outline or {})
        self.outline = outline
        self.metadata = dict(outline.get("metadata") or {})
        self.window = float(outline.get("window") or 0.0)
        self.roles = list(outline.get("roles") or [])
        self.allow_same_person = bool(outline.get("allow_same_person", False))
        by_id = {s.get("id"): s for s in outline.get("steps") or [] if isinstance(s, dict)}
        if by_id:
            self.steps = []
            for step_id in STEP_IDS:
                data = by_id.get(step_id) or {"applicable": False}
                applicable = bool(data.get("applicable", True))
                step = StepStatus(id=step_id, title=data.get("title") or title_of(step_id),
                                  question=data.get("question") or "", applicable=applicable,
                                  state=S.pending if applicable else S.not_applicable)
                step.actions = [ActionStatus(id=a.get("id", ""), kind=a.get("kind", ""), summary=a.get("summary", ""),
                                             hosts=list(a.get("hosts") or [])) for a in data.get("actions") or []]
                self.steps.append(step)
            self._by_id = {step.id: step for step in self.steps}
        for probe in outline.get("probes") or []:
            if isinstance(probe, dict) and probe.get("id"):
                self.health.setdefault(str(probe["id"]), {"state": "unknown", "reason": "", "latency_ms": None,
                                                          "kind": probe.get("kind", ""),
                                                          "category": probe.get("category", "")})

    def _session_resumed(self, event: Any) -> None:
        self.resumes += 1
        self.interrupted = ""
        self.operator = event.operator

    def _session_interrupted(self, event: Any) -> None:
        self.interruptions += 1
        self.interrupted = event.reason or "interrupted"
        for step in self.steps:  # a step waiting for a decision is asked the same question after the resume
            if step.state in (S.running, S.retrying, S.announcing):
                self.move(step.id, S.interrupted)
            for action in step.actions:
                if action.state == ActionState.running:
                    action.state = ActionState.interrupted
        if self.screen == "summary":
            self.screen = "main"

    def _session_finished(self, event: Any) -> None:
        self.finished, self.finished_at = event, event.ts
        self.exit_state, self.scopes, self.message = event.exit_state, dict(event.scopes), event.message
        self.endings.append(event.exit_state)
        self.pending = None
        self._screen_before_finish, self.screen = self.screen, "summary"

    def _session_reopened(self, event: Any) -> None:
        """A blocked session goes on: in progress again, its clock runs again, its steps go on from where they are."""
        self.reopens += 1
        self.finished = self.finished_at = None
        self.exit_state, self.scopes, self.message = "", {}, ""
        self.screen = self._screen_before_finish

    def _input_checked(self, event: Any) -> None:
        ok = None if getattr(event, "needs_confirmation", False) and not event.ok else bool(event.ok)
        status = InputStatus(id=event.input_id, category=event.category, ok=ok, detail=event.detail,
                             remediation=event.remediation)
        for index, existing in enumerate(self.inputs):
            if existing.id == status.id:
                status.choice = existing.choice
                self.inputs[index] = status
                return
        self.inputs.append(status)

    def _plan_reviewed(self, event: Any) -> None:
        self.plan_review = bool(event.approved)

    def _approval_given(self, event: Any) -> None:
        self.approvals.append({"role": event.role, "role_title": event.role_title, "gate": event.gate,
                               "name": event.name, "same_person_as": getattr(event, "same_person_as", "")})

    def _step_started(self, event: Any) -> None:
        step = self.step(event.step)
        self.move(event.step, S.running)
        step.attempt, step.verifications, step.decided = event.attempt, [], False
        self.current_step = event.step
        self.screen = "main"

    def _step_finished(self, event: Any) -> None:
        self.move(event.step, STEP_FINISHED[event.status])
        if event.status != "not_applicable":
            self.current_step = event.step
        self.screen = "main"

    def _action_started(self, event: Any) -> None:
        self.running_actions[(event.step, event.action)] = event
        step = self.step(event.step)
        if step.state == S.failed:  # an automatic retry of a failed attempt
            self.move(event.step, S.retrying)
        step.decided = step.decided or bool(getattr(event, "after_decision", False))
        self.move(event.step, S.announcing if step.decided else S.running)
        action = step.action(event.action)
        action.kind = event.kind or action.kind
        action.attempt, action.state, action.error = event.attempt, ActionState.running, ""
        if event.description:
            action.summary = event.description
        for host in event.hosts:
            if host not in action.hosts:
                action.hosts.append(host)
            action.host_states[host] = HostState.running
        self.current_step = event.step
        self.screen = "main"

    def _action_finished(self, event: Any) -> None:
        self.running_actions.pop((event.step, event.action), None)
        action = self.step(event.step).action(event.action)
        action.state, action.error = ActionState(event.status), event.error
        for host in event.hosts:
            action.host_states[host.host] = HostState(host.status)
        if event.status in ACTION_FAILS:
            self.move(event.step, S.failed)
        elif event.status in ACTION_INTERRUPTS:
            self.move(event.step, S.interrupted)

    def _waves_planned(self, event: Any) -> None:
        action = self.step(event.step).action(event.action)
        for wave in event.waves:
            for host in wave:
                if host not in action.hosts:
                    action.hosts.append(host)
                action.host_states[host] = HostState.pending

    def _host_finished(self, event: Any) -> None:
        self.step(event.step).action(event.action).host_states[event.result.host] = HostState(event.result.status)

    def _hosts_excluded(self, event: Any) -> None:
        action = self.step(event.step).action(event.action)
        for host in event.hosts:
            action.host_states[host] = HostState.excluded

    def _wave_paused(self, event: Any) -> None:
        self.current_step = event.step

    def _verification(self, event: Any) -> None:
        self.step(event.step).verifications.append({
            "check": event.check, "category": event.category, "expected": event.expected,
            "observed": event.observed, "ok": event.ok, "action": event.action})

    def _health_changed(self, event: Any) -> None:
        probe = self.health.setdefault(event.probe, {"state": "unknown", "reason": "", "latency_ms": None})
        probe["state"], probe["reason"] = event.new, event.reason
        if event.latency_ms is not None:
            probe["latency_ms"] = event.latency_ms

    def _health_alert(self, event: Any) -> None:
        self.alerts.append((event.probe, event.reason))

    def _window_warning(self, event: Any) -> None:
        self.warned.add(int(event.percent))

    def _decision_requested(self, event: Any) -> None:
        self.pending = Request(request_id=event.request_id, kind=event.kind, step=event.step, action=event.action,
                               subject=event.subject, question=event.question, options=list(event.options),
                               needs_reason=list(event.needs_reason), raw_evidence=event.evidence,
                               occurrence=getattr(event, "occurrence", 1), reopened=getattr(event, "reopened", False))
        if event.step:
            self.move(event.step, S.awaiting_decision)
        self.screen = event.kind if event.kind in ("input", "plan_review", "approval") else "main"

    def _decision_made(self, event: Any) -> None:
        self.decisions.append({"request_id": event.request_id, "kind": event.kind, "step": event.step,
                               "action": event.action, "subject": event.subject, "choice": event.choice,
                               "reason": event.reason, "by": event.by})
        if self.pending is not None and self.pending.request_id == event.request_id:
            self.pending = None
        if event.kind == "input":
            for status in self.inputs:
                if status.id == event.subject:
                    status.choice = event.choice
        step, choice = event.step, event.choice
        if not step:
            return
        if choice == "reassess":  # back to step 1: what is not finished waits for the next pass
            for other in self.steps:
                if other.state not in TERMINAL and other.state not in FINISHED and other.state != S.pending:
                    self.move(other.id, S.pending)
        elif choice == "abort":
            self.move(step, S.aborted)
        elif choice in RETRY_CHOICES:
            self.move(step, S.retrying)
        elif choice in BACK_TO_WORK:
            self.move(step, S.announcing if self.step(step).decided else S.running)
        elif choice in STOPS_STEP:
            self.move(step, S.failed)

    def _signal(self, event: Any) -> None:
        self.signals.append(event.name)

    # ------------------------------------------------------------ comparable data

    def snapshot(self) -> dict[str, Any]:
        """Plain, comparable data of the whole state (live, follow and replay are equal at every event)."""
        return {
            "plan": self.plan_name, "operator": self.operator, "window": self.window,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "steps": [{"id": s.id, "state": s.state.value, "attempt": s.attempt, "applicable": s.applicable,
                       "actions": [{"id": a.id, "state": a.state.value, "attempt": a.attempt,
                                    "hosts": {h: v.value for h, v in a.host_states.items()}} for a in s.actions],
                       "verifications": [(v["check"], v["ok"]) for v in s.verifications]} for s in self.steps],
            "health": {probe: (h["state"], h.get("latency_ms")) for probe, h in self.health.items()},
            "inputs": [(i.id, i.ok, i.choice) for i in self.inputs],
            "plan_review": self.plan_review,
            "approvals": [(a["role"], a["name"]) for a in self.approvals],
            "pending": (self.pending.request_id, self.pending.kind, self.pending.step) if self.pending else None,
            "decisions": [(d["request_id"], d["choice"], d["reason"], d["by"]) for d in self.decisions],
            "warned": sorted(self.warned), "interrupted": self.interrupted, "exit_state": self.exit_state,
            "scopes": dict(self.scopes), "signals": list(self.signals), "screen": self.screen,
            "current_step": self.current_step, "last_seq": self.last_seq,
        }


#: Every event type that moves the state (the others, HOT, are only counted).
FOLDED: tuple[str, ...] = (
    "session_started", "session_resumed", "session_interrupted", "session_finished", "session_reopened",
    "input_checked", "plan_reviewed", "approval_given", "step_started", "step_finished", "action_started",
    "action_finished", "verification", "health_changed", "health_alert", "window_warning", "decision_requested",
    "decision_made", "signal", "waves_planned", "host_finished", "hosts_excluded", "wave_paused",
)
_HANDLERS = {name: getattr(SessionState, f"_{name}") for name in FOLDED}


def fold(events: Iterable[Any], upto: int | None = None) -> SessionState:
    """The state after these events (in journal order); with `upto`, after the first `upto` of them."""
    state = SessionState()
    for index, event in enumerate(events):
        if upto is not None and index >= upto:
            break
        state.apply(event)
    return state
