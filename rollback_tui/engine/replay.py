"""Replay for resume: a resumed runner re-runs the procedure and meets the journal's recorded events on the way.

Every event the runner would emit is matched against the next recorded procedure event (and not written again);
every external call takes its recorded result. When the history runs out, events go to the journal again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rollback_tui.engine.events import Event, EventBase
from rollback_tui.errors import JournalError

Record = Callable[[Sequence[EventBase]], list[Event]]

#: Event types the procedure itself produces (replayed on resume); the rest (session lifecycle, output, health,
#: window warnings) are facts of one process and are never replayed.
PROCEDURE_TYPES: frozenset[str] = frozenset({
    "input_checked", "plan_reviewed", "approval_given", "step_started", "step_finished", "action_started",
    "action_finished", "verification", "decision_requested", "decision_made", "signal", "session_finished",
})
#: What identifies an event for matching: never times, evidence or output, which differ from run to run.
KEY_FIELDS = ("type", "step", "action", "attempt", "request_id", "kind", "subject", "input_id", "role", "gate",
              "status", "name", "approved", "exit_state")


class ReplayMismatch(JournalError):
    """The journal does not follow from the plan: the plan (or the tool) changed since it was written."""


def event_key(event: Any) -> tuple[Any, ...]:
    return tuple(getattr(event, name, None) for name in KEY_FIELDS)


def describe(event: Any) -> str:
    parts = [f"{name}={getattr(event, name)!r}" for name in KEY_FIELDS[1:]
             if getattr(event, name, None) not in (None, "", 0)]
    return f"{event.type}({', '.join(parts)})"


class Replay:
    """The recorded procedure events, consumed in order; then live recording through `record`."""

    def __init__(self, history: Sequence[Event], record: Record) -> None:
        self._history = [event for event in history if event.type in PROCEDURE_TYPES]
        self._cursor = 0
        self._record = record

    @property
    def replaying(self) -> bool:
        return self._cursor < len(self._history)

    def peek(self) -> Event | None:
        return self._history[self._cursor] if self.replaying else None

    def mismatch(self, recorded: Any, expected: str) -> ReplayMismatch:
        return ReplayMismatch(
            f"the journal does not follow from the plan at event {recorded.seq}: it recorded {describe(recorded)} "
            f"where the procedure now gives {expected}",
            hint="the plan or the tool changed since the session started; open the journal read-only with "
                 "`rollback-tui replay`")

    def emit(self, *events: EventBase) -> list[Event]:
        """Record events (one write for all), or while replaying match them against the journal and skip them."""
        out: list[Event] = []
        fresh: list[EventBase] = []
        for event in events:
            recorded = self.peek()
            if recorded is None:
                fresh.append(event)
                continue
            if event_key(recorded) != event_key(event):
                raise self.mismatch(recorded, describe(event))
            self._cursor += 1
            out.append(recorded)
        if fresh:
            out.extend(self._record(fresh))
        return out

    def take(self, kind: type, expected: str, **fields: Any) -> Any:
        """The next recorded event, which must be `kind` with these fields; None when the history has run out."""
        recorded = self.peek()
        if recorded is None:
            return None
        if isinstance(recorded, kind) and all(getattr(recorded, k) == v for k, v in fields.items()):
            self._cursor += 1
            return recorded
        raise self.mismatch(recorded, expected)

    async def batch(self, match: Callable[[Any], bool], compute: Callable[[], Awaitable[list[EventBase]]]
                    ) -> list[Any]:
        """The recorded results of an external call, or (live) its fresh results journaled in one write: a crash
        keeps all of a batch or none of it, so a batch in the history is always complete."""
        if self.replaying:
            out = []
            while self.replaying and match(self._history[self._cursor]):
                out.append(self._history[self._cursor])
                self._cursor += 1
            return out
        return self.emit(*await compute())
