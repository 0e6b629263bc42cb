"""Health monitor soak: 100 probes at a 1 s interval for 30 s (5 s with --quick): CPU, sampling drift, loop lag.

Usage: python benchmarks/bench_health.py [--quick]
Probes (a mix of 50 HTTP with a JSON field check, 40 TCP connects and 10 SQLite queries; then 100 HTTP alone)
poll a loopback server in its own process. Each soak runs in its own process (_health_soak.py) with nothing
measuring it from inside: THIS process reads its CPU (utime + stime, threads included) from /proc/PID/stat over
the whole soak and per 1 s window, and pings a UDP echo on its event loop 10 times a second (the round trip:
how late the loop answers; the echo is the one foreign thing in the measured process, ~10 wake-ups/s).
Baselines, side by side in the same run: the naive `sample(); sleep(interval)` loop per probe (its drift grows:
each poll's duration adds to the period), and the same monitor sampling HTTP through one shared httpx.AsyncClient.
Drift is how late each sample starts against its schedule (start + k * interval), per probe its largest lateness.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, python_env

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")

_SERVER = r"""
import asyncio, sys
BODY = b'{"status":"ok","checks":{"db":"up"}}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""



def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of stat)


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def soak(mode: str, mix: str, seconds: float, port: int, db: Path) -> dict[str, Any]:
    """One soak in its own process, measured from here."""
    return measure([str(HERE / "_health_soak.py"), mode, mix, str(seconds), str(port), str(db)], seconds, mode)


def measure(argv: list[str], seconds: float, mode: str) -> dict[str, Any]:
    """Run `python ARGV` (a soak script speaking ECHO PORT / READY / DONE / one JSON line) and measure it from
    outside: its CPU from /proc/PID/stat per 1 s window and overall, its event loop's lag by UDP pings."""
    child = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True, env=python_env(), cwd=ROOT)
    assert child.stdout is not None
    echo_port = int(child.stdout.readline().split()[1])
    if child.stdout.readline().strip() != "READY":
        raise RuntimeError(f"the {mode} soak did not start")
    ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ping.settimeout(1.0)
    started, cpu0 = time.monotonic(), _cpu_seconds(child.pid)
    window, window_cpu = started, cpu0
    cpu_windows: list[float] = []
    lag: list[float] = []
    window_lags: list[float] = []
    lag_p99: list[float] = []
    end = started + seconds
    while time.monotonic() < end - 0.05:
        sent = time.monotonic()
        ping.sendto(b"x", ("127.0.0.1", echo_port))
        try:
            ping.recvfrom(16)
            window_lags.append((time.monotonic() - sent) * 1000)
        except socket.timeout:
            window_lags.append(1000.0)
        now = time.monotonic()
        if now - window >= 1.0:
            cpu = _cpu_seconds(child.pid)
            cpu_windows.append((cpu - window_cpu) / (now - window) * 100)
            lag_p99.append(sorted(window_lags)[int(0.99 * (len(window_lags) - 1))])
            lag += window_lags
            window, window_cpu, window_lags = now, cpu, []
        time.sleep(max(0.0, 0.1 - (time.monotonic() - sent)))
    line = child.stdout.readline().strip()
    overall = (_cpu_seconds(child.pid) - cpu0) / (time.monotonic() - started) * 100
    if line != "DONE":
        raise RuntimeError(f"the {mode} soak did not end as expected: {line!r}")
    result = json.loads(child.stdout.readline())
    child.wait(timeout=30)
    ping.close()
    return {**result, "cpu": cpu_windows, "overall": overall, "lag": lag_p99 or [max(lag or [0.0])]}


def _row(name: str, values: tuple[float, float, float], unit: str, target: str, met: bool | None) -> dict:
    median, low, high = values
    return {"name": name, "median": round(median, 3), "min": round(low, 3), "max": round(high, 3), "unit": unit,
            "target": target or "(info)", "met": met}


def main(quick: bool = False) -> list[dict]:
    seconds = 5.0 if quick else 30.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-health-"))
    db = tmp / "app.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("create table t(x); insert into t values (1), (2), (3);")
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    rows: list[dict] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        ours, naive = soak("monitor", "mix", seconds, port, db), soak("naive", "mix", seconds, port, db)
        ours_http, httpx_http = soak("monitor", "http", seconds, port, db), soak("httpx", "http", seconds, port, db)
        for label, result in (("mix", ours), ("100 http", ours_http)):
            rows.append({**_row(f"health {label}: CPU of the soak process (/proc/PID/stat, from outside)",
                                (result["overall"], min(result["cpu"]), max(result["cpu"])), "% of one core",
                                "< 5 %", result["overall"] < 5.0),
                         "note": "median = over the whole soak; min/max = 1 s windows (10 ms clock ticks)"})
            rows.append({**_row(f"health {label}: max sampling drift per probe", _stats(result["per_probe"]), "ms",
                                "< 100 ms", max(result["per_probe"]) < 100.0),
                         "note": "each probe's worst lateness, median (min-max) over the 100 probes; the target "
                                 "applies to the worst probe (max)"})
            rows.append(_row(f"health {label}: loop answer p99 (external 10 Hz UDP ping round trip)",
                             _stats(result["lag"]), "ms", "", None))
        rows.append(_row("health mix: baseline sample()+sleep drift per probe", _stats(naive["per_probe"]), "ms",
                         "", None))
        rows.append(_row("health mix: baseline sample()+sleep CPU", (naive["overall"], min(naive["cpu"]),
                                                                     max(naive["cpu"])), "% of one core", "", None))
        rows.append(_row("health 100 http: baseline monitor with httpx CPU",
                         (httpx_http["overall"], min(httpx_http["cpu"]), max(httpx_http["cpu"])), "% of one core",
                         "", None))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        for path in tmp.iterdir():
            path.unlink()
        os.rmdir(tmp)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s soaks instead of 30 s")
    for r in main(quick=parser.parse_args().quick):
        print(r)
