"""The journal: 0600, gap-free seq, fsync per append, one live writer (fcntl), torn-tail recovery, disk full."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rollback_tui.record.events import Signal, StepStarted
from rollback_tui.record.journal import Journal, JournalDiskFull, read_journal, tail_journal
from rollback_tui.errors import JournalError, JournalLocked


def test_created_0600_with_contiguous_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    old = os.umask(0o000)  # even a permissive umask must not widen it
    try:
        with Journal.create(path) as journal:
            first = journal.append(StepStarted(step="assess"))
            batch = journal.append_many([Signal(name="Rollback complete"), Signal(name="System restored")])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.seq == 1 and [event.seq for event in batch] == [2, 3]
    read = read_journal(path)
    assert [event.seq for event in read.events] == [1, 2, 3] and read.dropped == []
    assert not path.with_name("j.jsonl.lock").exists()  # the holder note goes with the lock


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.create(path).close()
    with pytest.raises(JournalError, match="already exists"):
        Journal.create(path)


def test_second_writer_gets_the_holders_pid_and_host(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.create(path):
        with pytest.raises(JournalLocked) as info:
            Journal.open_existing(path)
    message = str(info.value)
    assert f"pid {os.getpid()}" in message and socket.gethostname() in message
    with Journal.open_existing(path) as again:  # released on close
        assert again.last_seq == 0


def test_lock_holds_against_another_process(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.create(path) as journal:
        journal.append(StepStarted(step="assess"))
        code = ("from pathlib import Path; from rollback_tui.record.journal import Journal\n"
                f"Journal.open_existing(Path({str(path)!r}))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"in use by a live session: pid {os.getpid()} on host {socket.gethostname()}" in done.stderr


def test_torn_last_line_is_dropped_named_and_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.create(path) as journal:
        for step in ("assess", "flags", "code"):
            journal.append(StepStarted(step=step))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"schema_version":1,"seq":4,"ts":"2026-')  # a crash in the middle of a line
    read = read_journal(path)
    assert [event.seq for event in read.events] == [1, 2, 3]
    assert read.torn_tail and len(read.dropped) == 1 and read.dropped[0].startswith("line 4: torn last line")
    with Journal.open_existing(path) as journal:
        assert journal.recovered.dropped == read.dropped
        assert journal.append(StepStarted(step="database")).seq == 4
    again = read_journal(path)
    assert [event.seq for event in again.events] == [1, 2, 3, 4] and again.dropped == []


def test_garbage_last_line_with_newline_is_a_torn_tail_too(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.create(path) as journal:
        journal.append(StepStarted(step="assess"))
    path.write_bytes(path.read_bytes() + b"\x00\x00\x00\n")
    with Journal.open_existing(path) as journal:
        assert journal.append(StepStarted(step="flags")).seq == 2
    assert [event.seq for event in read_journal(path).events] == [1, 2]


def test_corruption_before_the_end_is_reported_and_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.create(path) as journal:
        for step in ("assess", "flags", "code"):
            journal.append(StepStarted(step=step))
    lines = path.read_bytes().split(b"\n")
    lines[1] = b'{"not": "an event"}'
    path.write_bytes(b"\n".join(lines))
    read = read_journal(path)
    assert [event.seq for event in read.events] == [1, 3]
    assert read.dropped and read.dropped[0].startswith("line 2: unreadable event") and not read.torn_tail
    with pytest.raises(JournalError, match="is corrupt: line 2"):
        Journal.open_existing(path)


def test_disk_full_keeps_the_journal_intact_and_reopenable(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    calls = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] >= 3:  # a short write, then no space: the partial line must not stay behind
            if calls["n"] == 3:
                return os.write(fd, data[:7])
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    journal = Journal.create(path, write=write)
    journal.append(StepStarted(step="assess"))
    journal.append(StepStarted(step="flags"))
    with pytest.raises(JournalDiskFull, match="disk is full") as info:
        journal.append(StepStarted(step="code"))
    assert "intact up to event 2" in str(info.value)
    with pytest.raises(JournalDiskFull):  # stays broken: nothing is written after a failure
        journal.append(StepStarted(step="code"))
    journal.close()
    read = read_journal(path)
    assert [event.seq for event in read.events] == [1, 2] and read.dropped == []
    with Journal.open_existing(path) as reopened:
        assert reopened.append(StepStarted(step="code")).seq == 3


def test_tail_reads_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal.create(path) as journal:
        journal.append(StepStarted(step="assess"))
        events, offset = tail_journal(path, 0)
        assert [event.seq for event in events] == [1]
        with path.open("ab") as handle:
            handle.write(b'{"half"')
        events, again = tail_journal(path, offset)
        assert events == [] and again == offset
