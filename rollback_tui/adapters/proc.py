"""Run a local command in its own process group, stream its lines in bounded pieces, and kill the whole group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

LineSink = Callable[[str, list[str]], None]  # (stream, lines); stream "info" carries the runner's own notices
_CHUNK = 65536
LINE_LIMIT = 8192
"""Bytes: a longer line is passed on in pieces of this size (Continued), so a line without end costs no memory."""
EXIT_GRACE = 2.0
"""Seconds the output pipes may stay open once the main process has exited (a background child holding them)."""
_POLL = 0.05


class Continued(str):
    """A piece of a line longer than LINE_LIMIT: the same line goes on in the next piece of its stream."""

    __slots__ = ()


@dataclass
class ProcResult:
    returncode: int
    stdout_tail: list[str]
    stderr_tail: list[str]
    leftovers: list[int] = field(default_factory=list)
    """Processes the command left behind in its group (or holding its pipes) when it exited; they were killed."""


def _cut(data: bytearray, start: int, limit: int) -> int:
    """start + limit, moved back (at most 3 bytes) so that a UTF-8 sequence is not split between two pieces."""
    cut = start + limit
    while cut > start + limit - 3 and cut > start + 1 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


class LineSplitter:
    """Cuts a byte stream into lines, and a line longer than `limit` bytes into Continued pieces: each byte is
    looked at a bounded number of times (linear time) and at most `limit` bytes plus one chunk are held."""

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self._buf = bytearray()
        self._limit = limit

    def feed(self, chunk: bytes) -> list[str]:
        buf = self._buf
        buf += chunk
        out: list[str] = []
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            while end - start > self._limit:
                cut = _cut(buf, start, self._limit)
                out.append(Continued(bytes(buf[start:cut]).decode(errors="replace")))
                start = cut
            out.append(bytes(buf[start:end]).decode(errors="replace").rstrip("\r"))
            start = end + 1
        del buf[:start]
        while len(buf) > self._limit:  # no newline in sight: pass the line on in pieces, keep only the rest
            cut = _cut(buf, 0, self._limit)
            out.append(Continued(bytes(buf[:cut]).decode(errors="replace")))
            del buf[:cut]
        return out

    def close(self) -> list[str]:
        """The last line, when the stream did not end with a newline."""
        if not self._buf:
            return []
        line = bytes(self._buf).decode(errors="replace").rstrip("\r")
        self._buf.clear()
        return [line]


async def _pump(stream: asyncio.StreamReader, name: str, sink: LineSink, tail: list[str], keep: int) -> None:
    splitter = LineSplitter()

    def emit(lines: list[str]) -> None:
        if lines:
            sink(name, lines)
            tail.extend(lines)
            del tail[:-keep]

    while chunk := await stream.read(_CHUNK):
        emit(splitter.feed(chunk))
    emit(splitter.close())


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, process group, command name) of every live process (zombies left out), from /proc."""
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        if len(fields) < 3 or fields[0] == "Z":
            continue
        yield int(entry.name), int(fields[2]), head.partition("(")[2][:32]


def _pipe_inodes(proc: asyncio.subprocess.Process) -> set[int]:
    inodes: set[int] = set()
    transport = getattr(proc, "_transport", None)
    for fd in (1, 2):
        pipe = transport.get_pipe_transport(fd) if transport is not None else None
        handle = pipe.get_extra_info("pipe") if pipe is not None else None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            inodes.add(os.fstat(handle.fileno()).st_ino)
    return inodes


def _holds(pid: int, links: set[str]) -> bool:
    try:
        fds = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd.path) in links:
                return True
    return False


def leftovers(proc: asyncio.subprocess.Process) -> list[tuple[int, str]]:
    """(pid, name) of the processes still in the command's group, or holding its output pipes from outside it."""
    links = {f"pipe:[{inode}]" for inode in _pipe_inodes(proc)}
    me = os.getpid()
    found = []
    for pid, group, name in _processes():
        if pid != me and (group == proc.pid or (links and _holds(pid, links))):
            found.append((pid, name))
    return found


