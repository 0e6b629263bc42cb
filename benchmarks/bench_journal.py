"""Journal benchmark: appends with fsync per event, and the growth of read + fold with the journal's size.

Usage: python benchmarks/bench_journal.py [--quick]
Baselines side by side in the same run: appends without fsync (what the durability costs), and plain json.loads of
the same lines with the same advantages as ours (bytes read beforehand, garbage collector off, a fresh warm
process each). The journals are prefixes of one realistic log-flood journal: a real headless session interrupted
during a long action, padded through the product's journal writer and event models (see _session.py), in its
own process. Fold runs are alternating fresh processes under a 4 GB address-space cap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import MEMORY_CAP_MB, ROOT, python_env, row, run_child, slope_row
from _session import copy_journal, flood_journal
from rollback_tui.record import events as ev
from rollback_tui.record.journal import Journal


def _mix(count: int) -> list[ev.EventBase]:
    """A realistic session's mix: mostly output batches and health samples, with step/action/decision events."""
    out: list[ev.EventBase] = [ev.SessionStarted(operator="o", plan_path="/p.yaml", plan_sha256="0" * 64,
                                                 plan_name="bench", host="h", pid=1, tool_version="0",
                                                 outline={"window": 3600, "steps": []})]
    steps = ["assess", "flags", "code", "configuration", "database", "infrastructure", "validate"]
    index = 0
    while len(out) < count:
        step = steps[index % len(steps)]
        attempt = index // len(steps) + 1
        out += [ev.StepStarted(step=step, attempt=attempt) if attempt == 1 else
                ev.StepStarted(step=step, attempt=attempt),
                ev.ActionStarted(step=step, action="a", kind="shell", attempt=attempt, description="run x")]
        out += [ev.ActionOutput(step=step, action="a", host="web-1", lines=[f"line {n} " + "x" * 60 for n in range(5)])
                for _ in range(8)]
        out += [ev.HealthSample(samples={"api": [[-0.5, "healthy", 3.2], [-0.1, "healthy", 2.9]]}),
                ev.ActionFinished(step=step, action="a", attempt=attempt, status="ok", duration=0.2),
                ev.Verification(step=step, action="a", check="HEAD", expected="v1", observed="v1", ok=True),
                ev.DecisionRequested(request_id=index * 2 + 1, kind="gate", step=step, question="?",
                                     options=["go", "no_go", "abort"]),
                ev.DecisionMade(request_id=index * 2 + 1, kind="gate", step=step, choice="no_go", by="o"),
                ev.DecisionRequested(request_id=index * 2 + 2, kind="no_go", step=step, question="?",
                                     options=["retry"]),
                ev.DecisionMade(request_id=index * 2 + 2, kind="no_go", step=step, choice="retry", by="o")]
        index += 1
    return out[:count]


def bench_append(directory: Path, count: int, *, sync: bool) -> float:
    """Events per second appended one at a time (each with its fsync unless sync is False)."""
    events = _mix(count)
    path = directory / f"append-{time.monotonic_ns()}.jsonl"
    journal = Journal.create(path)
    if not sync:
        import os

        real_fsync = os.fsync
        os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        for event in events:
            journal.append(event)
        elapsed = time.perf_counter() - started
    finally:
        if not sync:
            os.fsync = real_fsync  # type: ignore[assignment]
        journal.close()
        path.unlink()
    return count / elapsed


# One measurement in a fresh process (so its memory is its own): for "ours" and "json" the journal's bytes are
# read before the clock starts and the collector is collected and off (the journal reader turns it off itself,
# so the baseline gets the same), then either parse_journal_bytes into typed events + fold, or plain json.loads
# of every line; "read+fold" is the product path from the file, as resume does it. It prints seconds, and the
# RSS the result holds (events + state, or the dicts) per event.
FOLD = r"""
import gc, json, os, sys, time
from pathlib import Path
path, mode = Path(sys.argv[1]), sys.argv[2]
from rollback_tui.record.journal import parse_journal_bytes, read_journal
from rollback_tui.procedure.fold import fold

def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

if mode == "read+fold":
    gc.collect()
    started = time.perf_counter()
    events = read_journal(path).events
    state = fold(events)
    elapsed = time.perf_counter() - started
    count = len(events)
else:
    data = path.read_bytes()
    gc.collect()
    gc.disable()
    started = time.perf_counter()
    if mode == "ours":
        events = parse_journal_bytes(data)[0]
        state = fold(events)
        count = len(events)
    else:
        rows = [json.loads(line) for line in data.split(b"\n") if line]
        count = len(rows)
    elapsed = time.perf_counter() - started
    del data
gc.collect()
after = rss()
print(json.dumps({"seconds": elapsed, "count": count, "rss_after": after,
                  "peak_mb": next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))}))
"""

# the same process's RSS with the imports done and nothing read: what the result's memory is counted against
IDLE = r"""
import gc, json, os
from rollback_tui.record.journal import parse_journal_bytes, read_journal
from rollback_tui.procedure.fold import fold
gc.collect()
with open("/proc/self/statm") as handle:
    print(int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
"""


