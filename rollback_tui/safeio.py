"""Opening files safely: regular files only (never block on a FIFO or device), size caps, private atomic writes."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from rollback_tui.errors import RollbackError

#: Plans, answers files and other hand-written inputs are refused above this size.
TEXT_LIMIT = 10 * 1024 * 1024
_CHUNK = 1024 * 1024


class FileRefused(RollbackError):
    """A path is not a regular file (FIFO, device, socket, directory, symlink where none may be) or is too large."""


def kind_of(mode: int) -> str:
    """What a file is, in words, from its st_mode."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _refuse(path: Path, mode: int, what: str) -> FileRefused:
    return FileRefused(f"{path}: is {kind_of(mode)}, not a regular file; refused (give the path of a {what})")


def open_regular(path: Path, *, follow: bool = True, flags: int = os.O_RDONLY, what: str = "file") -> int:
    """Open an existing regular file and return its descriptor; anything else raises FileRefused without blocking.

    The path is looked at first (stat, or lstat when `follow` is false) so a FIFO or device is never opened; then it
    is opened with O_NONBLOCK (and O_NOFOLLOW when `follow` is false) and fstat must show the same regular file, so
    swapping the path in between is caught. FileNotFoundError and other OSErrors reach the caller."""
    path = Path(path)
    before = os.stat(path) if follow else os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise _refuse(path, before.st_mode, what)
    extra = os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags | extra)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileRefused(f"{path}: is a symbolic link; refused (give the {what} itself, not a link)") from None
        if exc.errno == errno.ENXIO:
            raise FileRefused(f"{path}: is a socket, not a regular file; refused (give the path of a {what})") from None
        raise
    try:
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise FileRefused(f"{path}: changed while it was being opened (now {kind_of(after.st_mode)}); refused")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limit: int | None = None) -> bytes:
    """Read a descriptor to its end; with `limit`, at most limit + 1 bytes (so the caller can tell it was over)."""
    chunks: list[bytes] = []
    total = 0
    try:  # a regular file: its size (+1 to see the end) in one read, the common case
        step = max(_CHUNK, os.fstat(fd).st_size - os.lseek(fd, 0, os.SEEK_CUR) + 1)
    except OSError:
        step = _CHUNK
    while limit is None or total <= limit:
        want = step if limit is None else min(step, limit + 1 - total)
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _size_text(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size} bytes"


def read_regular(path: Path, *, limit: int = TEXT_LIMIT, follow: bool = True, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes; FileRefused otherwise (FileNotFoundError passes)."""
    fd = open_regular(path, follow=follow, what=what)
    try:
        data = read_fd(fd, limit)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileRefused(f"{path}: larger than {_size_text(limit)}; refused (a {what} is never that large)")
    return data


def check_regular(path: Path, *, follow: bool = True, what: str = "file") -> None:
    """Refuse (FileRefused) a path that exists and is not a regular file; a missing path passes."""
    try:
        os.close(open_regular(path, follow=follow, what=what))
    except FileNotFoundError:
        pass


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data`: a fresh mkstemp file in the same directory (never a predictable name, so a planted
    symlink is never written through), fsynced, then os.replace (which replaces a link, never its target)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Make a directory entry durable (best effort: some file systems refuse to fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
