"""Journal benchmark: appends with fsync per event, and folding a 100,000-event journal into procedure state.

Usage: python benchmarks/bench_journal.py [--quick]
Baselines measured side by side in the same run: appends without fsync (what the durability costs), and reading
the same file with json.loads only (what parsing into typed events costs on top of plain JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rollback_tui.record import events as ev
from rollback_tui.record.journal import Journal, read_journal
from rollback_tui.procedure.fold import fold


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


def _runs(fn: Callable[[], float], count: int) -> list[float]:
    return [fn() for _ in range(count)]


def _row(name: str, values: list[float], unit: str, target: str, met: bool | None) -> dict[str, object]:
    return {"name": name, "median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "target": target, "met": met}


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


def write_big(path: Path, count: int) -> None:
    numbered = [event.model_copy(update={"seq": index}) for index, event in enumerate(_mix(count), start=1)]
    path.write_text("".join(event.model_dump_json() + "\n" for event in numbered))


def bench_fold(path: Path) -> float:
    started = time.perf_counter()
    state = fold(read_journal(path).events)
    elapsed = time.perf_counter() - started
    assert state.last_seq > 0
    return elapsed


def bench_json_only(path: Path) -> float:
    started = time.perf_counter()
    rows = [json.loads(line) for line in path.read_bytes().splitlines()]
    elapsed = time.perf_counter() - started
    assert rows
    return elapsed


def main(quick: bool = False) -> list[dict[str, object]]:
    runs = 3 if quick else 5
    appends = 2_000 if quick else 5_000
    big = 100_000
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-journal-", dir=Path.cwd()) as tmp:
        directory = Path(tmp)
        synced: list[float] = []
        unsynced: list[float] = []
        for _ in range(runs):  # interleaved, so both see the same disk and load
            synced.append(bench_append(directory, appends, sync=True))
            unsynced.append(bench_append(directory, appends, sync=False))
        rows.append(_row(f"append {appends} events, fsync each", synced, "events/s", ">= 2,000 events/s",
                         statistics.median(synced) >= 2000))
        rows.append(_row(f"baseline: append {appends} events, no fsync", unsynced, "events/s", "", None))
        path = directory / "big.jsonl"
        write_big(path, big)
        folds: list[float] = []
        plain: list[float] = []
        for _ in range(runs):
            folds.append(bench_fold(path))
            plain.append(bench_json_only(path))
        rows.append(_row("read + fold 100,000-event journal", folds, "s", "< 1 s", statistics.median(folds) < 1.0))
        rows.append(_row("baseline: json.loads of the same 100,000 lines", plain, "s", "", None))
    return rows


def _print(rows: list[dict[str, object]]) -> None:
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        met = "" if row["met"] is None else ("  met" if row["met"] else "  NOT MET")
        print(f"{row['name']}: {row['median']:.4g} {row['unit']} ({row['min']:.4g}-{row['max']:.4g})"
              f"{'  target ' + str(row['target']) if row['target'] else ''}{met}")
    names = list(by_name)
    synced, unsynced, fold_row, plain = (by_name[n] for n in names)
    print(f"ratio: fsync costs {float(unsynced['median']) / float(synced['median']):.1f}x in append rate; "
          f"typed events + fold take {float(fold_row['median']) / float(plain['median']):.1f}x plain json.loads")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    _print(main(parser.parse_args().quick))
    sys.exit(0)
