"""The journal: one JSON line per event, fsynced before the runner goes on, locked against a second live session."""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from rollback_tui.record.events import Event, EventBase, SessionStarted, parse_event
from rollback_tui.record.journal_lock import check_lock_path, flock, lock_path_for, write_holder
from rollback_tui.record.journal_lock import holder_text  # noqa: F401  (re-exported: the journal's public API)
from rollback_tui.errors import JournalError
from rollback_tui.safeio import FileRefused, fsync_dir, open_regular, read_fd

Writer = Callable[[int, bytes], int]
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class JournalDiskFull(JournalError):
    """The journal's disk is full: the session stops as blocked, the journal stays intact and resumable."""


@dataclass
class JournalRead:
    """The events of a journal and what could not be read (a torn last line after a crash, corrupt lines)."""

    events: list[Event]
    dropped: list[str] = field(default_factory=list)
    """One readable note per line that was dropped: `line N: why`."""
    good_size: int = 0
    """Bytes up to the end of the last complete, readable line (where appending may continue)."""
    torn_tail: bool = False
    """Only the last line was dropped (what a crash leaves); earlier corruption is not a torn tail."""


#: `follow` reads at most this much per poll; the header check reads at most this much looking for line 1's end.
TAIL_LIMIT = 64 * 1024 * 1024
_HEADER_LIMIT = 64 * 1024 * 1024


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{first.get('msg', 'invalid')}{f' at {where}' if where else ''}"
    return f"{type(exc).__name__}: {exc}"


def parse_journal_bytes(data: bytes, *, final: bool = True) -> tuple[list[Event], list[str], int, int, int]:
    """Parse complete lines of journal bytes.

    Returns (events, dropped notes, bytes consumed, number of the first bad line or -1, number of the last non-empty
    line). With final=False a last line without its newline is left unconsumed (a writer may be mid-line)."""
    events: list[Event] = []
    dropped: list[str] = []
    consumed = 0
    first_bad = -1
    last_line = -1
    lines = data.split(b"\n")
    tail = lines.pop()
    # bulk allocation of many small frozen models: the cyclic GC would run hundreds of times for nothing
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for number, raw in enumerate(lines, start=1):
            consumed += len(raw) + 1
            if not raw or raw.isspace():
                continue
            last_line = number
            try:
                events.append(parse_event(raw))
            except (ValidationError, ValueError) as exc:
                dropped.append(f"line {number}: unreadable event ({_why(exc)})")
                if first_bad < 0:
                    first_bad = number
        if final and tail.strip():
            number = last_line = len(lines) + 1
            try:
                events.append(parse_event(tail))
                consumed += len(tail)
            except (ValidationError, ValueError) as exc:
                dropped.append(f"line {number}: torn last line, {len(tail)} bytes without a newline ({_why(exc)})")
                if first_bad < 0:
                    first_bad = number
    finally:
        if was_enabled:
            gc.enable()
    return events, dropped, consumed, first_bad, last_line


def _open_read_only(path: Path) -> int:
    """The journal opened read-only: a regular file, never through a symlink, never blocking on a FIFO."""
    try:
        return open_regular(path, follow=False, what="journal")
    except FileNotFoundError:
        raise JournalError(f"journal {path}: no such file", hint="give the path printed as `journal: PATH`") from None
    except FileRefused as exc:
        raise JournalError(str(exc)) from None
    except OSError as exc:
        raise JournalError(f"journal {path}: cannot read: {exc.strerror}") from None


def _journal_read(data: bytes) -> JournalRead:
    events, dropped, _, first_bad, last_line = parse_journal_bytes(data)
    good_size = len(data)  # a complete last event without its newline is kept: the writer adds the newline
    if first_bad > 0:  # the good prefix ends where the first bad line starts
        good_size = 0
        for _ in range(first_bad - 1):
            good_size = data.index(b"\n", good_size) + 1
    torn = len(dropped) == 1 and first_bad == last_line
    return JournalRead(events=events, dropped=dropped, good_size=good_size, torn_tail=torn)


