"""Redaction benchmark: the cost of masking secrets on 100,000 output lines on their way to the journal.

Usage: python benchmarks/bench_redact.py [--quick]
Works against this checkout and an older one (PYTHONPATH=OLD_CHECKOUT): with Redactor.model (the record path) each
event is masked once, field by field; without it (before) every adapter sink call masked its lines one by one.
Both then serialise the events as the journal does; the serialisation alone is measured as the floor.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from rollback_tui.record.events import ActionOutput
from rollback_tui.secrets import Redactor

TOKEN = "Tok3n+/Sécret&<x>?~"
URL_PASSWORD = "pg-pass-7Hq2xL9s"
PEM = "\n".join(["-----BEGIN TEST PRIVATE KEY-----"]
                + ["".join(random.Random(i).choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                           for _ in range(64)) for i in range(25)] + ["-----END TEST PRIVATE KEY-----"])


def _lines(count: int) -> list[str]:
    rng = random.Random(1)
    words = ["deploy", "checkout", "rollback", "INFO", "GET", "/health", "200", "ms", "replica", "v1.4.2", "ok"]
    out = []
    for index in range(count):
        line = " ".join(rng.choice(words) for _ in range(14))[:100]
        if index % 100 == 0:  # 1 % of the lines carry a secret
            line = line[:60] + " token=" + TOKEN
        out.append(line)
    return out


def _time(run: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def main(quick: bool = False) -> list[dict[str, object]]:
    count = 20_000 if quick else 100_000
    repeat = 3 if quick else 7
    lines = _lines(count)
    started = time.perf_counter()
    redactor = Redactor([TOKEN, URL_PASSWORD, PEM])
    redactor("x")  # compiles the pattern (at first use)
    build = time.perf_counter() - started
    record_path = hasattr(redactor, "model")

    def sink_calls() -> list[list[str]]:
        return [lines[i:i + 10] for i in range(0, count, 10)]  # adapters hand lines on ~10 at a time

    def batches(parts: list[list[str]]) -> list[ActionOutput]:
        flat = [line for part in parts for line in part]
        return [ActionOutput(step="code", action="a", lines=flat[i:i + 500]) for i in range(0, len(flat), 500)]

    def floor() -> None:
        for event in batches(sink_calls()):
            event.model_dump_json()

    def masked() -> None:
        if record_path:
            for event in batches(sink_calls()):
                redactor.model(event).model_dump_json()  # type: ignore[attr-defined]
        else:
            for event in batches([redactor.lines(part) for part in sink_calls()]):
                event.model_dump_json()

    check = batches([lines])
    shown = "".join(redactor.model(e).model_dump_json() if record_path else "" for e in check)  # type: ignore[attr-defined]
    assert not record_path or TOKEN not in shown
    base = _time(floor, repeat)
    cost = _time(masked, repeat)
    label = "record path (Redactor.model per event)" if record_path else "per sink call (Redactor.lines)"
    rows = [
        {"name": f"{count} lines, 3 secrets: serialise only", "median": statistics.median(base) * 1000,
         "min": min(base) * 1000, "max": max(base) * 1000, "unit": "ms", "target": "", "met": True},
        {"name": f"{count} lines, 3 secrets: mask + serialise, {label}", "median": statistics.median(cost) * 1000,
         "min": min(cost) * 1000, "max": max(cost) * 1000, "unit": "ms", "target": "", "met": True},
        {"name": "masking cost per line", "median": (statistics.median(cost) - statistics.median(base)) / count * 1e6,
         "min": 0, "max": 0, "unit": "µs", "target": "", "met": True},
        {"name": "building the pattern (3 secrets, one a 27-line PEM)", "median": build * 1000, "min": build * 1000,
         "max": build * 1000, "unit": "ms", "target": "", "met": True},
    ]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    for row in main(parser.parse_args().quick):
        print(f"{row['name']}: {row['median']:.2f} {row['unit']} (min {row['min']:.2f}, max {row['max']:.2f})")
