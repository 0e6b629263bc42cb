"""A quick look at a journal before a front end opens it: is a live session writing it, has it ended for good."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from rollback_tui.record.events import parse_event
from rollback_tui.record.journal import holder_text

#: Only the end of the journal is read: a final session's last line is its SessionFinished.
TAIL_BYTES = 1 << 16
FINAL_STATES = frozenset({"completed", "aborted", "partial"})


@dataclass(frozen=True)
class Peek:
    holder: str = ""
    """`pid N on host H since T` when a live session holds the journal's lock; '' otherwise."""
    final_state: str = ""
    """The exit state when the journal's last event ends the session for good (not blocked); '' otherwise."""
    final_message: str = ""


def peek_journal(path: Path) -> Peek:
    """Read-only, without following a symlink and without blocking; OSError when it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released when fd closes: only asks whether it is held
        except BlockingIOError:
            return Peek(holder=holder_text(Path(path)))
        size = os.fstat(fd).st_size
        start = max(0, size - TAIL_BYTES)
        os.lseek(fd, start, os.SEEK_SET)
        tail = os.read(fd, size - start)
    finally:
        os.close(fd)
    lines = [line for line in tail.split(b"\n") if line.strip()]
    if not lines:
        return Peek()
    try:
        last = parse_event(lines[-1])
    except ValueError:
        return Peek()  # a torn or damaged last line: the session did not end cleanly; resume deals with it
    if last.type == "session_finished" and last.exit_state in FINAL_STATES:  # type: ignore[attr-defined]
        return Peek(final_state=last.exit_state, final_message=last.message)  # type: ignore[attr-defined]
    return Peek()
