"""Run every benchmark in this folder and write the table of medians to benchmarks/RESULTS.md.

Usage: python benchmarks/run_all.py [--quick] [--only NAME ...] [--no-write]
Each bench_<area>.py exposes main(quick) -> list of rows {name, median, min, max, unit, target, met}.
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


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _load(path: Path):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter floods (minutes, not tens)")
    parser.add_argument("--only", nargs="*", default=None, help="area names, e.g. journal ssh")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    rows: list[tuple[str, dict]] = []
    failures: list[str] = []
    for path in sorted(HERE.glob("bench_*.py")):
        area = path.stem.removeprefix("bench_")
        if args.only and area not in args.only:
            continue
        print(f"== {area}", flush=True)
        started = time.monotonic()
        try:
            for row in _load(path).main(quick=args.quick):
                rows.append((area, row))
        except Exception:  # one broken benchmark must not hide the others
            failures.append(f"{area}: {traceback.format_exc(limit=3)}")
            print(failures[-1], file=sys.stderr)
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)

    header = "| area | measure | median | min | max | unit | target | met |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    ran = {area for area, _ in rows}
    previous = HERE / "RESULTS.md"
    if previous.exists() and not args.no_write:  # keep the rows of areas not run this time
        for line in previous.read_text().splitlines():
            cells = [cell.strip() for cell in line.split("|")[1:-1]]
            if len(cells) == 8 and cells[0] not in ("area", "---") and cells[0] not in ran:
                lines.append(line)
    for area, row in rows:
        met = {True: "met", False: "NOT MET", None: "-"}[row.get("met")]
        lines.append(f"| {area} | {row['name']} | {_fmt(row['median'])} | {_fmt(row.get('min', ''))} | "
                     f"{_fmt(row.get('max', ''))} | {row.get('unit', '')} | {row.get('target', '')} | {met} |")
    lines[2:] = sorted(lines[2:], key=lambda line: line.split("|")[1])
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        mode = "quick" if args.quick else "full"
        text = (f"# Benchmark results\n\nMeasured {stamp} ({mode} run) with `python benchmarks/run_all.py"
                f"{' --quick' if args.quick else ''}` on {_machine()}.\nThe machine is shared and noisy: medians "
                "over several runs, min and max beside them; comparisons are ratios measured side by side in the "
                "same run.\n\n" + table + "\n")
        if failures:
            text += "\n## Benchmarks that failed to run\n\n" + "\n".join(f"- {f.splitlines()[0]}" for f in failures)
        previous.write_text(text)
        print(f"written: {previous}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
