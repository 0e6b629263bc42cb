"""Run a local command in its own process group, stream its lines, and kill the whole group on exit."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

LineSink = Callable[[str, list[str]], None]  # (stream, lines)
_CHUNK = 65536


@dataclass
class ProcResult:
    returncode: int
    stdout_tail: list[str]
    stderr_tail: list[str]


async def _pump(stream: asyncio.StreamReader, name: str, sink: LineSink, tail: list[str], keep: int) -> None:
    pending = b""
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if complete:
            lines = [raw.decode(errors="replace").rstrip("\r") for raw in complete]
            sink(name, lines)
            tail.extend(lines)
            del tail[:-keep]
    if pending:
        line = pending.decode(errors="replace").rstrip("\r")
        sink(name, [line])
        tail.append(line)
        del tail[:-keep]


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
    await proc.wait()


async def run_process(
    argv: Sequence[str],
    sink: LineSink,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    keep_tail: int = 50,
) -> ProcResult:
    """Run argv (no shell), streaming stdout/stderr lines to sink; on cancel or error kill the group.

    Raises FileNotFoundError / PermissionError when the program cannot start.
    """
    full_env = {**os.environ, **env} if env else None
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=full_env,
        start_new_session=True,  # own process group: grandchildren die with it
    )
    out_tail: list[str] = []
    err_tail: list[str] = []
    try:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        assert proc.stdout is not None and proc.stderr is not None
        await asyncio.gather(
            _pump(proc.stdout, "stdout", sink, out_tail, keep_tail),
            _pump(proc.stderr, "stderr", sink, err_tail, keep_tail),
        )
        returncode = await proc.wait()
        return ProcResult(returncode, out_tail, err_tail)
    finally:
        if proc.returncode is None:
            await asyncio.shield(kill_group(proc))
        else:
            # the leader exited: anything it left in its group goes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


async def capture(argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                  timeout: float = 30.0) -> ProcResult:
    """Run a short read-only command and collect its output (for verify and describe)."""
    lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
    result = await asyncio.wait_for(
        run_process(argv, lambda stream, batch: lines[stream].extend(batch), cwd=cwd, env=env, keep_tail=1),
        timeout=timeout,
    )
    return ProcResult(result.returncode, lines["stdout"], lines["stderr"])