def read_journal(path: Path) -> JournalRead:
    """Every complete event of a journal; a torn or corrupt line is dropped and named, never fatal."""
    fd = _open_read_only(Path(path))
    try:
        data = read_fd(fd)
    except OSError as exc:
        raise JournalError(f"journal {path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return _journal_read(data)


def not_a_journal(path: Path, data: bytes, *, require_start: bool = True) -> str:
    """Why these bytes are not a rollback-tui journal ('' when the first line is an event of this tool, and the
    session_started event when `require_start`). Only the first line is parsed."""
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]  # slicing, not splitting: a large journal is not copied
    if not first.strip():
        if not require_start:
            return ""
        return "it is empty" if not data or data.isspace() else "line 1 is blank"
    try:
        event = parse_event(first)
    except (ValidationError, ValueError) as exc:
        return f"line 1 is not an event of this tool: {_why(exc)}"
    if require_start and not isinstance(event, SessionStarted):
        return f"line 1 is a {event.type} event, not session_started"
    return ""


def sequence_problem(path: Path, data: bytes, events: Sequence[Event]) -> str:
    """`FILE:LINE: sequence N follows M` for the first event whose seq is not the previous one + 1 ('' if none).
    Assumes what `read_journal` keeps: every non-blank line up to the events' count is one of the events."""
    seqs = [event.seq for event in events]
    if seqs == list(range(1, len(seqs) + 1)):
        return ""
    bad = next(index for index, seq in enumerate(seqs) if seq != index + 1)
    previous = events[bad - 1].seq if bad else 0
    numbers = (number for number, raw in enumerate(data.split(b"\n"), start=1) if raw.strip())
    line = next(number for index, number in enumerate(numbers) if index == bad)
    return f"{path}:{line}: sequence {events[bad].seq} follows {previous}"


def check_journal(path: Path, data: bytes, read: JournalRead, *, require_start: bool = True) -> None:
    """Refuse (JournalError) what must not be resumed: not a journal, a damaged line before the end, a seq gap."""
    _check_head(path, data, require_start=require_start)
    if read.dropped and not read.torn_tail:
        raise JournalError(f"journal {path} is corrupt: " + "; ".join(read.dropped[:3]),
                           hint="a damaged line before the end cannot be skipped safely; "
                                "replay it read-only with `rollback-tui replay`")
    problem = sequence_problem(path, data, read.events)
    if problem:
        raise JournalError(f"{problem} (events are numbered 1, 2, 3, ... without gaps or repeats)",
                           hint="the journal was edited or damaged: resuming it could repeat or skip work; "
                                "the file was not changed; replay it read-only with `rollback-tui replay`")


def check_resumable_header(path: Path) -> None:
    """A quick read-only check before a cockpit opens: a regular file (no link) whose first line is session_started."""
    fd = _open_read_only(Path(path))
    try:
        _check_head(path, _read_head(fd))
    finally:
        os.close(fd)


def _read_head(fd: int) -> bytes:
    """From the descriptor's position: bytes up to and including the first newline (or the end, or 64 MB)."""
    chunks: list[bytes] = []
    size = 0
    while size < _HEADER_LIMIT:
        chunk = os.read(fd, 64 * 1024)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
    return b"".join(chunks)


def _check_head(path: Path, head: bytes, *, require_start: bool = True) -> None:
    why = not_a_journal(path, head, require_start=require_start)
    if why:
        raise JournalError(f"{path}: not a rollback-tui journal ({why})",
                           hint="give the journal a session printed as `journal: PATH`; the file was not changed")


def tail_journal(path: Path, offset: int) -> tuple[list[Event], int]:
    """Events of the complete lines written since `offset`, and the offset to continue from (for `follow`)."""
    fd = _open_read_only(Path(path))
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        data = read_fd(fd, TAIL_LIMIT)
    finally:
        os.close(fd)
    events, _, consumed, _, _ = parse_journal_bytes(data, final=False)
    return events, offset + consumed


