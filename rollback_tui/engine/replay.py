"""Replay for resume: a resumed runner re-runs the procedure and meets the journal's recorded events on the way.

Every event the runner would emit is matched against the next recorded procedure event (and not written again);
every external call takes its recorded result. When the history runs out, events go to the journal again.

A reopened blocked session (SessionReopened) cuts its history: the blocked ending (the events after the reopen's
`continue_after_seq`, up to the reopen) is left out, and the runner, arriving at the cut, claims it
(`claim_reopen`) to ask the halting question again instead of following its recorded answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rollback_tui.record.events import Event, EventBase
from rollback_tui.errors import JournalError

Record = Callable[[Sequence[EventBase]], list[Event]]

#: Event types the procedure itself produces (replayed on resume); the rest (session lifecycle, output, health,
#: window warnings) are facts of one process and are never replayed.
PROCEDURE_TYPES: frozenset[str] = frozenset({
    "input_checked", "plan_reviewed", "approval_given", "step_started", "step_finished", "action_started",
    "action_finished", "verification", "decision_requested", "decision_made", "signal", "session_finished",
    "waves_planned", "hosts_excluded", "wave_paused",
})
#: Where a reopen may continue from: the last of these before a blocked ending is the decision or check that blocked.
REOPEN_POINT_TYPES: frozenset[str] = frozenset({"decision_made", "decision_requested", "input_checked"})
#: What identifies an event for matching: never times, evidence or output, which differ from run to run.
KEY_FIELDS = ("type", "step", "action", "attempt", "request_id", "kind", "subject", "input_id", "role", "gate",
              "status", "name", "approved", "exit_state", "wave")


class ReplayMismatch(JournalError):
    """The journal does not follow from the plan: the plan (or the tool) changed since it was written."""


def event_key(event: Any) -> tuple[Any, ...]:
    return tuple(getattr(event, name, None) for name in KEY_FIELDS)


def describe(event: Any) -> str:
    parts = [f"{name}={getattr(event, name)!r}" for name in KEY_FIELDS[1:]
             if getattr(event, name, None) not in (None, "", 0)]
    return f"{event.type}({', '.join(parts)})"


def reopen_point(events: Sequence[Event]) -> int | None:
    """The seq a reopen of a blocked session continues after: its last decision or input check (None: none)."""
    finished = max((i for i, event in enumerate(events) if event.type == "session_finished"), default=len(events))
    for event in reversed(events[:finished]):
        if event.type in REOPEN_POINT_TYPES:
            return event.seq
    return None


class Replay:
    """The recorded procedure events, consumed in order; then live recording through `record`."""

    def __init__(self, history: Sequence[Event], record: Record) -> None:
        reopens = [event for event in history if event.type == "session_reopened"]
        endings = [(reopen.continue_after_seq, reopen.seq) for reopen in reopens]  # type: ignore[attr-defined]
        self._history = [event for event in history if event.type in PROCEDURE_TYPES]
        self.cut_signals: frozenset[str] = frozenset()
        """Signals emitted by a blocked ending that a reopen cut: a signal is emitted once per session."""
        if endings:
            cut_out = [event for event in self._history if any(cut < event.seq < until for cut, until in endings)]
            self.cut_signals = frozenset(getattr(event, "name", "") for event in cut_out if event.type == "signal")
            self._history = [event for event in self._history
                             if not any(cut < event.seq < until for cut, until in endings)]
        self._cursor = 0
        self._record = record
        self._cuts: dict[int, Any] = {}
        """History index right after a reopen's cut -> the SessionReopened, until the runner passes it."""
        for reopen in reopens:
            index = next((i + 1 for i, event in enumerate(self._history)
                          if event.seq == reopen.continue_after_seq), None)  # type: ignore[attr-defined]
            if index is not None:
                self._cuts[index] = reopen

    def claim_reopen(self) -> Any:
        """At a reopen's cut (the halting answer or check just replayed): the SessionReopened, once; else None."""
        return self._cuts.pop(self._cursor, None) if self._cuts else None

    def _pass_cut(self) -> None:
        """The runner went on at a cut without claiming it (the halting question had no answer yet)."""
        if self._cuts:
            self._cuts.pop(self._cursor, None)

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
        self._pass_cut()
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
        self._pass_cut()
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
        self._pass_cut()
        if self.replaying:
            out = []
            while self.replaying and self._cursor not in self._cuts and match(self._history[self._cursor]):
                out.append(self._history[self._cursor])
                self._cursor += 1
            return out
        return self.emit(*await compute())
