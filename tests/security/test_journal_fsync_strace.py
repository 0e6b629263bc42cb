"""Durability where it lives: a real headless run under strace; every journal write is fsynced before the next
journal write, before an action's process is started (execve) and before the process exits."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLAN = """\
version: 1
metadata: {name: strace durability}
rollback: {scope: [flags, code]}
steps:
- id: assess
  actions: [{id: look, kind: shell, argv: [echo, assessing]}]
- id: flags
  actions: [{id: "off", kind: shell, argv: [echo, flag off]}]
- id: code
  actions: [{id: checkout, kind: shell, argv: [echo, checked out]}]
- id: validate
  actions: [{id: smoke, kind: shell, argv: [echo, smoke ok]}]
"""
SYSCALLS = "openat,write,writev,pwrite64,pwritev,fsync,fdatasync,execve"
START = re.compile(r"^(?P<pid>\d+) +(?P<name>\w+)\((?P<args>.*)$")


def _strace_usable() -> str:
    """'' when strace can trace here, else why not (not installed, ptrace refused in this container)."""
    strace = shutil.which("strace")
    if strace is None:
        return "strace is not installed (.ci/run installs it with apt)"
    done = subprocess.run([strace, "-f", "-o", os.devnull, "true"], capture_output=True, text=True, timeout=30)
    return "" if done.returncode == 0 else f"strace cannot trace here: {done.stderr.strip()[:200]}"


def _trace_run(tmp_path: Path) -> tuple[list[str], str]:
    reason = _strace_usable()
    if reason:
        pytest.skip(reason)
    (tmp_path / "plan.yaml").write_text(PLAN)
    trace = tmp_path / "trace.txt"
    argv = ["strace", "-f", "-y", "-s", "100000", "-e", f"trace={SYSCALLS}", "-o", str(trace),
            sys.executable, "-m", "rollback_tui", "run", "plan.yaml", "--headless", "--answers", "auto",
            "--no-sign", "--journal", "d.journal.jsonl"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    journal = os.path.realpath(tmp_path / "d.journal.jsonl")
    return trace.read_text(errors="replace").splitlines(), journal


def durability_violations(lines: list[str], journal: str) -> tuple[list[str], dict[str, int]]:
    """Walk the trace in order (syscalls as they start): a journal write leaves the journal dirty until an
    fsync/fdatasync of it; a second journal write, an action's execve or the end of the trace while dirty is a
    violation. Returns the violations and counts (journal writes, syncs, action processes started)."""
    # `fsync(5</j> <unfinished ...>`: under load another thread's syscall interleaves and strace splits the line
    fd_of_journal = re.compile(r"^\d+<" + re.escape(journal) + r">(?:[,)]| <unfinished)")
    main_pid = ""
    dirty = ""  # the unsynced journal write, or ''
    last_synced = pending = ""
    violations: list[str] = []
    counts = {"writes": 0, "syncs": 0, "actions": 0, "actions_after_action_started": 0}
    started_pids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        match = START.match(line)
        if match is None:
            continue  # `<... resumed>`, signals, exits
        pid, name, args = match["pid"], match["name"], match["args"]
        if not main_pid:
            main_pid = pid  # the first line is the tool's own execve
            continue
        if name in ("write", "writev", "pwrite64", "pwritev") and fd_of_journal.match(args):
            counts["writes"] += 1
            if dirty:
                violations.append(f"trace line {number}: journal written again before the write of line {dirty} "
                                  "was fsynced")
            dirty = str(number)
            last_synced = ""
            pending = line
        elif name in ("fsync", "fdatasync") and fd_of_journal.match(args):
            counts["syncs"] += 1
            if dirty:
                last_synced = pending
            dirty = ""
        elif name == "execve" and pid != main_pid and pid not in started_pids:
            started_pids.add(pid)
            counts["actions"] += 1
            if dirty:
                violations.append(f"trace line {number}: process {pid} started (execve) while the journal write of "
                                  f"line {dirty} was not fsynced")
            elif "action_started" in last_synced:
                counts["actions_after_action_started"] += 1
    if dirty:
        violations.append(f"the journal write of trace line {dirty} was never fsynced before the end")
    return violations, counts


def test_every_journal_write_is_fsynced_before_the_next_write_or_action(tmp_path: Path) -> None:
    lines, journal = _trace_run(tmp_path)
    violations, counts = durability_violations(lines, journal)
    assert violations == [], "\n".join(violations[:10])
    # not vacuous: the trace saw the journal being written and synced, and the four actions' processes start
    assert counts["writes"] >= 20 and counts["syncs"] >= counts["writes"], counts
    assert counts["actions"] >= 4, counts
    # each action's process starts only after its action_started event is durable
    assert counts["actions_after_action_started"] >= 4, counts


def test_the_checker_catches_an_unsynced_write() -> None:
    """The trace walker itself: a write with no fsync before an execve, and before another write, is caught."""
    journal = "/x/j.jsonl"
    good = ['10 execve("/py", [...]) = 0', f'10 write(3<{journal}>, "a"..., 1) = 1', f"10 fsync(3<{journal}>) = 0",
            '11 execve("/usr/bin/echo", [...]) = 0']
    assert durability_violations(good, journal)[0] == []
    unsynced = [good[0], good[1], good[3]]
    assert "started (execve) while" in durability_violations(unsynced, journal)[0][0]
    twice = [good[0], good[1], good[1], good[2]]
    assert "written again" in durability_violations(twice, journal)[0][0]
    lock = [good[0], f'10 write(4<{journal}.lock>, "pid=1"..., 5) = 5', good[3]]
    assert durability_violations(lock, journal) == ([], {"writes": 0, "syncs": 0, "actions": 1,
                                                         "actions_after_action_started": 0})
    # under load strace splits a syscall another thread interrupts: the fsync still counts from its start
    split = [good[0], good[1], f"10 fsync(3<{journal}> <unfinished ...>", '12 openat(AT_FDCWD, "/etc", O_RDONLY) = 4',
             "10 <... fsync resumed>) = 0", good[3]]
    assert durability_violations(split, journal)[0] == []
