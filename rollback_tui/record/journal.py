"""The journal: one JSON line per event, fsynced before the runner goes on, locked against a second live session."""

from __future__ import annotations

import errno
import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rollback_tui.record.events import Event, EventBase, SessionStarted, parse_event
from rollback_tui.record.journal_lock import check_lock_path, flock, lock_path_for, write_holder
from rollback_tui.record.journal_lock import holder_text  # noqa: F401  (re-exported: the journal's public API)
from rollback_tui.record.lightevents import PREFIX, Source, light_output
from rollback_tui.errors import JournalError
from rollback_tui.safeio import FileRefused, fsync_dir, open_regular

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
    seq_break: tuple[int, int, int] | None = None
    """(line, seq, previous seq) of the first event not numbered previous + 1, or None."""
    ends_with_newline: bool = True


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
    scan = _Scan(None)
    scan.feed(data)
    scan.finish(final)
    return scan.events, scan.dropped, scan.consumed, scan.first_bad, scan.last_line


_CONTROLS = bytes(range(32))
#: Bytes read at a time when a journal is streamed (resume, follow, report): memory stays bounded by the events kept.
CHUNK = 4 * 1024 * 1024


class _Scan:
    """Journal lines parsed as they are read, chunk by chunk: the events, what was dropped, where the good part ends
    and the first break in the seq numbering. With a `source`, canonical output batches are kept light
    (record/lightevents.py: counted and matched without their lines, which stay on disk)."""

    def __init__(self, source: Source | None, offset: int = 0) -> None:
        self.source = source
        self.events: list[Any] = []
        self.dropped: list[str] = []
        self.consumed = 0
        self.first_bad = -1
        self.first_bad_at = -1
        self.last_line = -1
        self.number = 0
        self.size = 0
        self.last_byte = b""
        self.seq_break: tuple[int, int, int] | None = None
        """(line, seq, previous seq) of the first event whose seq is not the previous one + 1."""
        self._offset = offset
        self._pending = b""
        self._cache: dict[bytes, Any] = {}
        self._clean = False

    def _parse(self, raw: bytes, start: int) -> Any:
        if self.source is not None and raw.startswith(PREFIX):
            ref = light_output(raw, start, self.source, self._cache, self._clean)
            if ref is not None:
                return ref
        return parse_event(raw)

    def _keep(self, event: Any) -> None:
        events = self.events
        if self.seq_break is None and event.seq != len(events) + 1:
            self.seq_break = (self.number, event.seq, events[-1].seq if events else 0)
        events.append(event)

    def _bad(self, note: str, start: int) -> None:
        self.dropped.append(note)
        if self.first_bad < 0:
            self.first_bad, self.first_bad_at = self.number, start

    def feed(self, chunk: bytes) -> None:
        """Parse the complete lines of `chunk` (after what an earlier chunk left unfinished)."""
        if not chunk:
            return
        self.size += len(chunk)
        self.last_byte = chunk[-1:]
        data = self._pending + chunk if self._pending else chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        # one check for the whole chunk instead of one per line: no control character, nothing outside ASCII
        self._clean = self.source is not None and data.isascii() and \
            len(data.translate(None, _CONTROLS)) + len(lines) == len(data)
        start = self._offset + self.consumed
        events, source, cache, clean = self.events, self.source, self._cache, self._clean
        for raw in lines:
            self.number += 1
            if raw and not raw.isspace():
                self.last_line = self.number
                # the hot path (a canonical output batch, in sequence) inlined: _parse and _keep otherwise
                ref = light_output(raw, start, source, cache, clean) if source is not None and \
                    raw.startswith(PREFIX) else None
                if ref is not None and self.seq_break is None and ref.seq == len(events) + 1:
                    events.append(ref)
                else:
                    try:
                        self._keep(ref if ref is not None else parse_event(raw))
                    except (ValidationError, ValueError) as exc:
                        self._bad(f"line {self.number}: unreadable event ({_why(exc)})", start)
            start += len(raw) + 1
        self.consumed = start - self._offset

    def finish(self, final: bool) -> None:
        """The end of the input: with `final`, a last line without its newline is parsed too (else left)."""
        tail, self._pending = self._pending, b""
        if final and tail.strip():
            self.number += 1
            self.last_line = self.number
            start = self._offset + self.consumed
            try:
                self._keep(self._parse(tail, start))
                self.consumed += len(tail)
            except (ValidationError, ValueError) as exc:
                self._bad(f"line {self.number}: torn last line, {len(tail)} bytes without a newline ({_why(exc)})",
                          start)

    def read_from(self, fd: int, limit: int | None = None) -> None:
        """Feed everything from the descriptor's position to its end (or `limit` + 1 bytes), then finish."""
        was_enabled = gc.isenabled()
        gc.disable()  # bulk allocation of many small objects: the cyclic GC would run hundreds of times for nothing
        try:
            while limit is None or self.size <= limit:
                want = CHUNK if limit is None else min(CHUNK, limit + 1 - self.size)
                chunk = os.read(fd, want)
                if not chunk:
                    break
                self.feed(chunk)
        finally:
            if was_enabled:
                gc.enable()

    def journal_read(self) -> JournalRead:
        good_size = self.size  # a complete last event without its newline is kept: the writer adds the newline
        if self.first_bad > 0:  # the good prefix ends where the first bad line starts
            good_size = self.first_bad_at - self._offset
        torn = len(self.dropped) == 1 and self.first_bad == self.last_line
        return JournalRead(events=self.events, dropped=self.dropped, good_size=good_size, torn_tail=torn,
                           seq_break=self.seq_break, ends_with_newline=self.last_byte in (b"", b"\n"))


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


