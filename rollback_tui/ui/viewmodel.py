"""The cockpit's state folded from events: pure Python (no Textual), shared by live, resume, replay and follow.

Events are read by attribute (`event.type`, `event.step`, ...) so this module needs neither pydantic nor the
events module at import time; that keeps the cockpit's first frame fast. `SessionView.snapshot()` is plain
data: the replay test compares the sequence of snapshots of a live session with that of its replay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STEP_IDS = ("assess", "flags", "code", "configuration", "database", "infrastructure", "validate")
DEFAULT_TITLES = {
    "assess": "Assess rollback situation", "flags": "Disable feature flags", "code": "Roll back code changes",
    "configuration": "Roll back configuration changes", "database": "Roll back database migrations",
    "infrastructure": "Roll back infrastructure changes", "validate": "Validate rollback and document",
}

#: Step state -> (symbol, word). Never colour alone: the word is always drawn next to the symbol.
STATE_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("·", "pending"),
    "running": ("▶", "running"),
    "announcing": ("✉", "announcing the decision"),
    "awaiting": ("?", "awaiting decision"),
    "done": ("✔", "done"),
    "manual": ("✔", "done by hand"),
    "failed": ("✖", "failed"),
    "retrying": ("↻", "retrying"),
    "not_applicable": ("–", "not applicable"),
    "interrupted": ("‖", "interrupted"),
    "aborted": ("■", "aborted"),
    "skipped": ("–", "not applicable"),
    "ok": ("✔", "ok"),
    "timeout": ("✖", "timed out"),
    "cancelled": ("■", "cancelled"),
    "unreachable": ("✖", "unreachable"),
}

HEALTH_LABELS: dict[str, tuple[str, str]] = {
    "healthy": ("●", "healthy"),
    "degraded": ("◐", "degraded"),
    "down": ("✖", "down"),
    "unknown": ("?", "unknown"),
}

OUTCOME_WORDS = {
    "completed": "✔ completed",
    "blocked": "⚠ blocked",
    "aborted": "■ aborted",
    "partial": "◐ partial rollback",
}

SPARK_HISTORY = 40


def label(state: str) -> str:
    """'✔ done' for a step/action/host state."""
    symbol, word = STATE_LABELS.get(state, ("·", state))
    return f"{symbol} {word}"


def health_label(state: str) -> str:
    symbol, word = HEALTH_LABELS.get(state, ("?", state))
    return f"{symbol} {word}"


@dataclass
class ActionView:
    id: str
    kind: str
    summary: str = ""
    hosts: list[str] = field(default_factory=list)
    state: str = "pending"
    attempt: int = 0
    error: str = ""
    host_states: dict[str, str] = field(default_factory=dict)


@dataclass
class StepView:
    id: str
    title: str
    question: str = ""
    applicable: bool = True
    state: str = "pending"
    attempt: int = 0
    actions: list[ActionView] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    before_decision: str = "running"

    def action(self, action_id: str) -> ActionView:
        for action in self.actions:
            if action.id == action_id:
                return action
        created = ActionView(id=action_id, kind="")
        self.actions.append(created)
        return created


@dataclass
class ProbeView:
    id: str
    kind: str = ""
    category: str = ""
    state: str = "unknown"
    reason: str = ""
    latency_ms: float | None = None
    history: deque[float | None] = field(default_factory=lambda: deque(maxlen=SPARK_HISTORY))


@dataclass
class InputView:
    id: str
    category: str
    ok: bool | None
    detail: str = ""
    remediation: str = ""
    choice: str = ""


@dataclass
class RequestView:
    """The decision the engine is waiting for (a DecisionRequested, kept as plain data)."""

    request_id: int
    kind: str
    step: str
    action: str
    subject: str
    question: str
    options: list[str]
    needs_reason: list[str]
    evidence: dict[str, Any]


class SessionView:
    """Everything the cockpit draws, folded from events by `apply`."""

    def __init__(self) -> None:
        self.plan_name = ""
        self.plan_path = ""
        self.metadata: dict[str, Any] = {}
        self.operator = ""
        self.window = 0.0
        self.started_at: datetime | None = None
        self.last_ts: datetime | None = None
        self.last_seq = 0
        self.events = 0
        self.roles: list[dict[str, Any]] = []
        self.allow_same_person = False
        self.steps: list[StepView] = [StepView(id=s, title=DEFAULT_TITLES[s]) for s in STEP_IDS]
        self.probes: dict[str, ProbeView] = {}
        self.inputs: list[InputView] = []
        self.plan_review: bool | None = None
        self.approvals: list[dict[str, str]] = []
        self.pending: RequestView | None = None
        self.decisions: list[dict[str, Any]] = []
        self.window_percent = 0
        self.interrupted = ""
        self.resumed = 0
        self.exit_state = ""
        self.finished_at: datetime | None = None
        self.scopes: dict[str, str] = {}
        self.message = ""
        self.signals: list[str] = []
        self.current_step = ""
        self.output_lines = 0
        self.alerts: list[str] = []

    # ------------------------------------------------------------ queries

    def step(self, step_id: str) -> StepView:
        for step in self.steps:
            if step.id == step_id:
                return step
        created = StepView(id=step_id, title=step_id)
        self.steps.append(created)
        return created

    def elapsed(self, now: datetime | None) -> float:
        """Seconds since the session started (its first SessionStarted), at `now`."""
        if self.started_at is None or now is None:
            return 0.0
        if self.finished_at is not None:
            now = min(now, self.finished_at)  # the clock stops when the session ends
        return max(0.0, (now - self.started_at).total_seconds())

    @property
    def outcome(self) -> str:
        if self.exit_state:
            return OUTCOME_WORDS.get(self.exit_state, self.exit_state)
        if self.interrupted:
            return "‖ interrupted"
        if self.pending is not None:
            return "? awaiting decision"
        if self.started_at is None:
            return "· waiting for events"
        if not self.current_step and self.plan_review is None and self.inputs:
            return "▶ preparing the plan review"  # each action describes what it would do (git, alembic, …)
        return "▶ in progress"

    # ------------------------------------------------------------ fold

    def apply(self, event: Any) -> None:
        """Fold one event (any member of the Event union) into the view."""
        self.events += 1
        self.last_seq = max(self.last_seq, int(getattr(event, "seq", 0) or 0))
        ts = getattr(event, "ts", None)
        if ts is not None:
            self.last_ts = ts
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def _on_session_started(self, event: Any) -> None:
        if self.started_at is None:
            self.started_at = event.ts
        self.plan_name = event.plan_name
        self.plan_path = event.plan_path
        self.operator = event.operator
        outline = event.outline or {}
        self.metadata = dict(outline.get("metadata") or {})
        self.window = float(outline.get("window") or 0.0)
        self.roles = list(outline.get("roles") or [])
        self.allow_same_person = bool(outline.get("allow_same_person", False))
        steps = outline.get("steps") or []
        if steps:
            by_id = {s.get("id"): s for s in steps}
            self.steps = []
            for step_id in STEP_IDS:
                data = by_id.get(step_id)
                if data is None:
                    self.steps.append(StepView(id=step_id, title=DEFAULT_TITLES[step_id], applicable=False,
                                              state="not_applicable"))
                    continue
                applicable = bool(data.get("applicable", True))
                view = StepView(id=step_id, title=data.get("title") or DEFAULT_TITLES[step_id], question=data.get("question") or "",
                                applicable=applicable, state="pending" if applicable else "not_applicable")
                for action in data.get("actions") or []:
                    view.actions.append(ActionView(id=action.get("id", ""), kind=action.get("kind", ""),
                                                   summary=action.get("summary", ""),
                                                   hosts=list(action.get("hosts") or [])))
                self.steps.append(view)
        for probe in outline.get("probes") or []:
            self.probes[probe["id"]] = ProbeView(id=probe["id"], kind=probe.get("kind", ""),
                                                 category=probe.get("category", ""))

    def _on_session_resumed(self, event: Any) -> None:
        self.resumed += 1
        self.interrupted = ""
        self.operator = event.operator

    def _on_session_interrupted(self, event: Any) -> None:
        self.interrupted = event.reason or "interrupted"
        for step in self.steps:
            if step.state in ("running", "awaiting", "retrying"):
                step.state = "interrupted"
            for action in step.actions:
                if action.state == "running":
                    action.state = "interrupted"
        self.pending = None

    def _on_session_finished(self, event: Any) -> None:
        self.exit_state = event.exit_state
        self.finished_at = event.ts
        self.scopes = dict(event.scopes)
        self.message = event.message
        self.pending = None
        if event.exit_state in ("aborted", "partial"):
            for step in self.steps:
                if step.state in ("running", "awaiting", "retrying", "failed"):
                    step.state = "aborted"

    def _on_session_reopened(self, event: Any) -> None:
        """A blocked session goes on (engine SessionReopened): it is in progress again, its clock runs again."""
        self.exit_state = ""
        self.finished_at = None
        self.scopes = {}
        self.message = ""

    def _on_input_checked(self, event: Any) -> None:
        ok = None if getattr(event, "needs_confirmation", False) and not event.ok else event.ok
        view = InputView(id=event.input_id, category=event.category, ok=ok, detail=event.detail,
                         remediation=event.remediation)
        for index, existing in enumerate(self.inputs):
            if existing.id == view.id:
                view.choice = existing.choice
                self.inputs[index] = view
                return
        self.inputs.append(view)

    def _on_plan_reviewed(self, event: Any) -> None:
        self.plan_review = bool(event.approved)

    def _on_approval_given(self, event: Any) -> None:
        self.approvals.append({"role": event.role, "role_title": event.role_title, "gate": event.gate,
                               "name": event.name, "same_person_as": getattr(event, "same_person_as", "")})

    def _on_step_started(self, event: Any) -> None:
        step = self.step(event.step)
        step.attempt = event.attempt
        step.state = "retrying" if event.attempt > 1 else "running"
        step.verifications = []
        self.current_step = event.step

    def _on_step_finished(self, event: Any) -> None:
        step = self.step(event.step)
        step.state = {"skipped": "not_applicable"}.get(event.status, event.status)

    def _on_action_started(self, event: Any) -> None:
        step = self.step(event.step)
        action = step.action(event.action)
        action.kind = event.kind or action.kind
        action.attempt = event.attempt
        action.state = "retrying" if event.attempt > 1 else "running"
        action.error = ""
        if event.description:
            action.summary = event.description
        for host in event.hosts:
            if host not in action.hosts:
                action.hosts.append(host)
            action.host_states[host] = "running"
        if getattr(event, "after_decision", False):  # the go is given: a notice announces it
            step.state = "announcing"
        elif step.state in ("pending", "failed", "awaiting", "interrupted"):
            step.state = "retrying" if step.attempt > 1 or event.attempt > 1 else "running"
        self.current_step = event.step

    def _on_action_output(self, event: Any) -> None:
        self.output_lines += len(event.lines)

    def _on_action_finished(self, event: Any) -> None:
        step = self.step(event.step)
        action = step.action(event.action)
        action.state = {"skipped": "not_applicable"}.get(event.status, event.status)
        action.error = event.error
        for host in event.hosts:
            action.host_states[host.host] = host.status
        if event.status in ("failed", "timeout", "interrupted", "cancelled"):
            step.state = "failed" if event.status != "interrupted" else "interrupted"

    def _on_verification(self, event: Any) -> None:
        self.step(event.step).verifications.append({
            "check": event.check, "category": event.category, "expected": event.expected,
            "observed": event.observed, "ok": event.ok, "action": event.action})

    def _on_health_changed(self, event: Any) -> None:
        probe = self.probes.setdefault(event.probe, ProbeView(id=event.probe))
        probe.state = event.new
        probe.reason = event.reason
        if event.latency_ms is not None:
            probe.latency_ms = event.latency_ms

    def _on_health_sample(self, event: Any) -> None:
        for probe_id, samples in event.samples.items():
            probe = self.probes.setdefault(probe_id, ProbeView(id=probe_id))
            for sample in samples:
                state = sample[1] if len(sample) > 1 else probe.state
                latency = sample[2] if len(sample) > 2 else None
                probe.state = state
                if latency is not None:
                    probe.latency_ms = latency
                probe.history.append(latency if state in ("healthy", "degraded") else None)

    def _on_health_alert(self, event: Any) -> None:
        self.alerts.append(f"{event.probe}: {event.reason}")
        del self.alerts[:-5]

    def _on_window_warning(self, event: Any) -> None:
        self.window_percent = max(self.window_percent, int(event.percent))

    def _on_decision_requested(self, event: Any) -> None:
        evidence = event.evidence.model_dump() if hasattr(event.evidence, "model_dump") else dict(event.evidence)
        self.pending = RequestView(request_id=event.request_id, kind=event.kind, step=event.step, action=event.action,
                                   subject=event.subject, question=event.question, options=list(event.options),
                                   needs_reason=list(event.needs_reason), evidence=evidence)
        if event.step and event.kind in ("gate", "action_failed", "no_go", "interrupted"):
            step = self.step(event.step)
            if step.state != "awaiting":
                step.before_decision = step.state
            step.state = "awaiting"

    def _on_decision_made(self, event: Any) -> None:
        self.decisions.append({"request_id": event.request_id, "kind": event.kind, "step": event.step,
                               "action": event.action, "subject": event.subject, "choice": event.choice,
                               "reason": event.reason, "by": event.by})
        if self.pending is not None and self.pending.request_id == event.request_id:
            self.pending = None
        if event.kind == "input":
            for view in self.inputs:
                if view.id == event.subject:
                    view.choice = event.choice
        if event.step:
            step = self.step(event.step)
            if step.state == "awaiting":
                step.state = step.before_decision if event.choice not in ("retry", "retry_failed", "rerun") else "retrying"

    def _on_signal(self, event: Any) -> None:
        self.signals.append(event.name)

    # ------------------------------------------------------------ snapshot

    def snapshot(self) -> dict[str, Any]:
        """Plain, comparable data of everything drawn (timestamps as ISO strings)."""
        return {
            "plan": self.plan_name, "operator": self.operator, "window": self.window,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "steps": [{"id": s.id, "state": s.state, "attempt": s.attempt, "applicable": s.applicable,
                       "actions": [{"id": a.id, "state": a.state, "attempt": a.attempt, "hosts": dict(a.host_states)}
                                   for a in s.actions],
                       "verifications": [(v["check"], v["ok"]) for v in s.verifications]} for s in self.steps],
            "probes": {p.id: (p.state, p.latency_ms) for p in self.probes.values()},
            "inputs": [(i.id, i.ok, i.choice) for i in self.inputs],
            "plan_review": self.plan_review,
            "approvals": [(a["role"], a["name"]) for a in self.approvals],
            "pending": (self.pending.request_id, self.pending.kind, self.pending.step) if self.pending else None,
            "decisions": [(d["request_id"], d["choice"], d["reason"], d["by"]) for d in self.decisions],
            "window_percent": self.window_percent, "interrupted": self.interrupted,
            "exit_state": self.exit_state, "scopes": dict(self.scopes), "signals": list(self.signals),
            "output_lines": self.output_lines, "outcome": self.outcome,
        }
