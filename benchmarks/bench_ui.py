"""Cockpit benchmarks: start-up to the first frame vs a bare Textual app, key latency under a log flood, memory.

Usage: python benchmarks/bench_ui.py [--quick]

- start-up: time from spawning a process to its first frame (stamped by the app; tear-down not counted), for a
  bare Textual app, the empty cockpit, and `rollback-tui run PLAN` through cli.main (the plan is loaded and
  validated in a thread after the first frame; the time it is ready is reported too), alternated, medians, at
  80x24 and 160x48, with Python's bytecode cache on as in an installed copy (see bytecode_cache_env), and for the
  record without it when this environment turns it off.
- key latency: the cockpit runs headless while a thread offers 50,000 log lines/s as ActionOutput events through
  the engine's listener path; another thread posts key presses as a terminal driver would; the handler stamps them.
- memory: resident set size after 1,000,000 log lines (in a fresh process).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Each start-up script prints "FRAME <time.monotonic()>" when its first frame is on screen (CLOCK_MONOTONIC is
# system-wide, so the parent subtracts its own stamp taken just before spawning: interpreter start-up included,
# tear-down excluded). Both apps get the same fixed terminal size: a real terminal reports its size before the
# first frame, whereas headless Textual without a size starts at 80x24 and is then resized to 80x25.
BARE = """
import sys, time
from textual.app import App
class Bare(App[None]):
    def on_mount(self) -> None:
        self.call_after_refresh(self.first_frame)
    def first_frame(self) -> None:
        print("FRAME", time.monotonic(), flush=True)
        self.exit()
Bare().run(headless=True, size=(int(sys.argv[1]), int(sys.argv[2])))
"""

COCKPIT = """
import sys, time
from rollback_tui.ui.app import CockpitApp
class FirstFrame(CockpitApp):
    def first_frame(self) -> None:
        print("FRAME", time.monotonic(), flush=True)
        super().first_frame()
        self.exit()
FirstFrame().run(headless=True, size=(int(sys.argv[1]), int(sys.argv[2])))
"""

# `rollback-tui run PLAN` through the real entry point (cli.main -> ui.launch.run -> the cockpit, whose plan is
# loaded and validated in a thread after the first frame). Only two things are patched: the app runs headless at
# the given size, and it stamps its first frame and the moment the plan is loaded (session ready), then exits.
COCKPIT_RUN = """
import functools, sys, time
from rollback_tui.ui.app import CockpitApp
run, first_frame, loading_finished = CockpitApp.run, CockpitApp.first_frame, CockpitApp.loading_finished
CockpitApp.run = functools.partialmethod(run, headless=True, size=(int(sys.argv[1]), int(sys.argv[2])))
def stamp_first(self):
    print("FRAME", time.monotonic(), flush=True)
    first_frame(self)
def stamp_loaded(self):
    loading_finished(self)
    print("LOADED", time.monotonic(), flush=True)
    self.exit(0)
CockpitApp.first_frame, CockpitApp.loading_finished = stamp_first, stamp_loaded
from rollback_tui.cli import main
journal = f"{sys.argv[4]}/{time.monotonic_ns()}.journal.jsonl"  # a new journal each run
sys.exit(main(["run", sys.argv[3], "--operator", "bench", "--no-sign", "--journal", journal]))
"""

PLAN = """
version: 1
metadata: {name: bench, incident: INC-1, environment: production}
rollback: {scope: [flags, code]}
steps:
  - id: assess
    actions: [{id: look, kind: shell, argv: ["true"]}]
  - id: flags
    actions: [{id: off, kind: shell, argv: ["true"]}]
  - id: code
    actions: [{id: checkout, kind: shell, argv: ["true"]}]
  - id: validate
    actions: [{id: smoke, kind: shell, argv: ["true"]}]
"""

FLOOD = """
import json, os, sys, threading, time, resource
from rollback_tui.record.events import ActionOutput
from rollback_tui.ui.app import CockpitApp
from textual.binding import Binding
from textual import events

RATE, SECONDS, TOTAL = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
BATCH = 500
latencies = []
sent = {}

class Bench(CockpitApp):
    BINDINGS = [*CockpitApp.BINDINGS, Binding("f12", "ping", "ping", show=False)]
    def action_ping(self) -> None:
        latencies.append(time.perf_counter() - sent.pop("t"))

def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

def flood(app: Bench, done: threading.Event) -> None:
    produced, start, n = 0, time.perf_counter(), 0
    hosts = [f"web-{i}" for i in range(8)]
    while produced < TOTAL and not done.is_set():
        lines = [f"{produced + i:>9} GET /api/checkout 200 12ms request_id=4f1c9a7e user=u{(produced + i) % 977}"
                 for i in range(BATCH)]
        app.post_event(ActionOutput(step="code", action="restart", host=hosts[n % 8], lines=lines, seq=n + 1))
        produced += BATCH
        n += 1
        if RATE:
            ahead = start + produced / RATE - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    done.set()

def keys(app: Bench, done: threading.Event) -> None:
    time.sleep(0.5)
    while not done.is_set():
        if "t" not in sent:
            sent["t"] = time.perf_counter()
            app.post_message(events.Key("f12", None))
        time.sleep(0.02)

async def main() -> None:
    app = Bench()
    async with app.run_test(size=(160, 48)) as pilot:
        done = threading.Event()
        producer = threading.Thread(target=flood, args=(app, done), daemon=True)
        presser = threading.Thread(target=keys, args=(app, done), daemon=True)
        began = time.perf_counter()
        producer.start(); presser.start()
        while producer.is_alive():
            await pilot.pause(0.05)
            if SECONDS and time.perf_counter() - began > SECONDS:
                done.set()
        producer.join(); presser.join()
        await pilot.pause(0.2)
        elapsed = time.perf_counter() - began
        log = app.main_screen.query_one("#log-lines")
        print(json.dumps({"latencies": latencies, "elapsed": elapsed, "rss_mb": rss_mb(),
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "log_lines": log.line_count,
                          "records": len(app.main_screen.query_one("#log").records)}))

