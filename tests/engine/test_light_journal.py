"""Light output batches: a streamed journal keeps canonical ActionOutput lines on disk, with the same meaning."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.record import events as ev
from rollback_tui.record.journal import CHUNK, Journal, read_journal
from rollback_tui.record.lightevents import OutputRef, light_output
from rollback_tui.engine.session import Session
from rollback_tui.errors import JournalError
from rollback_tui.plan.loader import load_plan
from rollback_tui.report.render import ReportHeader, render_report
from rollback_tui.report.writer import NO_SIGN_NOTE

from .conftest import Scripted, approving, check_journal, sh, simple_steps

ALPHABET = ["a", '"', "\\", "\n", "\x1b", "\x00", "\x7f", "é", "😀", "\u2028", ",", '","', '\\"', '"lines":', "/",
            "\t", "\x08", "\x0c", "\r", "]}"]


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]


def _text(rnd: random.Random, most: int) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, most)))


def _output(rnd: random.Random) -> ev.ActionOutput:
    return ev.ActionOutput(seq=rnd.randint(0, 10**6), step=_text(rnd, 4), action=_text(rnd, 3), host=_text(rnd, 3),
                           actor=_text(rnd, 3), stream=rnd.choice(["stdout", "stderr", "info"]),
                           lines=[_text(rnd, 8) for _ in range(rnd.randint(0, 4))],
                           ts=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=rnd.choice(
                               [0, 5, 120000, 86_399_999_999])))


def test_a_light_batch_is_only_ever_a_canonical_valid_event() -> None:
    """Seeded random batches, half of them damaged: whenever the light parser takes a line, pydantic takes it too,
    with the same fields, and the line is exactly its canonical dump (so the report can embed it as it is)."""
    rnd = random.Random(16)
    taken = 0
    for _ in range(6000):
        line = _output(rnd).model_dump_json().encode()
        if rnd.random() < 0.5:
            damaged = bytearray(line)
            for _ in range(rnd.randint(1, 3)):
                at = rnd.randrange(len(damaged))
                op = rnd.random()
                if op < 0.3:
                    del damaged[at]
                elif op < 0.6:
                    damaged.insert(at, rnd.choice(b'"\\,]}[{ a0\x00\xff\xc3'))
                else:
                    damaged[at] = rnd.choice(b'"\\,]}[{ a0\x00\xff\xc3')
            line = bytes(damaged)
        if b"\n" in line:
            continue
        for clean in (False, True):
            if clean and not (line.isascii() and not any(byte < 32 for byte in line)):
                continue
            ref = light_output(line, 0, _Bytes(line), {}, clean)  # type: ignore[arg-type]
            if ref is None:
                continue
            taken += 1
            full = ev.parse_event(line)  # raises if the light parser took something pydantic refuses
            assert full.model_dump_json().encode() == line
            assert (ref.seq, ref.ts, ref.step, ref.action, ref.host, ref.stream, ref.actor, ref.line_count,
                    ref.lines) == (full.seq, full.ts, full.step, full.action, full.host, full.stream, full.actor,
                                   len(full.lines), full.lines)
    assert taken > 2000  # the undamaged ones at least


def _journal(path: Path, count: int) -> list[ev.EventBase]:
    events: list[ev.EventBase] = [ev.StepStarted(step="assess"),
                                  ev.ActionStarted(step="assess", action="look", kind="shell")]
    rnd = random.Random(3)
    for index in range(count):
        events.append(ev.ActionOutput(step="assess", action="look", host="web-1",
                                      lines=[f"line {index} " + _text(rnd, 6) for _ in range(3)]))
    events.append(ev.ActionFinished(step="assess", action="look", status="ok"))
    with Journal.create(path) as journal:
        journal.append_many(events)
    return events


def test_light_and_full_reads_give_the_same_report(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 3000)
    # a non-canonical output line (spaces, a +00:00 time) is parsed in full, and still means the same
    with path.open("ab") as handle:
        handle.write(b'{"schema_version": 1, "seq": 3004, "ts": "2026-01-01T00:00:00+00:00", "type": "action_output",'
                     b' "step": "assess", "action": "look", "lines": ["odd"]}\n')
    full, light = read_journal(path), read_journal(path, light=True)
    assert full.dropped == light.dropped == []
    assert [e.seq for e in light.events] == [e.seq for e in full.events] == list(range(1, 3005))
    refs = [event for event in light.events if isinstance(event, OutputRef)]
    assert len(refs) == 3000 and not isinstance(light.events[-1], OutputRef)
    assert all(ref == event for ref, event in zip(light.events, full.events))
    assert render_report(light.events) == render_report(full.events)


def test_streamed_reads_cross_chunk_boundaries(tmp_path: Path) -> None:
    """A journal of several chunks: lines cut between two reads are joined again; resume continues the seq."""
    path = tmp_path / "j.jsonl"
    _journal(path, 1)
    with Journal.open_existing(path) as journal:
        line = "x" * 1000
        for _ in range(CHUNK * 2 // (3 * 1000) // 500 + 2):
            journal.append_many([ev.ActionOutput(step="assess", action="look", lines=[line] * 3)
                                 for _ in range(500)])
        last = journal.last_seq
    with Journal.open_existing(path) as journal:
        assert journal.last_seq == last and journal.append(ev.Signal(name="Rollback complete")).seq == last + 1
        refs = [event for event in journal.recovered.events if isinstance(event, OutputRef)]
        assert len(refs) == last - 3 and refs[-1].lines == [line] * 3
    assert path.stat().st_size > 2 * CHUNK


def test_a_gap_in_a_light_journal_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 20)
    lines = path.read_bytes().split(b"\n")
    del lines[9]  # an output batch removed: seq 10 is missing
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match=r"j.jsonl:10: sequence 11 follows 9"):
        Journal.open_existing(path)


def test_a_damaged_output_line_before_the_end_is_refused_as_before(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 20)
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"lines":["', b'"lines":[', 1)  # valid-looking, not JSON
    path.write_bytes(b"\n".join(lines))
    assert read_journal(path, light=True).dropped[0].startswith("line 6: unreadable event")
    with pytest.raises(JournalError, match="is corrupt: line 6"):
        Journal.open_existing(path)


def test_closing_the_journal_releases_the_lock_although_light_events_remain(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _journal(path, 5)
    journal = Journal.open_existing(path)
    kept = journal.recovered.events
    journal.close()
    with Journal.open_existing(path) as again:  # not JournalLocked: the light events' descriptor holds no lock
        assert again.last_seq == 8
    assert [ref.lines[0].startswith("line 0") for ref in kept if isinstance(ref, OutputRef)][:1] == [True]


async def test_a_live_session_keeps_its_output_light_and_reports_the_same(write_plan: Any, tmp_path: Path) -> None:
    """Output recorded live stays on disk too (the session holds OutputRefs); the report it writes is the report
    of the journal read in full."""
    steps = simple_steps()
    steps[0]["actions"][0] = {"id": "look", **sh("import sys\nfor i in range(3000): print('out', i, '\\x1b[31m')")}
    journal = tmp_path / "s.journal.jsonl"
    session = Session.start(load_plan(write_plan(steps)), decisions=Scripted(approving()), operator="olivia",
                            journal_path=journal, no_sign=True)
    result = await session.run()
    assert result.exit_state == "completed"
    refs = [event for event in session.events if isinstance(event, OutputRef)]
    assert refs and sum(ref.line_count for ref in refs) >= 3000
    full = check_journal(journal)
    text = render_report(full, ReportHeader(unsigned=NO_SIGN_NOTE, journal=str(journal)))
    assert result.report.path.read_text() == text


def test_follow_reads_light_and_waits_for_a_torn_line(tmp_path: Path) -> None:
    from rollback_tui.ui.drivers import FollowDriver

    path = tmp_path / "j.jsonl"
    _journal(path, 10)
    driver = FollowDriver(path)
    first = driver.read_new()
    assert [e.seq for e in first] == list(range(1, 14)) and sum(isinstance(e, OutputRef) for e in first) == 10
    assert first[5].lines == ev.parse_event(path.read_bytes().split(b"\n")[5]).lines
    line = ev.ActionOutput(seq=14, step="assess", action="look", lines=["late"]).model_dump_json().encode()
    with path.open("ab") as handle:
        handle.write(line[:30])  # a writer mid-line
    assert driver.read_new() == []
    with path.open("ab") as handle:
        handle.write(line[30:] + b"\n")
    again = driver.read_new()
    assert [e.seq for e in again] == [14] and again[0].lines == ["late"] and driver.dropped == 0
