"""Hostile child output: a line without end costs linear time and bounded memory; a background child holding
the pipes does not keep an action running, and is killed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rollback_tui.adapters.proc import LINE_LIMIT, Continued, LineSplitter, run_process
from rollback_tui.engine.output import CONTINUES

#: Runs the CLI and reports its wall time and the peak RSS of its process tree (a fresh parent: nothing else counts).
MEASURE = """
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, timeout=600)
print(json.dumps({"rc": done.returncode, "seconds": time.monotonic() - started,
                  "max_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "stdout_bytes": len(done.stdout), "stderr": done.stderr.decode(errors="replace")[-2000:]}))
"""


def write_plan(tmp_path: Path, action: dict[str, object]) -> Path:
    plan = {"metadata": {"name": "child-output"}, "approvals": {"allow_same_person": True},
            "rollback": {"scope": ["code"]}, "steps": [{"id": "code", "actions": [{"id": "child", **action}]}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def cli(tmp_path: Path, plan: Path) -> list[str]:
    return [sys.executable, "-m", "rollback_tui", "run", str(plan), "--headless", "--answers", "auto", "--no-sign",
            "--journal", str(tmp_path / "s.journal.jsonl"), "--report", str(tmp_path / "s.md")]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_splitter_is_linear_and_keeps_utf8_whole() -> None:
    splitter = LineSplitter()
    text = "é" * LINE_LIMIT  # two bytes each: pieces must not cut one in half
    pieces = splitter.feed(text.encode()[:-1]) + splitter.feed(text.encode()[-1:] + b"\r\nnext")
    assert "".join(pieces) == text and all(isinstance(p, Continued) for p in pieces[:-1])
    assert not isinstance(pieces[-1], Continued) and "\ufffd" not in "".join(pieces)
    assert splitter.close() == ["next"]
    started = time.monotonic()
    splitter = LineSplitter()
    count = sum(len(splitter.feed(b"x" * 65536)) for _ in range(800))  # 50 MiB without a newline
    assert count >= 800 * 65536 // LINE_LIMIT - 1 and time.monotonic() - started < 10


def test_a_100_mb_line_without_newline_finishes_in_linear_time_and_bounded_memory(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, {"kind": "shell", "shell": True, "timeout": 300,
                                 "command": "head -c 100000000 /dev/zero | tr '\\0' a"})
    measured = subprocess.run([sys.executable, "-c", MEASURE, *cli(tmp_path, plan)], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)
    stats = json.loads(measured.stdout)
    print(f"100 MB line: {stats['seconds']:.1f} s, peak RSS {stats['max_rss_kib'] / 1024:.0f} MiB, "
          f"stdout {stats['stdout_bytes'] / 1e6:.1f} MB, journal {(tmp_path / 's.journal.jsonl').stat().st_size / 1e6:.1f} MB")
    assert stats["rc"] == 0, stats["stderr"]
    # was 153 s and 554 MB (quadratic, whole line in memory); now a few seconds on two busy cores
    assert stats["seconds"] < 90
    assert stats["max_rss_kib"] < 400 * 1024
    journal = (tmp_path / "s.journal.jsonl").read_text()
    assert len(journal) < 20_000_000  # at most 8 MiB of a stream is recorded, then a count and the tail
    outputs = [json.loads(line) for line in journal.splitlines() if '"action_output"' in line]
    lines = [text for event in outputs for text in event["lines"]]
    assert lines[0] == "a" * (len(lines[0]) - 1) + CONTINUES and len(lines[0]) <= LINE_LIMIT + 1
    assert any(line.startswith("… ") and "not recorded" in line for line in lines)
    assert lines[-1] and not lines[-1].endswith(CONTINUES)  # the end of the line is there


def test_a_background_child_holding_the_pipes_does_not_keep_the_action_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleep.pid"
    plan = write_plan(tmp_path, {"kind": "shell", "shell": True, "timeout": 120,
                                 "command": f"sleep 300 & echo $! > {pid_file}; echo done"})
    started = time.monotonic()
    result = subprocess.run(cli(tmp_path, plan), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    took = time.monotonic() - started
    print(f"sh -c 'sleep 300 & echo done': {took:.1f} s")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert took < 20  # the grace is 2 s; the rest is start-up and the report
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"the background sleep {pid} survived its action"
    assert "code/child | done" in result.stdout
    assert f"killing the processes it left behind: pid {pid} (sleep)" in result.stdout


def test_a_daemon_left_in_the_group_is_named_and_killed() -> None:
    async def main() -> tuple[list[tuple[str, list[str]]], int, list[int]]:
        got: list[tuple[str, list[str]]] = []
        result = await run_process(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"],
                                   lambda stream, lines: got.append((stream, lines)))
        return got, int(result.stdout_tail[0]), result.leftovers

    started = time.monotonic()
    got, pid, killed = asyncio.run(main())
    assert time.monotonic() - started < 5 and killed == [pid]
    assert any(stream == "info" and f"pid {pid} (sleep)" in lines[0] for stream, lines in got)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert os.getpgid(os.getpid()) != pid