import asyncio
asyncio.run(main())
"""


def _first_frame(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds from spawning the script to each stamp it prints (FRAME, LOADED)."""
    begin = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, env=env)
    stamps = {}
    for line in done.stdout.splitlines():
        word, _, value = line.partition(" ")
        if word in ("FRAME", "LOADED"):
            stamps[word] = float(value) - begin
    if "FRAME" not in stamps:
        raise RuntimeError(f"no first frame (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return stamps


def _row(name: str, values: list[float], unit: str, target: str, met: bool | None) -> dict[str, Any]:
    return {"name": name, "median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "target": target, "met": met}


def bytecode_cache_env(directory: Path) -> dict[str, str]:
    """The environment with Python's bytecode cache on, kept in `directory` (the source tree is not touched).

    This machine sets PYTHONDONTWRITEBYTECODE=1, so without this every run would compile rollback_tui's sources
    again (~20 ms here) while Textual's come precompiled from its wheel; an installed rollback-tui has its
    bytecode compiled too. The first (warm-up) run fills the cache for both apps alike."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(directory)
    return env


def _compare(scripts: dict[str, tuple[str, ...]], runs: int, label: str, env: dict[str, str] | None,
             targets: bool) -> list[dict[str, Any]]:
    """Bare, cockpit and `run PLAN` alternated (a noisy moment hits all three alike); medians; ratios to bare."""
    for code, *args in scripts.values():  # warm the file cache (and the bytecode cache, if any)
        _first_frame(code, *args, env=env)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in scripts}
    for _ in range(runs):
        for name, (code, *args) in scripts.items():
            results[name].append(_first_frame(code, *args, env=env))
    bare = [r["FRAME"] for r in results["bare"]]
    base = statistics.median(bare)
    rows = [_row(f"start-up {label}: bare Textual app to first frame", bare, "s", "baseline", None)]
    for name, what in (("cockpit", "cockpit"), ("run", "`run PLAN` (plan loads after)")):
        values = [r["FRAME"] for r in results[name]]
        ratio = statistics.median(values) / base
        met = ratio <= 1.3 if targets else None
        rows.append(_row(f"start-up {label}: {what} to first frame", values, "s",
                         "<= 1.3x bare" if targets else "(info)", met))
        rows.append({"name": f"start-up {label}: {what}: ratio to bare", "median": ratio,
                     "min": min(values) / base, "max": max(values) / base, "unit": "x",
                     "target": "<= 1.3" if targets else "(info)", "met": met})
    loaded = [r["LOADED"] for r in results["run"] if "LOADED" in r]
    if loaded and targets:
        rows.append(_row(f"start-up {label}: `run PLAN` plan validated, session ready", loaded, "s", "(info)",
                         None))
    return rows


def bench_startup(runs: int, sizes: tuple[tuple[int, int], ...] = ((80, 24), (160, 48))) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(PLAN)
        cached = bytecode_cache_env(Path(tmp) / "pycache")
        for width, height in sizes:
            size = (str(width), str(height))
            scripts = {"bare": (BARE, *size), "cockpit": (COCKPIT, *size),
                       "run": (COCKPIT_RUN, *size, str(plan), tmp)}
            rows += _compare(scripts, runs, f"{width}x{height}", cached, targets=True)
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):  # for the record: as this environment runs Python
            scripts = {"bare": (BARE, "80", "24"), "cockpit": (COCKPIT, "80", "24"),
                       "run": (COCKPIT_RUN, "80", "24", str(plan), tmp)}
            rows += _compare(scripts, runs, "80x24 without bytecode cache", None, targets=False)
    return rows


def _flood(rate: int, seconds: float, total: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", FLOOD, str(rate), str(seconds), str(total)], check=True,
                          cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_flood(quick: bool) -> list[dict[str, Any]]:
    seconds = 4.0 if quick else 10.0
    runs = [_flood(50_000, seconds, 10**9) for _ in range(1 if quick else 3)]
    p95s = [1000 * statistics.quantiles(r["latencies"], n=20)[-1] for r in runs]
    worst = [1000 * max(r["latencies"]) for r in runs]
    rows = [_row("key latency p95 during 50k lines/s", p95s, "ms", "< 50 ms", statistics.median(p95s) < 50),
            _row("key latency max during 50k lines/s", worst, "ms", "(info)", None)]
    total = 200_000 if quick else 1_000_000
    memory = _flood(0, 0, total)
    rows.append(_row(f"RSS after {total:,} log lines", [memory["rss_mb"]], "MB", "< 200 MB",
                     memory["rss_mb"] < 200))
    rows.append(_row(f"peak RSS during {total:,} log lines", [memory["peak_rss_mb"]], "MB", "(info)", None))
    rows.append(_row(f"throughput, {total:,} lines unthrottled", [total / memory["elapsed"]], "lines/s", "(info)",
                     None))
    return rows


def main(quick: bool = False) -> list[dict[str, Any]]:
    return bench_startup(5 if quick else 9) + bench_flood(quick)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for row in main(quick):
        met = {True: "met", False: "NOT MET", None: ""}[row["met"]]
        print(f"{row['name']:<62} {row['median']:>10.3f} ({row['min']:.3f}-{row['max']:.3f}) {row['unit']:<7} "
              f"target {row['target']:<12} {met}")
