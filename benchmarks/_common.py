"""Shared helpers of the benchmarks: rows, whole-command timing with the child's own rusage, slopes."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class MissingCompetitor(RuntimeError):
    """A tool a comparison needs is not installed: the benchmark fails instead of dropping its rows."""


def row(name: str, values: Sequence[float], unit: str, target: str = "", met: bool | None = None) -> dict:
    """One result row: median, min and max of the runs; met is True/False against a target, None for (info)."""
    values = list(values)
    return {"name": name, "median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "target": target or "(info)", "met": met, "runs": len(values)}


def tool(name: str) -> str:
    """The path of a command-line tool of this environment (the venv's bin first), else MissingCompetitor."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise MissingCompetitor(f"`{name}` is not installed: pip install -e '.[bench]' (the comparison needs it)")
    return found


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM of a live process in MB: its own peak resident set. (wait4's ru_maxrss is no use here: Linux
    carries the parent's RSS over fork and exec into it, so a child of a big parent reports the parent's.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


@dataclass
class Child:
    """A finished child process: wall seconds, its own CPU seconds (user+sys, its children included once
    reaped), its peak RSS in MB (VmHWM, last read before it exited), exit code and output."""

    wall: float
    cpu: float
    peak_rss_mb: float
    code: int
    stdout: str
    stderr: str


MEMORY_CAP_MB = 4096
"""Address-space cap of the long-session children: the machine has no swap and is shared, so a command that
would grow past it fails (MemoryError) instead of pushing its neighbours into the OOM killer; rows say so."""


def capped(limit_mb: int | None) -> object:
    """A preexec_fn setting RLIMIT_AS to limit_mb (None: no cap)."""
    if limit_mb is None:
        return None

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    return apply


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | str | None = None,
              timeout: float = 600.0, stdin: str | None = None, limit_mb: int | None = None) -> Child:
    """Run a whole command, timing it from spawn to exit; CPU from wait4 on that very child, peak RSS from its
    VmHWM read every ~20 ms while it runs."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=out, stderr=err,
                                   stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   preexec_fn=capped(limit_mb))  # type: ignore[arg-type]
        if stdin is not None:
            assert process.stdin is not None
            process.stdin.write(stdin.encode())
            process.stdin.close()
        deadline = started + timeout
        peak, polls = 0.0, 0
        while True:
            if polls % 10 == 0:
                peak = max(peak, peak_rss_mb(process.pid))
            polls += 1
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                status = -9 << 8 if status == 0 else status
                break
            time.sleep(0.002)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(wall, usage.ru_utime + usage.ru_stime, peak, process.returncode,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def slope(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares fit y = a + b*x of (x, y) points: (b, a)."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mean_x) ** 2 for x in xs)
    b = sum((x - mean_x) * (y - mean_y) for x, y in points) / den if den else 0.0
    return b, mean_y - b * mean_x


def slope_row(name: str, points: Sequence[tuple[float, float]], unit: str, scale: float = 1.0,
              target: str = "", met: bool | None = None) -> dict:
    """A growth curve's fitted per-unit cost (over all runs of all sizes), min/max = the slopes between
    neighbouring sizes' medians, so a regression in the slope shows."""
    b, _ = slope(points)
    sizes = sorted({x for x, _ in points})
    medians = [(x, statistics.median([y for px, y in points if px == x])) for x in sizes]
    pieces = [(y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in zip(medians, medians[1:])] or [b]
    return {"name": name, "median": b * scale, "min": min(pieces) * scale, "max": max(pieces) * scale,
            "unit": unit, "target": target or "(info)", "met": met, "runs": len(points)}


def python_env() -> dict[str, str]:
    """This environment for child Pythons, with a private bytecode cache (this machine sets
    PYTHONDONTWRITEBYTECODE=1; an installed copy has its bytecode compiled)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "rollback-tui-bench-pycache")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def alternate(commands: dict[str, Sequence[str]], runs: int, *, env: dict[str, str] | None = None,
              cwd: Path | str | None = None, warm: int = 1, check: bool = True) -> dict[str, list[Child]]:
    """Whole commands taking turns (ABAB...), after `warm` unmeasured rounds; every run of each."""
    results: dict[str, list[Child]] = {name: [] for name in commands}
    for index in range(warm + runs):
        for name, argv in commands.items():
            child = run_child(argv, env=env, cwd=cwd)
            if check and child.code != 0:
                raise RuntimeError(f"{name}: `{' '.join(argv)}` exited {child.code}: {child.stderr[-1500:]}"
                                   f"{child.stdout[-500:]}")
            if index >= warm:
                results[name].append(child)
    return results


@dataclass
class Streamed(Child):
    """A finished child whose stdout was read as it came: monotonic seconds after spawn of each marker."""

    marks: dict[str, float] | None = None


def run_streaming(argv: Sequence[str], markers: dict[str, str], *, env: dict[str, str] | None = None,
                  cwd: Path | str | None = None, timeout: float = 600.0, limit_mb: int | None = None) -> Streamed:
    """Run a whole command, noting when each marker first appears in a stdout line (seconds after spawn); wall
    and CPU from wait4 on the child, peak RSS from its VmHWM, as run_child."""
    import tempfile
    import threading

    marks: dict[str, float] = {}
    lines: list[str] = []
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, preexec_fn=capped(limit_mb))  # type: ignore[arg-type]

        def reader() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                now = time.monotonic() - started
                text = raw.decode(errors="replace")
                for name, marker in markers.items():
                    if name not in marks and marker in text:
                        marks[name] = now
                if len(lines) < 2000:
                    lines.append(text)
                else:
                    lines[1000:] = lines[1001:] + [text]

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        killed = False
        deadline = started + timeout
        peak, polls = 0.0, 0
        while True:
            if polls % 4 == 0:
                peak = max(peak, peak_rss_mb(process.pid))
            polls += 1
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                killed = True
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        wall = time.monotonic() - started
        thread.join(5)
        err.seek(0)
        code = -9 if killed else os.waitstatus_to_exitcode(status)
        return Streamed(wall, usage.ru_utime + usage.ru_stime, peak, code, "".join(lines),
                        err.read().decode(errors="replace"), marks)
