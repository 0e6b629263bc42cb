"""The cockpit's inbox is bounded: past its budget output batches are counted, every other event is kept in order."""

from __future__ import annotations

import threading
from pathlib import Path

from rollback_tui.record import events as ev
from rollback_tui.record.journal import Journal, read_journal
from rollback_tui.ui.app import _older_output_counted
from rollback_tui.ui.inbox import HiddenOutput, Inbox


def _output(seq: int, step: str = "code", lines: int = 100) -> ev.ActionOutput:
    return ev.ActionOutput(seq=seq, step=step, action="a", lines=[f"l{n}" for n in range(lines)])


def test_output_past_the_budget_is_counted_not_queued() -> None:
    inbox = Inbox(budget=1000)
    for seq in range(1, 21):
        inbox.append(_output(seq))  # 2,000 lines offered, 1,000 fit
    inbox.append(ev.Verification(seq=21, step="code", check="c", ok=True))
    inbox.append(_output(22))
    inbox.append(_output(23, step="validate"))
    batch = inbox.drain()
    assert [e.seq for e in batch[:10]] == list(range(1, 11))
    hidden = batch[10]
    assert isinstance(hidden, HiddenOutput) and (hidden.step, hidden.events, hidden.lines, hidden.last_seq) == \
        ("code", 10, 1000, 20)
    assert batch[11].type == "verification"  # never dropped, still after the output it followed
    assert isinstance(batch[12], HiddenOutput) and batch[12].lines == 100  # the budget is still used up
    assert isinstance(batch[13], HiddenOutput) and batch[13].step == "validate"
    assert inbox.hidden_lines == 1200 and not inbox
    inbox.append(_output(24))  # drained: the budget is free again
    assert inbox.drain()[0].seq == 24


def test_a_flood_from_many_threads_stays_bounded_and_counts_every_line() -> None:
    inbox = Inbox(budget=5000)

    def flood(base: int) -> None:
        for n in range(2000):
            inbox.append(_output(base + n, lines=10))

    threads = [threading.Thread(target=flood, args=(k * 10_000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batch = inbox.drain()
    shown = sum(len(e.lines) for e in batch if not isinstance(e, HiddenOutput))
    hidden = sum(e.lines for e in batch if isinstance(e, HiddenOutput))
    assert shown <= 5000 and shown + hidden == 4 * 2000 * 10 == shown + inbox.hidden_lines


def test_a_long_light_history_reads_only_the_lines_the_log_can_hold(tmp_path: Path) -> None:
    """Replaying or resuming a long journal: light output batches older than the log pane's capacity are counted,
    never read back; every other event is kept in order."""
    path = tmp_path / "j.jsonl"
    with Journal.create(path) as journal:
        journal.append_many([ev.StepStarted(step="code"), *[_output(0) for _ in range(50)],
                             ev.Verification(step="code", check="c", ok=True), *[_output(0) for _ in range(30)]])
    events = read_journal(path, light=True).events
    out = _older_output_counted(events, keep=2500)
    assert out[0].type == "step_started"
    assert isinstance(out[1], HiddenOutput) and (out[1].events, out[1].lines, out[1].last_seq) == (50, 5000, 51)
    assert out[2].type == "verification"
    assert isinstance(out[3], HiddenOutput) and out[3].lines == 500
    assert [e.seq for e in out[4:]] == list(range(58, 83))  # the last 2,500 lines, still light
    assert _older_output_counted(events, keep=10**6) == events
