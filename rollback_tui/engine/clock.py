"""The rollback window: time since the session first started (resumes included), and its 50/80/100 % warnings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

from rollback_tui.record.events import EventBase, WindowWarning, utcnow

THRESHOLDS: tuple[int, ...] = (50, 80, 100)


class WindowClock:
    """Wall-clock time since the first SessionStarted, so a resumed session keeps counting where it was."""

    def __init__(self, started_at: datetime, window: float, *, now: Callable[[], datetime] = utcnow) -> None:
        self.started_at = started_at
        self.window = window
        self._now = now

    def elapsed(self) -> float:
        return max(0.0, (self._now() - self.started_at).total_seconds())

    def used(self) -> float:
        """Fraction of the window used (0 when there is no window)."""
        return self.elapsed() / self.window if self.window > 0 else 0.0

    async def warn(self, emit: Callable[[EventBase], None], *, already: Iterable[int] = ()) -> None:
        """Emit a WindowWarning as each threshold is reached (ones passed while the session was down at once).

        Runs until the last warning or until cancelled."""
        if self.window <= 0:
            return
        done = set(already)
        for percent in THRESHOLDS:
            if percent in done:
                continue
            delay = self.window * percent / 100 - self.elapsed()
            if delay > 0:
                await asyncio.sleep(delay)
            emit(WindowWarning(percent=percent, elapsed=round(self.elapsed(), 3), window=self.window))
