"""A process under a pseudo-terminal, read by this (another) process: what a terminal emulator would see."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def visible(data: bytes) -> bytes:
    """Terminal output without its control sequences: the text the frames draw, in the order written."""
    return _ESCAPES.sub(b"", data)


class PtyProcess:
    """A child on a pty of the given size; `wait_for` reads (and keeps draining) its output until a marker."""

    def __init__(self, argv: Sequence[str], *, size: tuple[int, int] = (160, 48), env: dict[str, str] | None = None,
                 cwd: str | None = None, limit_mb: int | None = None) -> None:
        from _common import capped

        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        env = dict(env or os.environ)
        env.setdefault("TERM", "xterm-256color")
        env["COLUMNS"], env["LINES"] = str(size[0]), str(size[1])
        self.started = time.monotonic()
        self.process = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                        start_new_session=True, close_fds=True,
                                        preexec_fn=capped(limit_mb))  # type: ignore[arg-type]
        os.close(slave)
        self.master = master
        self.tail = b""  # visible text since the last mark (bounded)
        self.total = 0

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 1 << 16)
        except OSError:  # the child closed the terminal
            raise EOFError from None
        if not chunk:
            raise EOFError
        self.total += len(chunk)
        self.tail = (self.tail + chunk)[-(1 << 18):]
        return True

    def mark(self) -> None:
        """Forget what was read so far: the next wait_for only looks at output written after this point."""
        self.tail = b""

    def wait_for(self, marker: bytes, timeout: float) -> float | None:
        """monotonic() when `marker` first shows in the visible output (after the last mark), None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = self._read(min(0.05, max(0.0, deadline - time.monotonic())))
            except EOFError:
                return None
            if got and marker in visible(self.tail):
                return time.monotonic()
        return None

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self._read(0.05)
            except EOFError:
                return

    def close(self, timeout: float = 10.0) -> int:
        """SIGTERM (then SIGKILL) the child's session; keep draining so it can write its last frames."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < end:
            try:
                self._read(0.05)
            except EOFError:
                break
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        code = self.process.wait()
        os.close(self.master)
        return code
