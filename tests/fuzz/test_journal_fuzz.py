"""Fuzzing the journal reader: truncated and corrupted journals recover every complete event and name the rest."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_tui.record.events import ActionOutput, Signal, StepStarted
from rollback_tui.record.journal import Journal, read_journal

EVENTS = [
    StepStarted(step="assess"),
    ActionOutput(step="assess", action="look", lines=["line one", "ünïcode ✔", "x" * 300]),
    Signal(name="Rollback complete"),
] * 5


def _journal(tmp: Path) -> tuple[bytes, list[int]]:
    path = tmp / "j.jsonl"
    path.unlink(missing_ok=True)
    journal = Journal.create(path)
    for event in EVENTS:
        journal.append(event)
    journal.close()
    data = path.read_bytes()
    ends = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    return data, ends


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_truncated_journal_keeps_every_complete_event(tmp_path: Path, data: st.DataObject) -> None:
    blob, ends = _journal(tmp_path)
    cut = data.draw(st.integers(0, len(blob)))
    path = tmp_path / "cut.jsonl"
    path.write_bytes(blob[:cut])
    result = read_journal(path)
    complete = sum(1 for end in ends if end <= cut)
    # a last line cut exactly before its newline is still a complete event
    partial_ok = cut not in ends and cut > (ends[complete - 1] if complete else 0)
    assert [event.seq for event in result.events][:complete] == list(range(1, complete + 1))
    assert len(result.events) in (complete, complete + 1)
    if len(result.events) == complete and partial_ok:
        assert len(result.dropped) == 1 and result.torn_tail, result.dropped
    if cut in ends or cut == 0:
        assert result.dropped == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_corrupted_journal_never_crashes_and_names_what_it_dropped(tmp_path: Path, data: st.DataObject) -> None:
    blob, ends = _journal(tmp_path)
    corrupted = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 5))):
        position = data.draw(st.integers(0, len(corrupted) - 1))
        corrupted[position] = data.draw(st.integers(0, 255))
    path = tmp_path / "bad.jsonl"
    path.write_bytes(bytes(corrupted))
    result = read_journal(path)
    lines = bytes(corrupted).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    # every line is either recovered as an event or named among the dropped
    assert len(result.events) + len(result.dropped) >= len([line for line in lines if line.strip()])
    for reason in result.dropped:
        assert reason.strip(), "a dropped line is named with a reason"