def _signal_all(proc: asyncio.subprocess.Process, pids: Sequence[int], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _group_alive(proc: asyncio.subprocess.Process) -> bool:
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _reap(proc: asyncio.subprocess.Process, sink: LineSink, pumps: asyncio.Future[object] | None,
                why: str) -> list[int]:
    """Report and kill what the exited command left behind: its group and any process holding its pipes."""
    found = leftovers(proc)
    if not found:
        return []
    pids = [pid for pid, _ in found]
    shown = ", ".join(f"{pid} ({name})" for pid, name in found)
    sink("info", [f"{why}: killing the processes it left behind: pid {shown}"])
    _signal_all(proc, pids, signal.SIGTERM)
    if pumps is not None:
        await asyncio.wait({pumps}, timeout=0.5)
    else:
        await asyncio.sleep(0.05)
    _signal_all(proc, pids, signal.SIGKILL)
    return pids


async def kill_group(proc: asyncio.subprocess.Process, grace: float = 3.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within `grace` seconds."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(proc.wait(), timeout=grace)
    except (asyncio.TimeoutError, TimeoutError):
        pass
    # the leader may be gone while a member that ignores SIGTERM lives on: SIGKILL whatever is left
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
        await asyncio.wait_for(proc.wait(), timeout=grace)  # a pipe held from outside the group must not hang us


async def _drain(proc: asyncio.subprocess.Process, pumps: asyncio.Future[object], sink: LineSink,
                 grace: float) -> list[int]:
    """Read output until both pipes close; once the main process has exited, for at most `grace` more seconds,
    then kill what holds the pipes. Returns the pids killed."""
    while True:
        done, _ = await asyncio.wait({pumps}, timeout=_POLL)
        if done:
            return []
        if proc.returncode is not None:
            break
    done, _ = await asyncio.wait({pumps}, timeout=grace)
    if done:
        return []
    killed = await _reap(proc, sink, pumps, f"the command exited (status {proc.returncode}) but its output was "
                                            f"still held open {grace:g}s later")
    done, _ = await asyncio.wait({pumps}, timeout=grace)
    if not done:
        pumps.cancel()
        sink("info", ["its output pipes are still open (a process outside reach holds them): stopped reading"])
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
        await asyncio.wait({pumps})  # settles as cancelled, without raising here
    return killed


async def run_process(
    argv: Sequence[str],
    sink: LineSink,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    keep_tail: int = 50,
    exit_grace: float = EXIT_GRACE,
) -> ProcResult:
    """Run argv (no shell), streaming stdout/stderr lines to sink; on cancel or error kill the group.

    Lines longer than LINE_LIMIT bytes arrive as Continued pieces. The command is done when its main process
    has exited and its pipes closed, or `exit_grace` seconds after it exited while something else holds them:
    what it left behind is then reported (an "info" line naming the pids) and killed.
    Raises FileNotFoundError / PermissionError when the program cannot start.
    """
    full_env = {**os.environ, **env} if env else None
    starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=full_env,
        start_new_session=True,  # own process group: grandchildren die with it
    ))
    try:
        proc = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # cancelled while the pipes were being set up: the command may already run, with children; asyncio on its
        # own would kill only the leader and then wait for pipes its children hold. Finish the set-up, kill the group.
        with contextlib.suppress(Exception):
            await asyncio.shield(kill_group(await starting))
        raise
    out_tail: list[str] = []
    err_tail: list[str] = []
    pumps: asyncio.Future[object] | None = None
    try:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(
            _pump(proc.stdout, "stdout", sink, out_tail, keep_tail),
            _pump(proc.stderr, "stderr", sink, err_tail, keep_tail),
        )
        pumps.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
        killed = await _drain(proc, pumps, sink, exit_grace)
        if pumps.exception() if not pumps.cancelled() else None:
            await pumps  # an error in a sink surfaces here
        returncode = proc.returncode if proc.returncode is not None else await proc.wait()
        if not killed and _group_alive(proc):  # members that closed their output (a daemon): they go too
            killed = await _reap(proc, sink, None, f"the command exited (status {returncode})")
        return ProcResult(returncode, out_tail, err_tail, killed)
    finally:
        if pumps is not None and not pumps.done():
            pumps.cancel()
        if proc.returncode is None:
            await asyncio.shield(kill_group(proc))
        else:
            # the leader exited: anything it left in its group goes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


_CAPTURE_LIMIT = 16 * 1024 * 1024


async def capture(argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                  timeout: float = 30.0) -> ProcResult:
    """Run a short read-only command and collect its output (for verify and describe): whole lines (pieces of a
    long line joined again, so JSON on one line stays parseable), at most 16 MiB per stream (the rest dropped)."""
    lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
    sizes = {"stdout": 0, "stderr": 0}
    open_line: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def collect(stream: str, batch: list[str]) -> None:
        if stream not in lines:
            return  # the runner's own notices
        for line in batch:
            sizes[stream] += len(line)
            if sizes[stream] > _CAPTURE_LIMIT:
                return
            open_line[stream].append(line)
            if not isinstance(line, Continued):
                lines[stream].append("".join(open_line[stream]))
                open_line[stream].clear()

    result = await asyncio.wait_for(run_process(argv, collect, cwd=cwd, env=env, keep_tail=1), timeout=timeout)
    for stream, parts in open_line.items():
        if parts:
            lines[stream].append("".join(parts))
    return ProcResult(result.returncode, lines["stdout"], lines["stderr"], result.leftovers)
