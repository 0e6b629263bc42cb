"""Health state rules: consecutive successes and failures of a probe become healthy, degraded, down or unknown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollback_tui.record.events import HealthState, utcnow

#: States in order of severity (for sorting and summaries).
SEVERITY: dict[str, int] = {"healthy": 0, "unknown": 1, "degraded": 2, "down": 3}


@dataclass
class Thresholds:
    """How many consecutive results move a probe between states (from the probe's plan fields)."""

    degraded_after: int = 1
    down_after: int = 3
    healthy_after: int = 1

    @classmethod
    def of(cls, probe: Any) -> Thresholds:
        return cls(probe.degraded_after, probe.down_after, probe.healthy_after)


def next_state(state: HealthState, *, ok: bool, degraded: bool, successes: int, failures: int,
               rules: Thresholds) -> HealthState:
    """The state after one result; `successes`/`failures` are the consecutive counts including it.

    - A failure: `down_after` in a row -> down, else `degraded_after` in a row -> degraded, else the state holds
      (a probe never seen to succeed stays unknown until it has failed often enough to be called degraded).
    - A slow success (`degraded`) -> degraded at once.
    - A success: the first result of a probe makes it healthy; a failing probe needs `healthy_after` in a row.
    """
    if not ok:
        if failures >= rules.down_after:
            return "down"
        if failures >= rules.degraded_after:
            return "down" if state == "down" else "degraded"
        return state
    if degraded:
        return "degraded"
    if state in ("unknown", "healthy"):
        return "healthy"
    return "healthy" if successes >= rules.healthy_after else state


@dataclass
class ProbeStatus:
    """What the monitor knows about one probe; `record` folds one sample into it."""

    rules: Thresholds
    state: HealthState = "unknown"
    reason: str = "not sampled yet"
    latency_ms: float | None = None
    since: datetime = field(default_factory=utcnow)
    successes: int = 0
    failures: int = 0
    samples: int = 0

    def record(self, *, ok: bool, degraded: bool, reason: str, latency_ms: float | None,
               unknown: bool = False) -> HealthState | None:
        """Fold one result in; return the previous state when the state changed, else None. An `unknown` result
        (no data to judge by) makes the state unknown at once and resets both counts."""
        self.samples += 1
        if unknown:
            self.successes = self.failures = 0
            self.reason, self.latency_ms = reason, latency_ms
            if self.state == "unknown":
                return None
            old, self.state, self.since = self.state, "unknown", utcnow()
            return old
        if ok and not degraded:
            self.successes += 1
            self.failures = 0
        elif ok:
            # a slow answer is neither a failure nor a step towards healthy
            self.successes = 0
            self.failures = 0
        else:
            self.failures += 1
            self.successes = 0
        self.reason = reason
        self.latency_ms = latency_ms
        new = next_state(self.state, ok=ok, degraded=degraded, successes=self.successes,
                         failures=self.failures, rules=self.rules)
        if new == self.state:
            return None
        old, self.state, self.since = self.state, new, utcnow()
        return old

    def as_dict(self) -> dict[str, Any]:
        """The snapshot entry the evidence of a decision carries."""
        return {
            "state": self.state,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "since": self.since.isoformat().replace("+00:00", "Z"),
        }
