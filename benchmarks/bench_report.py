"""Report of 100,000 events: write + sign, verify, and load for replay (each target < 2 s).

Usage: python benchmarks/bench_report.py [--quick]
The session is the realistic hand-built one from tests/report padded with output batches and health samples
(what dominates a long session). Signing uses an ed25519 key file. Side by side in the same run, the baselines
are the least any implementation must do: dump the events as plain JSON Lines to a file (for writing), and
parse such a file back into events (for verify and load), with the garbage collector off as ours has it. Ratios are ours / baseline. Wall times, median
(min-max) over the runs, each including any garbage collection it leaves pending; CPU seconds of this process
are shown too, since the machine is shared and noisy (wall >> CPU means another process had the cores).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "report"))

from report_sessions import big_session  # noqa: E402

from rollback_tui.record.events import dump_event, parse_event  # noqa: E402
from rollback_tui.report.load import load_events  # noqa: E402
from rollback_tui.report.verify import verify_report  # noqa: E402
from rollback_tui.report.writer import write_report  # noqa: E402

EVENTS = 100_000
TARGET = 2.0


def _time(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; the first allocation afterwards is inside the timing, so a deferred
    garbage collection of what the run built is counted too."""
    gc.collect()
    cpu, started = time.process_time(), time.perf_counter()
    result = run()
    [[] for _ in range(1000)]  # noqa: B018 - triggers any collection the run left pending
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    del result
    return wall, cpu


def _row(name: str, values: list[float], target: str = "", met: bool | None = None) -> dict:
    return {"name": name + " (in-process)", "median": statistics.median(values), "min": min(values),
            "max": max(values), "unit": "s", "target": target or "(info)", "met": met}


def _key(directory: Path) -> Path:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519", comment="bench@report")
    path = directory / "id_ed25519"
    key.write_private_key(str(path))
    path.chmod(0o600)
    # verify trusts only what an allowed_signers file vouches for: the operator "alice" is this key
    (directory / "allowed_signers").write_bytes(b'alice namespaces="rollback-tui" ' + key.export_public_key())
    return path


def main(quick: bool = False) -> list[dict]:
    runs = 2 if quick else 7
    events = big_session(EVENTS)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        directory = Path(tmp)
        key = _key(directory)
        report = directory / "big.md"
        plain = directory / "big.jsonl"

        def without_gc(run: Callable[[], Any]) -> Callable[[], Any]:
            """The baselines get the trick ours uses (the report code turns the collector off while it builds
            or checks the event log)."""
            def wrapped() -> Any:
                gc.disable()
                try:
                    return run()
                finally:
                    gc.enable()
            return wrapped

        @without_gc
        def write_plain() -> None:
            plain.write_text("".join(dump_event(e) + "\n" for e in events))

        @without_gc
        def read_plain() -> list[Any]:
            return [parse_event(line) for line in plain.read_bytes().split(b"\n") if line]

        def write_ours() -> Any:
            return write_report(events, report, sign_key=key, no_sign=False, operator="alice")

        outcome = write_ours()
        assert outcome.signed, outcome.error
        trust = directory / "allowed_signers"
        assert verify_report(report, allowed_signers=trust).ok
        write_plain()
        timings: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        # interleaved, so a noisy neighbour slows both sides of each ratio alike
        for _ in range(runs):
            for name, run in (("write", write_ours), ("write_base", write_plain), ("verify", lambda: verify_report(report, allowed_signers=trust)),
                              ("load", lambda: load_events(report, allowed_signers=trust)), ("read_base", read_plain)):
                wall, used = _time(run)
                timings.setdefault(name, []).append(wall)
                cpu.setdefault(name, []).append(used)
        size = report.stat().st_size
    rows = [
        _row(f"report: write + sign {EVENTS:,} events ({size / 1e6:.0f} MB)", timings["write"], f"< {TARGET:g} s",
             statistics.median(timings["write"]) < TARGET),
        _row("report: baseline, plain JSONL dump of the same events, gc off", timings["write_base"]),
        _row(f"report: verify {EVENTS:,} events (signature, chain, sections)", timings["verify"], f"< {TARGET:g} s",
             statistics.median(timings["verify"]) < TARGET),
        _row(f"report: load_events {EVENTS:,} events for replay (verified)", timings["load"], f"< {TARGET:g} s",
             statistics.median(timings["load"]) < TARGET),
        _row("report: baseline, parse plain JSONL back into events, gc off", timings["read_base"]),
    ]
    rows += [{**_row(f"report: CPU of {name}", cpu[name]), "unit": "s CPU"} for name in ("write", "verify", "load")]
    print(f"{EVENTS:,} events, {runs} runs, report {size / 1e6:.1f} MB")
    for row in rows:
        print(f"  {row['name']:<62} {row['median']:.3f} {row['unit']} ({row['min']:.3f}-{row['max']:.3f})"
              + (f"  target {row['target']}: {'met' if row['met'] else 'NOT met'}" if row["met"] is not None else ""))
    for ours, base in (("write", "write_base"), ("verify", "read_base"), ("load", "read_base")):
        print(f"  ratio {ours} / {base}: {statistics.median(timings[ours]) / statistics.median(timings[base]):.2f}x")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs instead of 7")
    main(parser.parse_args().quick)
