"""The cockpit's event inbox, bounded: past a budget of queued output lines, output batches are only counted.

The journal is the truth and keeps every line; the screen shows at most a few thousand lines anyway, so while the
cockpit is behind (a flood of output), further batches wait as one `HiddenOutput` per step ("N lines not shown")
instead of as events. Every other event is always queued, in order.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

#: Output lines queued before further batches are only counted (the log pane keeps 5,000 lines on screen).
OUTPUT_LINE_BUDGET = 20_000


class HiddenOutput:
    """Output batches the cockpit did not show (counted for the view; their lines are in the journal)."""

    type = "output_hidden"

    def __init__(self, step: str) -> None:
        self.step = step
        self.events = 0
        self.lines = 0
        self.last_seq = 0


def line_count(event: Any) -> int:
    count = getattr(event, "line_count", None)
    return int(count) if count is not None else len(getattr(event, "lines", ()))


class Inbox:
    """FIFO of events from the engine (any thread) to the UI loop, holding at most `budget` output lines."""

    def __init__(self, budget: int = OUTPUT_LINE_BUDGET) -> None:
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._budget = budget
        self._output_lines = 0
        self.hidden_lines = 0
        """Output lines not shown since the cockpit opened (all of them are in the journal)."""

    def __len__(self) -> int:
        return len(self._queue)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def append(self, event: Any) -> None:
        with self._lock:
            queue = self._queue
            if getattr(event, "type", "") != "action_output":
                queue.append(event)
                return
            count = line_count(event)
            if self._output_lines + count <= self._budget:
                self._output_lines += count
                queue.append(event)
                return
            last = queue[-1] if queue else None
            if not isinstance(last, HiddenOutput) or last.step != event.step:
                last = HiddenOutput(event.step)
                queue.append(last)
            last.events += 1
            last.lines += count
            last.last_seq = max(last.last_seq, int(getattr(event, "seq", 0) or 0))
            self.hidden_lines += count

    def drain(self) -> list[Any]:
        """Everything queued, oldest first; the budget is free again."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            self._output_lines = 0
        return batch
