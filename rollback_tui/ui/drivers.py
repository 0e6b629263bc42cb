"""Event sources that feed the cockpit: a live Session, a scripted list (tests), a replay, a followed journal.

Each driver's `run(app)` is awaited inside the app's engine worker; it hands events to `app.post_event`
(thread-safe, coalesced by the app) and, when live, answers the engine's questions through `UIDecisionSource`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollback_tui.ui.app import CockpitApp

#: Replay shortens idle gaps (a human thinking for 20 minutes) to this many real seconds at speed 1.
MAX_REPLAY_GAP = 10.0
#: `follow` reads at most this much of the journal per poll.
FOLLOW_READ_LIMIT = 64 * 1024 * 1024


@dataclass
class UIDecision:
    """Used only when the engine's Decision class is not importable (tests of the UI alone)."""

    choice: str
    reason: str = ""
    by: str = ""


def make_decision(choice: str, reason: str, by: str) -> Any:
    try:
        from rollback_tui.engine.decisions import Decision
    except ImportError:
        return UIDecision(choice, reason, by)
    return Decision(choice=choice, reason=reason, by=by)  # type: ignore[arg-type]


class UIDecisionSource:
    """The engine's DecisionSource: shows the request and awaits the operator's keys."""

    def __init__(self, app: CockpitApp) -> None:
        self.app = app

    async def decide(self, request: Any) -> Any:
        return await self.app.ask(request)


SessionFactory = Callable[[UIDecisionSource, list[Callable[[Any], None]], Callable[[], str]], Any]


class LiveDriver:
    """Runs a Session (start or resume) built by `factory(decisions, listeners, passphrase)`."""

    read_only = False
    mode = "live"

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self.session: Any = None

    async def run(self, app: CockpitApp) -> None:
        session = self.factory(UIDecisionSource(app), [app.post_event], app.ask_passphrase)
        if inspect.isawaitable(session):
            session = await session
        self.session = session
        app.loading_finished()
        for event in list(getattr(session, "events", None) or []):  # resume: the journal so far, then live
            app.post_event(event)
        journal = getattr(session, "journal_path", None)
        if journal:
            app.report_info["journal"] = str(journal)
        result = await session.run()
        app.session_result(result)


class ScriptDriver:
    """Feeds a fixed list of events; for a DecisionRequested it asks the cockpit and emits the DecisionMade."""

    read_only = False
    mode = "live"

    def __init__(self, events: Sequence[Any], *, answer: bool = True, make_made: Callable[..., Any] | None = None) -> None:
        self.events = list(events)
        self.answer = answer
        self.make_made = make_made
        self.decisions: list[Any] = []

    async def run(self, app: CockpitApp) -> None:
        source = UIDecisionSource(app)
        for event in self.events:
            app.post_event(event)
            if self.answer and getattr(event, "type", "") == "decision_requested":
                decision = await source.decide(event)
                self.decisions.append(decision)
                if self.make_made is not None:
                    app.post_event(self.make_made(event, decision))
            await asyncio.sleep(0)


class ReplayDriver:
    """Re-emits recorded events at their recorded pace times `speed`; pause, step, jump, position."""

    read_only = True
    mode = "replay"

    def __init__(self, events: Sequence[Any], speed: float = 1.0, *, start_paused: bool = False) -> None:
        self.events = list(events)
        self.speed = max(speed, 1e-6)
        self.position = 0
        self.paused = start_paused
        self._wake = asyncio.Event()
        self.app: CockpitApp | None = None

    def _gap(self, index: int) -> float:
        if index == 0:
            return 0.0
        before, after = self.events[index - 1].ts, self.events[index].ts
        return min(max(0.0, (after - before).total_seconds()), MAX_REPLAY_GAP) / self.speed

    async def run(self, app: CockpitApp) -> None:
        self.app = app
        app.set_replay_position(self)
        while True:
            self._wake.clear()
            if self.paused or self.position >= len(self.events):
                app.set_replay_position(self)
                await self._wake.wait()
                continue
            delay = self._gap(self.position)
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                    continue  # a control changed things: recompute
                except asyncio.TimeoutError:
                    pass
            app.post_event(self.events[self.position])
            self.position += 1
            if self.position % 50 == 0 or delay > 0.02 or self.position == len(self.events):
                app.set_replay_position(self)
            if delay <= 0:
                await asyncio.sleep(0)

    # ------------------------------------------------------------ controls (called from key handlers)

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self._wake.set()

    def step(self, delta: int) -> None:
        """One event forward (applied at once), or one back (the view is rebuilt up to there). Pauses."""
        self.paused = True
        target = max(0, min(len(self.events), self.position + delta))
        self.seek(target)

    def seek(self, index: int) -> None:
        assert self.app is not None
        index = max(0, min(len(self.events), index))
        if index >= self.position:
            self.app.apply_now(self.events[self.position:index])
        else:
            self.app.rebuild(self.events[:index])
        self.position = index
        self.app.set_replay_position(self)
        self._wake.set()

    def jump_to_step(self, step_id: str) -> bool:
        for index, event in enumerate(self.events):
            if getattr(event, "type", "") == "step_started" and event.step == step_id:
                self.paused = True
                self.seek(index + 1)
                return True
        return False

    def set_speed(self, factor: float) -> None:
        self.speed = min(1000.0, max(0.125, self.speed * factor))
        self._wake.set()


class FollowDriver:
    """Tails a journal as it grows (polling ~100 ms): a read-only live mirror of another terminal's session."""

    read_only = True
    mode = "follow"

    def __init__(self, path: Path, poll: float = 0.1) -> None:
        self.path = path
        self.poll = poll
        self.offset = 0
        self.dropped = 0
        self.finished = False

    def read_new(self) -> list[Any]:
        """Complete new lines since the last read, parsed (output batches light: their lines are read from the
        journal only if shown); a torn last line waits for the next poll."""
        from rollback_tui.record.journal import tail_scan
        from rollback_tui.errors import JournalError

        try:  # never through a link, never blocking on a FIFO; at most 64 MB a poll
            events, consumed, dropped, read = tail_scan(self.path, self.offset, limit=FOLLOW_READ_LIMIT, light=True)
        except (OSError, JournalError):
            return []
        if not consumed and read > FOLLOW_READ_LIMIT:  # a line longer than any event: skip it, counted as dropped
            self.offset += read
            self.dropped += 1
            return []
        self.offset += consumed
        self.dropped += dropped
        return events

    async def run(self, app: CockpitApp) -> None:
        while True:
            events = await asyncio.to_thread(self.read_new)
            for event in events:
                app.post_event(event)
                kind = getattr(event, "type", "")
                if kind == "session_finished":
                    self.finished = True
                elif kind == "session_reopened":  # a blocked session continues: keep following
                    self.finished = False
            app.follow_status(self)
            await asyncio.sleep(self.poll)
