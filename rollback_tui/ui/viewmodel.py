"""The cockpit's state: the procedure's one fold (rollback_tui/procedure/fold.py) plus what only a screen needs.

The fold reads events by attribute, so neither pydantic nor the events module is imported: the cockpit's first frame
stays fast. A screen adds sparkline histories, a log line counter and the words and symbols it draws; every step,
action, decision and ending is the fold's, so live, follow and replay show the same state at every event.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollback_tui.procedure.exits import outcome_words
from rollback_tui.procedure.fold import ActionStatus, InputStatus, Request, SessionState, StepStatus
from rollback_tui.procedure.states import IllegalTransition
from rollback_tui.procedure.steps import STEP_IDS

#: The fold's records under the names the screens use.
StepView, ActionView, InputView, RequestView = StepStatus, ActionStatus, InputStatus, Request

#: Step/action/host state -> (symbol, word). Never colour alone: the word is always drawn next to the symbol.
STATE_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("·", "pending"),
    "running": ("▶", "running"),
    "announcing": ("✉", "announcing the decision"),
    "awaiting_decision": ("?", "awaiting decision"),
    "done": ("✔", "done"),
    "manual": ("✔", "done by hand"),
    "failed": ("✖", "failed"),
    "retrying": ("↻", "retrying"),
    "not_applicable": ("–", "not applicable"),
    "interrupted": ("‖", "interrupted"),
    "aborted": ("■", "aborted"),
    "skipped": ("–", "not done"),
    "ok": ("✔", "ok"),
    "timeout": ("✖", "timed out"),
    "cancelled": ("■", "cancelled"),
    "unreachable": ("✖", "unreachable"),
    "excluded": ("⊘", "excluded"),
}

HEALTH_LABELS: dict[str, tuple[str, str]] = {
    "healthy": ("●", "healthy"),
    "degraded": ("◐", "degraded"),
    "down": ("✖", "down"),
    "unknown": ("?", "unknown"),
}

SPARK_HISTORY = 40

__all__ = ["STATE_LABELS", "STEP_IDS", "ActionView", "InputView", "ProbeView", "RequestView", "SessionView",
           "StepView", "health_label", "label"]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _numbers(values: Any) -> tuple[float, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(number for number in (_finite(v) for v in values[:2]) if number is not None)


def label(state: str) -> str:
    """'✔ done' for a step/action/host state."""
    symbol, word = STATE_LABELS.get(state, ("·", state))
    return f"{symbol} {word}"


def health_label(state: str) -> str:
    symbol, word = HEALTH_LABELS.get(state, ("?", state))
    return f"{symbol} {word}"


@dataclass
class ProbeView:
    id: str
    kind: str = ""
    category: str = ""
    state: str = "unknown"
    reason: str = ""
    latency_ms: float | None = None
    history: deque[float | None] = field(default_factory=lambda: deque(maxlen=SPARK_HISTORY))
    """Latency of the newest samples (None: a failed sample)."""
    value: float | None = None
    """The newest measured value, for a probe that measures one (prometheus); None before the first."""
    values: deque[float | None] = field(default_factory=lambda: deque(maxlen=SPARK_HISTORY))
    """The newest samples' values (None: a sample without one); empty for probes that measure none."""
    condition: str = ""
    """What a good value is, in words (`< 0.01`), from the plan's outline."""
    thresholds: tuple[float, ...] = ()
    """The condition's bound(s), where the health pane draws its threshold line."""

    @property
    def measures(self) -> bool:
        """A value probe: the health pane draws its values (and threshold), not its latency."""
        return bool(self.condition) or bool(self.values)


class SessionView(SessionState):
    """The fold, plus the probes' sparkline histories and the count of output lines."""

    def __init__(self) -> None:
        super().__init__()
        self.probes: dict[str, ProbeView] = {}
        self.output_lines = 0
        self.problems: list[str] = []
        """Moves of the journal the table refuses: the engine stops on them; a viewer shows them and goes on."""

    @property
    def events(self) -> int:
        return self.count

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
            return outcome_words(self.exit_state)
        if self.interrupted:
            return "‖ interrupted"
        if self.pending is not None:
            return "? awaiting decision"
        if self.started_at is None:
            return "· waiting for events"
        if not self.current_step and self.plan_review is None and self.inputs:
            return "▶ preparing the plan review"  # each action describes what it would do (git, alembic, …)
        return "▶ in progress"

    def apply(self, event: Any) -> None:
        """Fold one event (any member of the Event union), then what only the screen keeps."""
        try:
            super().apply(event)
        except IllegalTransition as exc:
            self.problems.append(f"event {getattr(event, 'seq', '?')}: {exc}")
        kind = event.type
        if kind == "action_output":
            self.output_lines += len(event.lines)
        elif kind == "health_sample":
            self._sample(event)
        elif kind == "health_changed":
            probe = self.probes.setdefault(event.probe, ProbeView(id=event.probe))
            probe.state, probe.reason = event.new, event.reason
            if event.latency_ms is not None:
                probe.latency_ms = event.latency_ms
        elif kind == "session_started" and not self.probes:
            for probe in (event.outline or {}).get("probes") or []:
                self.probes[probe["id"]] = ProbeView(id=probe["id"], kind=probe.get("kind", ""),
                                                     category=probe.get("category", ""),
                                                     condition=str(probe.get("condition") or ""),
                                                     thresholds=_numbers(probe.get("thresholds")))

    def _sample(self, event: Any) -> None:
        for probe_id, samples in event.samples.items():
            probe = self.probes.setdefault(probe_id, ProbeView(id=probe_id))
            for sample in samples:
                state = sample[1] if len(sample) > 1 else probe.state
                latency = sample[2] if len(sample) > 2 else None
                # [t, state, latency] before values were recorded (old journals), [t, state, latency, value] now
                value = _finite(sample[3]) if len(sample) > 3 else None
                probe.state = state
                if latency is not None:
                    probe.latency_ms = latency
                probe.history.append(latency if state in ("healthy", "degraded") else None)
                if value is not None or probe.measures:
                    probe.values.append(value)
                    probe.value = value

    def snapshot(self) -> dict[str, Any]:
        """The fold's comparable data, with what the screen adds."""
        data = super().snapshot()
        data.update({"probes": {p.id: (p.state, p.latency_ms) for p in self.probes.values()},
                     "output_lines": self.output_lines, "outcome": self.outcome})
        return data