def _source_for(path: Path, fd: int) -> Source:
    """A second read-only descriptor of the same file as `fd` (where OutputRefs read their lines)."""
    again = _open_read_only(path)
    first, second = os.fstat(fd), os.fstat(again)
    if (first.st_dev, first.st_ino) != (second.st_dev, second.st_ino):
        os.close(again)
        raise JournalError(f"journal {path}: the file was replaced while it was being opened; refused")
    return Source(again)


def _journal_read(data: bytes) -> JournalRead:
    scan = _Scan(None)
    scan.feed(data)
    scan.finish(True)
    return scan.journal_read()


def read_journal(path: Path, *, light: bool = False) -> JournalRead:
    """Every complete event of a journal (streamed); a torn or corrupt line is dropped and named, never fatal.
    With `light`, canonical output batches are OutputRefs that read their lines from the file when asked."""
    fd = _open_read_only(Path(path))
    try:
        scan = _Scan(_source_for(Path(path), fd) if light else None)
        scan.read_from(fd)
        scan.finish(True)
    except OSError as exc:
        raise JournalError(f"journal {path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return scan.journal_read()


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


def sequence_problem(path: Path, read: JournalRead) -> str:
    """`FILE:LINE: sequence N follows M` for the first event whose seq is not the previous one + 1 ('' if none)."""
    if read.seq_break is None:
        return ""
    line, seq, previous = read.seq_break
    return f"{path}:{line}: sequence {seq} follows {previous}"


def check_journal(path: Path, head: bytes, read: JournalRead, *, require_start: bool = True) -> None:
    """Refuse (JournalError) what must not be resumed: not a journal, a damaged line before the end, a seq gap.
    `head` is the journal's first line (at least)."""
    _check_head(path, head, require_start=require_start)
    if read.dropped and not read.torn_tail:
        raise JournalError(f"journal {path} is corrupt: " + "; ".join(read.dropped[:3]),
                           hint="a damaged line before the end cannot be skipped safely; "
                                "replay it read-only with `rollback-tui replay`")
    problem = sequence_problem(path, read)
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


def tail_journal(path: Path, offset: int, *, limit: int = TAIL_LIMIT, light: bool = False
                 ) -> tuple[list[Event], int]:
    """Events of the complete lines written since `offset`, and the offset to continue from (for `follow`). At most
    `limit` bytes are read; with `light`, canonical output batches are OutputRefs (their lines read when shown)."""
    events, consumed, _, _ = tail_scan(path, offset, limit=limit, light=light)
    return events, offset + consumed


def tail_scan(path: Path, offset: int, *, limit: int = TAIL_LIMIT, light: bool = False
              ) -> tuple[list[Any], int, int, int]:
    """(events, bytes consumed, lines dropped, bytes read) of the complete lines after `offset`."""
    fd = _open_read_only(Path(path))
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        scan = _Scan(_source_for(Path(path), fd) if light else None, offset)
        scan.read_from(fd, limit)
        scan.finish(False)
    finally:
        os.close(fd)
    return scan.events, scan.consumed, len(scan.dropped), scan.size


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
        #: (offset, length) of each line the last append_many wrote
        self.last_spans: list[tuple[int, int]] = []
        self._source: Source | None = None

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
                # streamed: output batches stay on disk (OutputRef), read again through a descriptor of their own
                # (not a dup: the flock lives on this one's open file, and closing the journal must release it)
                scan = _Scan(_source_for(path, lock_fd))
                scan.read_from(lock_fd)
                scan.finish(True)
            except OSError as exc:
                raise JournalError(f"journal {path}: cannot read: {exc.strerror}") from None
            read = scan.journal_read()
            check_journal(path, head, read, require_start=require_start)
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
            elif size and not read.ends_with_newline:
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
        journal._source = scan.source
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
        lines = [event.model_dump_json().encode() for event in numbered]
        data = b"\n".join(lines) + b"\n"
        try:
            written = 0
            while written < len(data):
                written += self._write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc)
        spans, offset = [], self._size
        for line in lines:
            spans.append((offset, len(line)))
            offset += len(line) + 1
        self.last_spans = spans
        self._size += len(data)
        self.last_seq += len(numbered)
        return numbered  # type: ignore[return-value]

    def source(self) -> Source | None:
        """A read-only descriptor of this journal for light events (record/lightevents.py), or None."""
        if self._source is None and self._fd is not None:
            try:
                self._source = _source_for(self.path, self._fd)
            except (JournalError, OSError):
                return None
        return self._source

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