def _fold_child(path: Path, mode: str, env: dict[str, str]) -> dict | None:
    """One FOLD run; None when it died (the address-space cap, most likely)."""
    # 120 s: far more than any fold that fits takes here; pydantic-core can panic and hang at the memory cap
    done = run_child([sys.executable, "-c", FOLD, str(path), mode], env=env, cwd=ROOT, timeout=120,
                     limit_mb=MEMORY_CAP_MB)
    if done.code != 0:
        print(f"   fold {mode} of {path.name} failed ({done.code}): {done.stderr.strip()[-200:]}", flush=True)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = done.wall
    return result


def bench_fold_growth(directory: Path, sizes: tuple[int, ...], runs: dict[int, int]) -> list[dict[str, object]]:
    """Read + fold of journals of each size (prefixes of one generated log-flood journal), ours and plain json
    alternating in fresh processes; the fitted cost per event."""
    env = python_env()
    _, source = flood_journal(max(sizes), env)
    idle = int(run_child([sys.executable, "-c", IDLE], env=env, cwd=ROOT).stdout.split()[-1])
    rows: list[dict[str, object]] = []
    modes = ("read+fold", "ours", "json")
    points: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for size in sizes:
        path = copy_journal(source, directory / f"fold-{size}.jsonl", size)
        megabytes = path.stat().st_size / 1e6
        results: dict[str, list[dict]] = {mode: [] for mode in modes}
        failed: set[str] = set()
        if size >= 1_000_000:  # the largest size: the product path and the baseline only (time budget)
            failed.add("ours")
        for _ in range(runs[size]):
            for mode in modes:  # alternating, each in a fresh process
                if mode not in failed:
                    result = _fold_child(path, mode, env)
                    if result is None:
                        failed.add(mode)
                    else:
                        results[mode].append(result)
        label = f"{size:,} events ({megabytes:.0f} MB)"
        for mode, what, target in (
                ("read+fold", f"read + fold {label} from the file (product path)",
                 "< 1 s" if size == 100_000 else ""),
                ("ours", f"parse + fold {label}, pre-read bytes, gc off", ""),
                ("json", f"baseline: json.loads of the same {size:,} lines, pre-read bytes, gc off", "")):
            values = [r["seconds"] for r in results[mode]]
            if not values:
                if mode == "ours" and size >= 1_000_000:
                    continue
                rows.append({**row(what, [float("nan")], "s", target, False if target else None),
                             "note": f"did not finish under the {MEMORY_CAP_MB:,} MB address-space cap"})
                continue
            rows.append(row(what, values, "s", target, statistics.median(values) < 1.0 if target else None))
            points[mode] += [(size, v) for v in values]
        if results["ours"] and results["json"]:
            ratios = [o["seconds"] / j["seconds"] for o, j in zip(results["ours"], results["json"])]
            rows.append(row(f"ours / plain json ({size:,} events, same tricks)", ratios, "x"))
        if results["read+fold"]:
            per = [(r["rss_after"] - idle) / size for r in results["read+fold"]]
            rows.append({**row(f"memory per event held after read + fold ({size:,} events)", per, "bytes",
                               "< 500 bytes", statistics.median(per) < 500),
                         "note": "RSS with the events and the state held, minus the RSS of the same imports"})
    for mode, what in (("read+fold", "read + fold from the file"), ("ours", "parse + fold, pre-read"),
                       ("json", "baseline json.loads, pre-read")):
        measured = sorted({int(x) for x, _ in points[mode]})  # the sizes that finished under the cap
        if len(measured) >= 2:
            rows.append(slope_row(f"journal growth: {what}: cost per event ({'/'.join(f'{s:,}' for s in measured)})",
                                  points[mode], "µs/event", scale=1e6))
    return rows


def main(quick: bool = False) -> list[dict[str, object]]:
    runs = 3
    appends = 2_000 if quick else 5_000
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-journal-", dir=Path.cwd()) as tmp:
        directory = Path(tmp)
        synced: list[float] = []
        unsynced: list[float] = []
        for _ in range(runs):  # interleaved, so both see the same disk and load
            synced.append(bench_append(directory, appends, sync=True))
            unsynced.append(bench_append(directory, appends, sync=False))
        rows.append(row(f"append {appends} events, fsync each", synced, "events/s", ">= 2,000 events/s",
                        statistics.median(synced) >= 2000))
        rows.append(row(f"baseline: append {appends} events, no fsync", unsynced, "events/s"))
    with tempfile.TemporaryDirectory(prefix="bench-fold-") as tmp:
        if quick:
            rows += bench_fold_growth(Path(tmp), (10_000, 30_000, 100_000), {10_000: 1, 30_000: 1, 100_000: 1})
        else:
            rows += bench_fold_growth(Path(tmp), (10_000, 100_000, 1_000_000), {10_000: 5, 100_000: 3, 1_000_000: 1})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for r in main(parser.parse_args().quick):
        print(r)
