"""The journal's lock: an fcntl flock on the journal, and the `JOURNAL.lock` sidecar naming the holder."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
from datetime import datetime, timezone
from pathlib import Path

from rollback_tui.errors import JournalError, JournalLocked
from rollback_tui.safeio import FileRefused, kind_of, read_regular


def lock_path_for(path: Path) -> Path:
    """`JOURNAL.lock`: the sidecar beside the journal."""
    return path.with_name(path.name + ".lock")


def holder_text(path: Path) -> str:
    """`pid N on HOST since TIME` from the lock sidecar, or a neutral phrase when it cannot be read."""
    try:
        text = read_regular(lock_path_for(path), limit=4096, follow=False, what="lock file").decode(errors="replace")
        fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    except (OSError, FileRefused):
        return "another process (its PID and host are unknown)"
    since = f" since {fields['since']}" if "since" in fields else ""
    return f"pid {fields.get('pid', '?')} on host {fields.get('host', '?')}{since}"


def check_lock_path(path: Path) -> None:
    """Refuse a lock sidecar that is a symlink or not a regular file before anything is written."""
    lock_path = lock_path_for(path)
    try:
        mode = os.lstat(lock_path).st_mode
    except OSError:  # missing (the usual case) or unreadable: opening it will tell
        return
    if not stat.S_ISREG(mode):
        raise JournalError(f"{lock_path}: the journal's lock file is {kind_of(mode)}; refused",
                           hint="remove it if no session of yours made it, then start again")


def write_holder(path: Path) -> None:
    """Name the holder in `JOURNAL.lock`: opened O_NOFOLLOW (no O_TRUNC before the checks), a regular file of ours
    with one link, then truncated and written. A planted symlink or someone else's file is refused."""
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"pid={os.getpid()} host={socket.gethostname()} since={since}\n"
    lock_path = lock_path_for(path)
    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            check_lock_path(path)  # names what it is
            raise JournalError(f"{lock_path}: the journal's lock file is not a regular file; refused",
                               hint="remove it if no session of yours made it, then start again") from None
        return  # the sidecar only names the holder; the flock is the lock
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            raise JournalError(f"{lock_path}: the journal's lock file is not a plain file of this user; refused",
                               hint="remove it if no session of yours made it, then start again")
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def flock(fd: int, path: Path) -> None:
    """Take the journal's exclusive lock on `fd`, or raise JournalLocked naming the holder."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = holder_text(path)
        raise JournalLocked(f"journal {path} is in use by a live session: {holder}",
                            hint="only one session may write a journal; wait for it to end or stop it, "
                                 f"or watch it with `rollback-tui follow {path}`") from None
