"""Whole commands, timed from outside: start-up ratios to `import textual`, plan-size growth, the headless demo,
and a long session (resume to the first prompt, its peak RSS, verify and replay of its report).

Usage: python benchmarks/bench_commands.py [--quick]
Every figure is a whole `rollback-tui ...` process from spawn to exit (or to the output that shows a milestone),
its CPU and peak RSS from wait4 on that child. Commands compared with each other take turns (ABAB) after a warm-up
round, with the same bytecode cache state (see _common.python_env).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import MEMORY_CAP_MB, alternate, python_env, row, run_child, run_streaming, slope_row, tool
from _session import copy_journal, flood_journal, make_key, write_plan


def _ratio_rows(results: dict, base: str, targets: dict[str, float], labels: dict[str, str]) -> list[dict]:
    base_walls = [c.wall for c in results[base]]
    rows = [row(f"start-up: {labels[base]}", base_walls, "s", "baseline", None)]
    base_median = statistics.median(base_walls)
    for name, limit in targets.items():
        walls = [c.wall for c in results[name]]
        ratio = statistics.median(walls) / base_median
        rows.append(row(f"start-up: {labels[name]}", walls, "s", "(info)", None))
        rows.append({**row(f"start-up: {labels[name]} / {labels[base]}", [ratio], "x", f"<= {limit:g}x",
                           ratio <= limit),
                     "min": min(w / b for w, b in zip(walls, base_walls)),
                     "max": max(w / b for w, b in zip(walls, base_walls))})
    return rows


def bench_startup(directory: Path, env: dict[str, str], runs: int) -> list[dict]:
    """`verify`, `validate`, `plan` against `python -c "import textual"`, alternating."""
    plan = write_plan(directory / "small.yaml", 10)
    key, allowed = make_key(directory)
    report = directory / "small.md"
    done = run_child([tool("rollback-tui"), "run", str(plan), "--headless", "--answers", "auto", "--operator",
                      "bench", "--sign-key", str(key), "--journal", str(directory / "small.journal.jsonl"),
                      "--report", str(report)], env=env)
    if done.code != 0:
        raise RuntimeError(f"the small session failed ({done.code}): {done.stderr[-800:]}{done.stdout[-800:]}")
    cli = tool("rollback-tui")
    commands = {"textual": [sys.executable, "-c", "import textual"],
                "verify": [cli, "verify", str(report), "--allowed-signers", str(allowed)],
                "validate": [cli, "validate", str(plan)],
                "plan": [cli, "plan", str(plan)]}
    labels = {"textual": '`python -c "import textual"`', "verify": "`verify` (report of a 10-action session)",
              "validate": "`validate` (10 actions)", "plan": "`plan` (10 actions)"}
    results = alternate(commands, runs, env=env)
    return _ratio_rows(results, "textual", {"verify": 1.5, "validate": 1.5, "plan": 2.0}, labels)


def bench_plan_growth(directory: Path, env: dict[str, str], runs: int, sizes: tuple[int, ...]) -> list[dict]:
    """validate and plan of generated plans of each size, all sizes taking turns; per-action slope."""
    cli = tool("rollback-tui")
    commands = {}
    for size in sizes:
        plan = write_plan(directory / f"growth-{size}.yaml", size)
        commands[f"validate {size}"] = [cli, "validate", str(plan)]
        commands[f"plan {size}"] = [cli, "plan", str(plan)]
    results = alternate(commands, runs, env=env)
    rows = []
    for verb in ("validate", "plan"):
        points = []
        for size in sizes:
            walls = [c.wall for c in results[f"{verb} {size}"]]
            rows.append(row(f"`{verb}` of a plan of {size:,} actions", walls, "s"))
            points += [(size, w) for w in walls]
        rows.append(slope_row(f"`{verb}` growth: cost per action ({'/'.join(f'{s:,}' for s in sizes)})", points,
                              "ms/action", scale=1000))
    return rows


def bench_demo(directory: Path, env: dict[str, str], runs: int) -> list[dict]:
    walls, cpus = [], []
    for index in range(runs):
        done = run_child([tool("rollback-tui"), "demo", "--headless", "--answers", "auto", "--no-sign",
                          "--journal", str(directory / f"demo-{index}.journal.jsonl"),
                          "--report", str(directory / f"demo-{index}.md")], env=env, timeout=300)
        if done.code != 0:
            raise RuntimeError(f"the headless demo failed ({done.code}): {done.stderr[-800:]}{done.stdout[-500:]}")
        walls.append(done.wall)
        cpus.append(done.cpu)
    return [row("headless demo (`demo --headless --answers auto`), whole command", walls, "s", "< 8 s",
                statistics.median(walls) < 8),
            row("headless demo: CPU of the command (its sandbox services included once reaped)", cpus, "s CPU")]


def _replay_open(report: Path, allowed: Path, env: dict[str, str], timeout: float) -> float | None:
    """Seconds from spawning `replay REPORT` on a pty to its first frame showing REPLAY (the events loaded)."""
    from _pty import PtyProcess

    child = PtyProcess([tool("rollback-tui"), "replay", str(report), "--allowed-signers", str(allowed),
                        "--speed", "1000"], env=env, limit_mb=MEMORY_CAP_MB)
    try:
        shown = child.wait_for(b"REPLAY", timeout)
    finally:
        child.close()
    return None if shown is None else shown - child.started


def bench_long_session(directory: Path, env: dict[str, str], events: int, runs: int) -> list[dict]:
    """A journal of `events` events (a real interrupted session padded with a log flood): resume it headless to
    its first prompt and to its end, then verify and replay the report it writes."""
    key, allowed = make_key(directory)
    started = time.monotonic()
    _, pristine = flood_journal(events, env)
    journal = copy_journal(pristine, directory / pristine.name)
    size_mb = journal.stat().st_size / 1e6
    print(f"   journal of {events:,} events ({size_mb:.0f} MB) made in {time.monotonic() - started:.0f} s", flush=True)
    report = directory / f"long-{events}.md"
    budget = 180.0
    resumed = run_streaming([tool("rollback-tui"), "resume", str(journal), "--headless", "--answers", "auto",
                             "--operator", "bench", "--sign-key", str(key), "--report", str(report)],
                            {"prompt": "? ["}, env=env, timeout=budget, limit_mb=MEMORY_CAP_MB)
    label = f"{events:,}-event journal ({size_mb:.0f} MB)"
    marks = resumed.marks or {}
    if resumed.code != 0 or "prompt" not in marks:
        why = (f"killed after the {budget:.0f} s budget" if resumed.code == -9 else
               f"exit {resumed.code} after {resumed.wall:.1f} s, peak RSS {resumed.peak_rss_mb:,.0f} MB")
        tail = " ".join(resumed.stderr.strip().splitlines()[-2:])[-240:]
        if "MemoryError" in resumed.stderr or "memory" in resumed.stderr.lower():
            why += f", out of memory under the {MEMORY_CAP_MB:,} MB address-space cap"
        note = f"resume did not reach its first prompt ({why}): {tail}"
        return [{**row(f"resume of a {label} to the first prompt (headless)", [resumed.wall], "s", "< 5 s", False),
                 "note": note},
                {**row(f"resume of a {label}: peak RSS of the process", [resumed.peak_rss_mb], "MB", "< 500 MB",
                       False), "note": note},
                {**row(f"`verify` / `replay` of a {events:,}-event report", [float("nan")], "s", "< 5 s / < 3 s",
                       False), "note": "not measured: the resume that writes this report did not finish"}]
    rows = [row(f"resume of a {label} to the first prompt (headless)", [marks["prompt"]], "s", "< 5 s",
                marks["prompt"] < 5),
            row(f"resume of a {label}: peak RSS of the process", [resumed.peak_rss_mb], "MB", "< 500 MB",
                resumed.peak_rss_mb < 500),
            row(f"resume of a {label}: whole session to its end (report written and signed)", [resumed.wall], "s"),
            row(f"resume of a {label}: CPU", [resumed.cpu], "s CPU")]
    report_mb = report.stat().st_size / 1e6
    verifies = []
    for _ in range(runs):
        done = run_child([tool("rollback-tui"), "verify", str(report), "--allowed-signers", str(allowed)], env=env,
                         timeout=budget, limit_mb=MEMORY_CAP_MB)
        if done.code != 0:
            raise RuntimeError(f"verify of the long report failed ({done.code}): {done.stdout[-300:]}"
                               f"{done.stderr[-300:]}")
        verifies.append(done)
    rows.append(row(f"`verify` of its report ({report_mb:.0f} MB), whole command", [c.wall for c in verifies], "s",
                    "< 5 s", statistics.median(c.wall for c in verifies) < 5))
    rows.append(row("`verify` of that report: peak RSS", [c.peak_rss_mb for c in verifies], "MB"))
    opened = _replay_open(report, allowed, env, budget)
    if opened is None:
        rows.append({**row("`replay` of that report opens (pty, to the first REPLAY frame)", [budget], "s", "< 3 s",
                           False), "note": f"no REPLAY frame within {budget:.0f} s (or it died at the "
                                           f"{MEMORY_CAP_MB:,} MB address-space cap)"})
    else:
        rows.append(row("`replay` of that report opens (pty, to the first REPLAY frame)", [opened], "s", "< 3 s",
                        opened < 3))
    per_event = (resumed.peak_rss_mb * 1e6) / events
    rows.append({**row(f"resume: peak RSS per event of the {events:,}-event journal", [per_event], "bytes", "(info)",
                       None), "note": "peak RSS of the whole process / events: an upper bound of the fold's "
                                      "memory per event (the < 500 bytes target is the fold's, see journal rows)"})
    return rows


def main(quick: bool = False) -> list[dict]:
    env = python_env()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as tmp:
        directory = Path(tmp)
        rows += bench_startup(directory, env, 5 if quick else 9)
        rows += bench_plan_growth(directory, env, 2 if quick else 4, (10, 100, 1000))
        rows += bench_demo(directory, env, 1 if quick else 2)
        for events in (100_000,) if quick else (100_000, 1_000_000):
            rows += bench_long_session(directory, env, events, 1 if quick else 2)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k-event journal, fewer runs")
    for r in main(parser.parse_args().quick):
        print(r)
