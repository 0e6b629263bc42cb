"""The HostTask event: its journal form, and its order among an action's output batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from rollback_tui.engine.output import OutputBatcher
from rollback_tui.record.events import HostTask, dump_event, parse_event


def test_host_task_round_trips_and_omits_its_defaults() -> None:
    plain = HostTask(step="code", action="roll", host="web-1", task="restart", status="changed")
    text = dump_event(plain)
    assert '"wave"' not in text and '"detail"' not in text
    assert parse_event(text) == plain
    waved = HostTask(step="code", action="roll", wave=2, host="web-1", task="restart", status="failed",
                     detail="exit 3")
    assert parse_event(dump_event(waved)) == waved and '"wave":2' in dump_event(waved)


async def test_events_keep_their_place_among_output_lines_and_are_batched() -> None:
    recorded: list[list[Any]] = []

    def record(events: Sequence[Any]) -> list[Any]:
        recorded.append(list(events))
        return list(events)

    batcher = OutputBatcher(record, "code", "roll", interval=0.05)
    task = HostTask(step="code", action="roll", host="web-1", task="t", status="ok")
    batcher.add("web-1", "stdout", ["before"])
    batcher.event(task)
    batcher.add("web-1", "stdout", ["after"])
    worker = threading.Thread(target=batcher.event, args=(task.model_copy(update={"host": "web-2"}),))
    worker.start()
    worker.join()
    await asyncio.sleep(0.2)
    batcher.close()
    flat = [(e.type, getattr(e, "host", ""), getattr(e, "lines", None)) for batch in recorded for e in batch]
    assert flat == [("action_output", "web-1", ["before"]), ("host_task", "web-1", None),
                    ("action_output", "web-1", ["after"]), ("host_task", "web-2", None)]
    assert len(recorded) == 1  # one journal write for all of it