class Journal:
    """Append-only JSON Lines, one event per line, `fsync` after every append; created 0600 and locked (fcntl)."""

    def __init__(self, path: Path, fd: int, last_seq: int, size: int, *, write: Writer | None = None,
                 lock_fd: int | None = None) -> None:
        self.path = path
        self._fd: int | None = fd
        #: when resumed: the read-only descriptor that was locked and read first (the flock lives on it)
        self._lock_fd = lock_fd
        self.last_seq = last_seq
        self._size = size
        self._write: Writer = write or os.write
        self._broken: JournalError | None = None
        #: set by open_existing: the events already in the file and what was dropped when reading it
        self.recovered: JournalRead = JournalRead(events=[])

    # ------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: Path, *, write: Writer | None = None) -> Journal:
        """A new journal (mode 0600); refuses to overwrite an existing one or to follow a symlink."""
        path = Path(path)
        check_lock_path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
        except FileExistsError:
            if path.is_symlink():
                raise JournalError(f"journal {path} is a symbolic link; refused",
                                   hint="choose another --journal; a journal is never written through a link"
                                   ) from None
            raise JournalError(f"journal {path} already exists",
                               hint=f"continue it with `rollback-tui resume {path}`, or choose another --journal"
                               ) from None
        except OSError as exc:
            raise JournalError(f"journal {path}: cannot create: {exc.strerror}",
                               hint="choose a writable directory with --journal") from None
        try:
            os.fchmod(fd, 0o600)  # whatever the umask said
            flock(fd, path)
            write_holder(path)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)  # the empty file this call made a moment ago
            raise
        fsync_dir(path.parent)
        return cls(path, fd, 0, 0, write=write)

    @classmethod
    def open_existing(cls, path: Path, *, write: Writer | None = None, require_start: bool = False) -> Journal:
        """Open a journal to continue it. Read-only first: a regular file (no symlink), locked, read and checked
        (first line an event of this tool, session_started if `require_start`; no damaged line before the end; seq
        1, 2, 3, ...), so a refused file is left byte for byte as it was. Only then reopened for appending: a torn
        last line is cut and appends continue at last seq + 1."""
        path = Path(path)
        lock_fd = _open_read_only(path)
        fd = -1
        try:
            flock(lock_fd, path)
            try:
                head = _read_head(lock_fd)
                if require_start:  # before reading the rest: a large file that is no journal is not read through
                    _check_head(path, head)
                os.lseek(lock_fd, 0, os.SEEK_SET)
                data = read_fd(lock_fd)
            except OSError as exc:
                raise JournalError(f"journal {path}: cannot read: {exc.strerror}") from None
            read = _journal_read(data)
            check_journal(path, data, read, require_start=require_start)
            check_lock_path(path)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                raise JournalError(f"journal {path}: cannot open for writing: {exc.strerror}") from None
            first, again = os.fstat(lock_fd), os.fstat(fd)
            if (first.st_dev, first.st_ino) != (again.st_dev, again.st_ino):
                raise JournalError(f"journal {path}: the file was replaced while it was being opened; refused")
            write_holder(path)
            size = again.st_size
            if read.good_size < size:
                os.ftruncate(fd, read.good_size)  # the torn tail of a crash; appends continue on a clean line
                os.fsync(fd)
                size = read.good_size
            elif size and not data.endswith(b"\n"):
                os.write(fd, b"\n")
                size += 1
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.close(lock_fd)
            raise
        journal = cls(path, fd, 0, size, write=write, lock_fd=lock_fd)
        journal.last_seq = read.events[-1].seq if read.events else 0
        journal.recovered = read
        return journal

    # ------------------------------------------------------------ writing

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, event: EventBase) -> Event:
        """Number the event (last seq + 1), write its line, fsync; returns the numbered event."""
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[EventBase]) -> list[Event]:
        """Number and write several events with one write and one fsync: a crash keeps all of them or none."""
        if self._broken is not None:
            raise self._broken
        if self._fd is None:
            raise JournalError(f"journal {self.path} is closed")
        numbered = [event.model_copy(update={"seq": self.last_seq + index})
                    for index, event in enumerate(events, start=1)]
        data = "".join(event.model_dump_json() + "\n" for event in numbered).encode()
        try:
            written = 0
            while written < len(data):
                written += self._write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc)
        self._size += len(data)
        self.last_seq += len(numbered)
        return numbered  # type: ignore[return-value]

    def _fail(self, exc: OSError) -> None:
        """Cut whatever part of the batch reached the file, so the journal ends on its last complete event."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError:
            pass
        if exc.errno in _DISK_FULL:
            self._broken = JournalDiskFull(
                f"journal {self.path}: the disk is full (no space left on device); the session stopped as blocked",
                hint=f"the journal is intact up to event {self.last_seq}: free some space, then "
                     f"`rollback-tui resume {self.path}`")
        else:
            self._broken = JournalError(
                f"journal {self.path}: cannot write: {exc.strerror or exc}; the session stopped",
                hint=f"the journal is intact up to event {self.last_seq}; fix the disk, then "
                     f"`rollback-tui resume {self.path}`")
        raise self._broken from None

    def close(self) -> None:
        """Release the lock and close (idempotent). The sidecar naming the holder goes first, then the lock."""
        if self._fd is None:
            return
        try:
            lock_path_for(self.path).unlink(missing_ok=True)
        except OSError:
            pass
        try:
            os.close(self._fd)  # closing the locked descriptor releases the flock
        finally:
            self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
