"""The journal: one JSON line per event, fsynced before the runner goes on, locked against a second live session."""

from __future__ import annotations

import errno
import fcntl
import gc
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from rollback_tui.engine.events import Event, EventBase, parse_event
from rollback_tui.errors import JournalError, JournalLocked

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


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


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


def read_journal(path: Path) -> JournalRead:
    """Every complete event of a journal; a torn or corrupt line is dropped and named, never fatal."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"journal {path}: no such file", hint="give the path printed as `journal: PATH`") from None
    except OSError as exc:
        raise JournalError(f"journal {path}: cannot read: {exc.strerror}") from None
    events, dropped, _, first_bad, last_line = parse_journal_bytes(data)
    good_size = len(data)  # a complete last event without its newline is kept: the writer adds the newline
    if first_bad > 0:  # the good prefix ends where the first bad line starts
        good_size = 0
        for _ in range(first_bad - 1):
            good_size = data.index(b"\n", good_size) + 1
    torn = len(dropped) == 1 and first_bad == last_line
    return JournalRead(events=events, dropped=dropped, good_size=good_size, torn_tail=torn)


def tail_journal(path: Path, offset: int) -> tuple[list[Event], int]:
    """Events of the complete lines written since `offset`, and the offset to continue from (for `follow`)."""
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    events, _, consumed, _, _ = parse_journal_bytes(data, final=False)
    return events, offset + consumed


def holder_text(path: Path) -> str:
    """`pid N on HOST since TIME` from the lock sidecar, or a neutral phrase when it cannot be read."""
    try:
        fields = dict(part.split("=", 1) for part in _lock_path(path).read_text().split() if "=" in part)
    except OSError:
        return "another process (its PID and host are unknown)"
    since = f" since {fields['since']}" if "since" in fields else ""
    return f"pid {fields.get('pid', '?')} on host {fields.get('host', '?')}{since}"


class Journal:
    """Append-only JSON Lines, one event per line, `fsync` after every append; created 0600 and locked (fcntl)."""

    def __init__(self, path: Path, fd: int, last_seq: int, size: int, *, write: Writer | None = None) -> None:
        self.path = path
        self._fd: int | None = fd
        self.last_seq = last_seq
        self._size = size
        self._write: Writer = write or os.write
        self._broken: JournalError | None = None
        #: set by open_existing: the events already in the file and what was dropped when reading it
        self.recovered: JournalRead = JournalRead(events=[])

    # ------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: Path, *, write: Writer | None = None) -> Journal:
        """A new journal (mode 0600); refuses to overwrite an existing one."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise JournalError(f"journal {path} already exists",
                               hint=f"continue it with `rollback-tui resume {path}`, or choose another --journal"
                               ) from None
        except OSError as exc:
            raise JournalError(f"journal {path}: cannot create: {exc.strerror}",
                               hint="choose a writable directory with --journal") from None
        os.fchmod(fd, 0o600)  # whatever the umask said
        journal = cls(path, fd, 0, 0, write=write)
        journal._lock()
        _fsync_dir(path.parent)
        return journal

    @classmethod
    def open_existing(cls, path: Path, *, write: Writer | None = None) -> Journal:
        """Open a journal to continue it: lock it, read it, cut a torn last line, continue at last seq + 1."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            raise JournalError(f"journal {path}: no such file",
                               hint="give the path a session printed as `journal: PATH`") from None
        except OSError as exc:
            raise JournalError(f"journal {path}: cannot open for writing: {exc.strerror}") from None
        journal = cls(path, fd, 0, 0, write=write)
        try:
            journal._lock()
            read = read_journal(path)
            if read.dropped and not read.torn_tail:
                raise JournalError(f"journal {path} is corrupt: " + "; ".join(read.dropped[:3]),
                                   hint="a damaged line before the end cannot be skipped safely; "
                                        "replay it read-only with `rollback-tui replay`")
            size = os.fstat(fd).st_size
            if read.good_size < size:
                os.ftruncate(fd, read.good_size)  # the torn tail of a crash; appends continue on a clean line
                os.fsync(fd)
                size = read.good_size
            elif size and not path.read_bytes().endswith(b"\n"):
                os.write(fd, b"\n")
                size += 1
            journal._size = size
            journal.last_seq = read.events[-1].seq if read.events else 0
            journal.recovered = read
        except BaseException:
            journal.close()
            raise
        return journal

    def _lock(self) -> None:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_text(self.path)
            os.close(self._fd)
            self._fd = None
            raise JournalLocked(f"journal {self.path} is in use by a live session: {holder}",
                                hint="only one session may write a journal; wait for it to end or stop it, "
                                     f"or watch it with `rollback-tui follow {self.path}`") from None
        since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = f"pid={os.getpid()} host={socket.gethostname()} since={since}\n"
        lock_path = _lock_path(self.path)
        try:
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # the sidecar only names the holder; the flock is the lock

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
            _lock_path(self.path).unlink(missing_ok=True)
        except OSError:
            pass
        try:
            os.close(self._fd)  # closing the descriptor releases the flock
        finally:
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    """Make the new file's directory entry durable too (a crash right after creation keeps the journal)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
