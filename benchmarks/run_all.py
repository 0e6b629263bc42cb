"""Run every benchmark in this folder and write this run's table, fresh, to benchmarks/RESULTS.md.

Usage: python benchmarks/run_all.py [--quick] [--only NAME ...] [--no-write]
Each bench_<area>.py exposes main(quick) -> list of rows {name, median, min, max, unit, target, met[, note]}.
A benchmark that fails (a missing competitor included) is listed as failed and makes the run exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu or platform.machine()}), {memory} memory, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: not measured
            return "-"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _load(path: Path):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def _met(value: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "(info)"}[value]


def render(rows: list[tuple[str, dict]], failures: list[str], *, quick: bool, started: str, finished: str,
           load_before: str, load_after: str, seconds: float) -> str:
    """The whole RESULTS.md of one run: header, one table, the closing note."""
    lines = ["| area | measure | median | min | max | unit | target | met |", "|---|---|---|---|---|---|---|---|"]
    for area, r in rows:
        lines.append(f"| {area} | {r['name']} | {_fmt(r['median'])} | {_fmt(r.get('min', ''))} | "
                     f"{_fmt(r.get('max', ''))} | {r.get('unit', '')} | {r.get('target') or '(info)'} | {_met(r.get('met'))} |")
    mode = "quick" if quick else "full"
    text = [f"# Benchmark results\n",
            f"One run of `python benchmarks/run_all.py{' --quick' if quick else ''}` ({mode}), started {started}, "
            f"finished {finished} ({seconds / 60:.1f} min).",
            f"Machine: {_machine()}.",
            f"Load average (1 / 5 / 15 min): {load_before} before, {load_after} after. The machine is shared: "
            "other processes ran beside this one, so wall times are upper bounds; CPU times are steadier.",
            "Every row comes from this run alone (the file is rewritten each run). Comparisons with other tools "
            "are whole command against whole command, alternating (ABAB) with the same inputs; in-process rows "
            "are labelled. median/min/max are over the runs of that row; a ratio row is the ratio of the medians, its "
            "min/max the ratios within single alternating rounds; growth-curve slopes are least-squares fits over "
            "every run of every size, their min/max the slopes between neighbouring sizes' medians.\n",
            *lines]
    missed = [(area, r) for area, r in rows if r.get("met") is False]
    text.append("\n## Not met\n")
    if missed:
        for area, r in missed:
            reason = f": {r['note']}" if r.get("note") else ""
            text.append(f"- {area}: {r['name']}: {_fmt(r['median'])} {r.get('unit', '')} (min {_fmt(r.get('min', ''))}, "
                        f"max {_fmt(r.get('max', ''))}) against {r.get('target', '')}{reason}")
    else:
        text.append("- none")
    notes = [(area, r) for area, r in rows if r.get("note") and r.get("met") is not False]
    if notes:
        text.append("\n## Notes\n")
        text += [f"- {area}: {r['name']}: {r['note']}" for area, r in notes]
    if failures:
        text.append("\n## Benchmarks that failed to run (their rows are missing: the run exits non-zero)\n")
        text += [f"- {failure}" for failure in failures]
    return "\n".join(text) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (about 3 minutes)")
    parser.add_argument("--only", nargs="*", default=None, help="area names, e.g. journal ssh")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    load_before, clock = _load_average(), time.monotonic()
    rows: list[tuple[str, dict]] = []
    failures: list[str] = []
    for path in sorted(HERE.glob("bench_*.py")):
        area = path.stem.removeprefix("bench_")
        if args.only and area not in args.only:
            continue
        print(f"== {area} (load {_load_average()})", flush=True)
        began = time.monotonic()
        try:
            for r in _load(path).main(quick=args.quick):
                rows.append((area, r))
                print(f"   {r['name']}: {_fmt(r['median'])} {r.get('unit', '')} "
                      f"({_fmt(r.get('min', ''))}-{_fmt(r.get('max', ''))}) {r.get('target', '')} {_met(r.get('met'))}",
                      flush=True)
        except Exception as exc:  # one broken benchmark must not hide the others, but the run fails
            failures.append(f"{area}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
            traceback.print_exc()
        print(f"   ({time.monotonic() - began:.0f} s)", flush=True)
    finished = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = render(rows, failures, quick=args.quick, started=started, finished=finished, load_before=load_before,
                  load_after=_load_average(), seconds=time.monotonic() - clock)
    print(text)
    if not args.no_write:
        (HERE / "RESULTS.md").write_text(text)
        print(f"written: {HERE / 'RESULTS.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
