"""Output batching: an action's lines reach the journal in batches, never one event per line."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence

from rollback_tui.adapters.proc import Continued
from rollback_tui.record.events import ActionOutput, Event, EventBase
from rollback_tui.errors import JournalError

Record = Callable[[Sequence[EventBase]], list[Event]]
CONTINUES = "↩"
"""Ends a recorded piece of a line too long for one (the line goes on in the next line of the same stream)."""
STREAM_LIMIT = 8 * 1024 * 1024
"""Characters of output recorded per host and stream of one action attempt; past it only a count and the last
TAIL_LINES lines are recorded, so a command printing without end cannot fill the journal, the report or memory."""
TAIL_LINES = 200


class OutputBatcher:
    """Coalesces an action's output lines per (host, stream): a journal line every ~50 ms or 500 lines, and always
    before the action's finished event, so a flood of output cannot flood the journal.

    Pieces of a long line (Continued) are recorded as lines ending with CONTINUES, cut where `safe_cut` says no
    secret is split in two (the record path masks each line on its own); the few characters after the cut wait
    for the next piece. Past `limit` characters on a stream, lines are counted, and only the last TAIL_LINES
    are recorded at the end, after a line saying how much was left out."""

    def __init__(self, record: Record, step: str, action: str, *, interval: float = 0.05, max_lines: int = 500,
                 safe_cut: Callable[[str], int] = len, limit: int = STREAM_LIMIT) -> None:
        self._record = record
        self._step = step
        self._action = action
        self._interval = interval
        self._max = max_lines
        self._buffers: dict[tuple[str, str], list[str]] = {}
        self._pending: list[EventBase] = []
        """Events an adapter reported (HostTask), with the output batched before each: recorded in this order."""
        self._safe_cut = safe_cut
        self._carry: dict[tuple[str, str], str] = {}
        """Per stream: the end of a long line's last piece, held until the next piece (or the end)."""
        self._limit = limit
        self._sizes: dict[tuple[str, str], int] = {}
        self._dropped: dict[tuple[str, str], list[int]] = {}
        """Per stream past the limit: [lines, characters] not recorded."""
        self._tails: dict[tuple[str, str], deque[str]] = {}
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
        key = (host, stream)
        for line in lines:
            carry = self._carry.pop(key, "")
            text = carry + line if carry else line
            if isinstance(line, Continued):
                cut = self._safe_cut(text)
                if cut < len(text):
                    self._carry[key] = text[cut:]
                if cut:
                    self._keep(key, buffer, str(text[:cut]) + CONTINUES)
            else:
                self._keep(key, buffer, str(text))
        if len(buffer) >= self._max:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self._interval, self._on_timer)

    def event(self, event: EventBase) -> None:
        """An event the adapter reports (e.g. HostTask): recorded after the output that came before it, batched
        like output (one journal write per batch, not one fsync per host and task)."""
        if self._error is not None:
            raise self._error
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.event, event)
            return
        self._pending.extend(self._take_output())
        self._pending.append(event)
        if len(self._pending) >= self._max:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self._interval, self._on_timer)

    def _keep(self, key: tuple[str, str], buffer: list[str], line: str) -> None:
        size = self._sizes.get(key, 0)
        if size < self._limit:
            self._sizes[key] = size + len(line) + 1
            buffer.append(line)
            return
        dropped = self._dropped.setdefault(key, [0, 0])
        dropped[0] += 1
        dropped[1] += len(line) + 1
        self._tails.setdefault(key, deque(maxlen=TAIL_LINES)).append(line)

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
        events = self._pending + self._take_output()
        self._pending = []
        if events:
            self._record(events)

    def _take_output(self) -> list[EventBase]:
        batches = [(key, lines) for key, lines in self._buffers.items() if lines]
        self._buffers = {}
        events: list[EventBase] = []
        for (host, stream), lines in batches:
            for start in range(0, len(lines), self._max):
                events.append(ActionOutput(step=self._step, action=self._action, host=host,
                                           stream=stream, lines=lines[start:start + self._max]))  # type: ignore[arg-type]
        return events

    def close(self) -> None:
        for key, rest in self._carry.items():  # a long line cut off (the stream ended or was stopped)
            self._keep(key, self._buffers.setdefault(key, []), rest)
        self._carry = {}
        for key, (lines, chars) in self._dropped.items():
            tail = list(self._tails.pop(key, ()))
            notice = (f"… {lines} lines ({chars} characters) of {key[1]} not recorded: more than {self._limit} "
                      f"characters on this stream; the last {len(tail)} of them follow")
            self._buffers.setdefault(key, []).extend([notice, *tail])
        self._dropped = {}
        self.flush()
        if self._error is not None:
            raise self._error
