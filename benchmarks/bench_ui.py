"""Cockpit benchmarks: start-up to the first frame vs a bare Textual app, key latency under a log flood, memory.

Usage: python benchmarks/bench_ui.py [--quick]

- start-up: subprocesses that exit on their first paint, bare Textual app and cockpit alternated, medians;
  the cockpit is measured twice: empty, and as `rollback-tui run PLAN` (plan loaded and validated first).
- key latency: the cockpit runs headless while a thread offers 50,000 log lines/s as ActionOutput events through
  the engine's listener path; another thread posts key presses as a terminal driver would; the handler stamps them.
- memory: resident set size after 1,000,000 log lines (in a fresh process).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

BARE = """
import time
from textual.app import App
class Bare(App[None]):
    def on_mount(self) -> None:
        self.call_after_refresh(self.exit)
Bare().run(headless=True)
"""

COCKPIT = """
from rollback_tui.ui.app import CockpitApp
class FirstFrame(CockpitApp):
    def main_ready(self) -> None:
        super().main_ready()
        self.call_after_refresh(self.exit)
FirstFrame().run(headless=True)
"""

COCKPIT_RUN = """
import sys
from pathlib import Path
from rollback_tui.plan.loader import load_plan
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import LiveDriver
loaded = load_plan(Path(sys.argv[1]), {})
class FirstFrame(CockpitApp):
    def main_ready(self) -> None:
        self.call_after_refresh(self.exit)   # the first frame, before the engine worker starts
        super().main_ready()
    def run_driver(self):  # the engine starts after the first frame; not part of this measurement
        return None
FirstFrame(LiveDriver(lambda *a: None), operator="bench").run(headless=True)
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
from rollback_tui.engine.events import ActionOutput
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


def _time_script(code: str, *args: str) -> float:
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - begin


def _row(name: str, values: list[float], unit: str, target: str, met: bool | None) -> dict[str, Any]:
    return {"name": name, "median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "target": target, "met": met}


def bench_startup(runs: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(PLAN)
        bare: list[float] = []
        cockpit: list[float] = []
        cockpit_run: list[float] = []
        _time_script(BARE)  # warm the file cache for all three
        _time_script(COCKPIT)
        for _ in range(runs):
            bare.append(_time_script(BARE))
            cockpit.append(_time_script(COCKPIT))
            cockpit_run.append(_time_script(COCKPIT_RUN, str(plan)))
    base = statistics.median(bare)
    rows = [_row("start-up: bare Textual app to first frame", bare, "s", "baseline", None)]
    for name, values in (("start-up: cockpit to first frame", cockpit),
                         ("start-up: `run PLAN` (plan validated) to first frame", cockpit_run)):
        ratio = statistics.median(values) / base
        rows.append(_row(name, values, "s", "<= 1.3x bare", ratio <= 1.3))
        rows.append({"name": f"{name}: ratio to bare", "median": ratio,
                     "min": min(values) / base, "max": max(values) / base, "unit": "x", "target": "<= 1.3",
                     "met": ratio <= 1.3})
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
    return bench_startup(3 if quick else 7) + bench_flood(quick)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for row in main(quick):
        met = {True: "met", False: "NOT MET", None: ""}[row["met"]]
        print(f"{row['name']:<62} {row['median']:>10.3f} ({row['min']:.3f}-{row['max']:.3f}) {row['unit']:<7} "
              f"target {row['target']:<12} {met}")
