"""Output batching: an action's lines reach the journal in batches, never one event per line."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

from rollback_tui.engine.events import ActionOutput, Event, EventBase
from rollback_tui.errors import JournalError

Record = Callable[[Sequence[EventBase]], list[Event]]


class OutputBatcher:
    """Coalesces an action's output lines per (host, stream): a journal line every ~50 ms or 500 lines, and always
    before the action's finished event, so a flood of output cannot flood the journal."""

    def __init__(self, record: Record, step: str, action: str, *, interval: float = 0.05, max_lines: int = 500) -> None:
        self._record = record
        self._step = step
        self._action = action
        self._interval = interval
        self._max = max_lines
        self._buffers: dict[tuple[str, str], list[str]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._error: JournalError | None = None
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def add(self, host: str, stream: str, lines: list[str]) -> None:
        if self._error is not None:
            raise self._error
        if not lines:
            return
        if threading.get_ident() != self._thread:
            # an adapter logging from its worker thread (database work): the journal is the loop's alone;
            # FIFO scheduling puts these lines before the thread's result reaches the runner
            self._loop.call_soon_threadsafe(self.add, host, stream, list(lines))
            return
        buffer = self._buffers.setdefault((host, stream), [])
        buffer.extend(lines)
        if len(buffer) >= self._max:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.flush()
        except JournalError as exc:  # raised again to the adapter at its next line, and to the runner at close
            self._error = exc

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batches = [(key, lines) for key, lines in self._buffers.items() if lines]
        self._buffers = {}
        events: list[EventBase] = []
        for (host, stream), lines in batches:
            for start in range(0, len(lines), self._max):
                events.append(ActionOutput(step=self._step, action=self._action, host=host,
                                           stream=stream, lines=lines[start:start + self._max]))  # type: ignore[arg-type]
        if events:
            self._record(events)

    def close(self) -> None:
        self.flush()
        if self._error is not None:
            raise self._error
