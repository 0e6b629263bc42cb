"""Health monitor soak: 100 probes at a 1 s interval for 30 s (10 s with --quick): CPU, sampling drift, loop lag.

Usage: python benchmarks/bench_health.py [--quick]
Probes (a mix of 50 HTTP with a JSON field check, 40 TCP connects and 10 SQLite queries; then 100 HTTP alone)
poll a loopback server in its own process, so only the monitor's CPU is counted (time.process_time of this
process, SQL threads included). Baselines, side by side in the same run: the naive `sample(); sleep(interval)`
loop per probe (its drift grows: each poll's duration adds to the period), and the same monitor sampling HTTP
through one shared httpx.AsyncClient instead of its keep-alive HTTP/1.1 client.
Drift is how late each sample starts against its schedule (start + k * interval), per probe its largest
lateness, as median (min-max) over the 100 probes. CPU is shown over the whole soak (the target applies to
that) and as median (min-max) over its 1 s windows; loop lag as the p99 of each 1 s window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rollback_tui.health.monitor import Monitor  # noqa: E402
from rollback_tui.health.http11 import HttpPool  # noqa: E402
from rollback_tui.health.probes import sample  # noqa: E402
from rollback_tui.plan.models import Plan  # noqa: E402
from rollback_tui.secrets import SecretStore  # noqa: E402

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


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _plan(port: int, db: Path, mix: str) -> Plan:
    probes: list[dict[str, Any]] = []
    http = {"kind": "http", "url": f"http://127.0.0.1:{port}/health", "json_field": "checks.db", "json_equals": "up",
            "interval": 1, "timeout": 3}
    if mix == "mix":
        probes += [{**http, "id": f"http-{i}"} for i in range(50)]
        probes += [{"id": f"tcp-{i}", "kind": "tcp", "host": "127.0.0.1", "port": port, "interval": 1, "timeout": 3}
                   for i in range(40)]
        probes += [{"id": f"sql-{i}", "kind": "sql", "url": f"sqlite:///{db}", "query": "select count(*) from t",
                    "expect": 3, "interval": 1, "timeout": 3} for i in range(10)]
    else:
        probes += [{**http, "id": f"http-{i}"} for i in range(100)]
    return Plan.model_validate({"metadata": {"name": "bench"}, "rollback": {"scope": ["code"]},
                                "steps": [{"id": "validate"}], "health": probes})


class _Windows:
    """CPU share and event-loop lag per 1 s window, measured from inside the loop."""

    def __init__(self) -> None:
        self.overall = 0.0
        """CPU share over the whole soak (the target applies to this)."""
        self.cpu: list[float] = []
        self.lag_p99: list[float] = []
        self._lags: list[float] = []

    async def run(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        window_start, cpu_start = loop.time(), time.process_time()
        begin, cpu_begin = window_start, cpu_start
        while loop.time() < end:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self._lags.append((loop.time() - due) * 1000.0)
            now = loop.time()
            if now - window_start >= 1.0:
                cpu = time.process_time()
                self.cpu.append((cpu - cpu_start) / (now - window_start) * 100.0)
                self.lag_p99.append(_pct(self._lags, 0.99))
                self._lags, window_start, cpu_start = [], now, cpu
        self.overall = (time.process_time() - cpu_begin) / (loop.time() - begin) * 100.0


async def _soak_monitor(plan: Plan, seconds: float) -> dict[str, Any]:
    events: list[Any] = []
    monitor = Monitor(plan, SecretStore({}), events.append, sample_every=10.0)
    windows = _Windows()
    await monitor.start()
    await asyncio.sleep(1.5)  # first polls (imports, connections) happen outside the measured windows
    await windows.run(seconds)
    snapshot = monitor.snapshot()
    await monitor.stop()
    drifts = [d * 1000.0 for values in monitor.drift.values() for d in values]
    per_probe = [max(values) * 1000.0 for values in monitor.drift.values()]
    healthy = sum(entry["state"] == "healthy" for entry in snapshot.values())
    return {"cpu": windows.cpu, "overall": windows.overall, "lag": windows.lag_p99, "per_probe": per_probe,
            "worst": max(per_probe), "p50": _pct(drifts, 0.5), "p99": _pct(drifts, 0.99), "samples": len(drifts),
            "healthy": healthy,
            "events": len(events)}


async def _soak_naive(plan: Plan, seconds: float) -> dict[str, Any]:
    secrets, clients = SecretStore({}), HttpPool()
    drift: dict[str, list[float]] = {}
    loop = asyncio.get_running_loop()

    async def naive(probe: Any, offset: float) -> None:
        first = loop.time() + offset
        await asyncio.sleep(offset)
        tick = 0
        mine = drift.setdefault(probe.id, [])
        while True:
            mine.append(max(0.0, loop.time() - (first + tick * probe.interval)))
            await sample(probe, plan=plan, secrets=secrets, client=clients)
            await asyncio.sleep(probe.interval)
            tick += 1

    tasks = [asyncio.create_task(naive(probe, index / len(plan.health))) for index, probe in enumerate(plan.health)]
    windows = _Windows()
    await asyncio.sleep(1.5)
    await windows.run(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await clients.aclose()
    drifts = [d * 1000.0 for values in drift.values() for d in values]
    per_probe = [max(values) * 1000.0 for values in drift.values()]
    return {"cpu": windows.cpu, "overall": windows.overall, "lag": windows.lag_p99, "per_probe": per_probe,
            "worst": max(per_probe), "p50": _pct(drifts, 0.5), "p99": _pct(drifts, 0.99), "samples": len(drifts)}


def _row(name: str, values: tuple[float, float, float], unit: str, target: str, met: bool | None) -> dict:
    median, low, high = values
    return {"name": name, "median": round(median, 3), "min": round(low, 3), "max": round(high, 3), "unit": unit,
            "target": target, "met": met}


async def _httpx_sample_http(probe: Any, secrets: SecretStore, pool: Any) -> Any:
    """The baseline HTTP sampler: one shared httpx.AsyncClient, as a first implementation would do it."""
    from rollback_tui.health import probes as module

    started = time.perf_counter()
    try:
        response = await _HTTPX.request(probe.method, secrets.expand(probe.url), timeout=probe.timeout)
    except Exception as exc:
        return module.ProbeOutcome(False, None, module.error_reason(exc, timeout=probe.timeout))
    return module._judge_http(probe, response.status_code, response.content, module._ms(started))


_HTTPX: Any = None


async def _soak_with_httpx(plan: Plan, seconds: float) -> dict[str, Any]:
    global _HTTPX
    from rollback_tui.health import probes as module

    import httpx

    # made before the soak, like the monitor's own pool: the baseline pays no import or set-up inside it
    _HTTPX = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=4))
    original = module._sample_http
    module._sample_http = _httpx_sample_http  # type: ignore[assignment]
    try:
        return await _soak_monitor(plan, seconds)
    finally:
        module._sample_http = original  # type: ignore[assignment]
        if _HTTPX is not None:
            await _HTTPX.aclose()
            _HTTPX = None


def _print(label: str, result: dict[str, Any]) -> None:
    cpu, lag = _stats(result["cpu"]), _stats(result["lag"])
    print(f"  {label:<36} CPU {result['overall']:5.2f} % overall, {cpu[0]:.2f} % ({cpu[1]:.2f}-{cpu[2]:.2f})"
          " | drift per probe max "
          f"{max(result['per_probe']):6.1f} ms, median {statistics.median(result['per_probe']):5.1f} ms, "
          f"p99 of samples {result['p99']:5.1f} ms | loop lag p99 {lag[0]:.1f} ms ({lag[1]:.1f}-{lag[2]:.1f})")


def main(quick: bool = False) -> list[dict]:
    seconds = 10.0 if quick else 30.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-health-"))
    db = tmp / "app.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("create table t(x); insert into t values (1), (2), (3);")
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    rows: list[dict] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print(f"100 probes at a 1 s interval, {seconds:g} s soaks; CPU and loop lag: median (min-max) over 1 s windows")
        mix = _plan(port, db, "mix")
        ours, naive = asyncio.run(_soak_monitor(mix, seconds)), asyncio.run(_soak_naive(mix, seconds))
        print(f"mix: 50 http, 40 tcp, 10 sql ({ours['samples']} samples, {ours['healthy']}/100 healthy, "
              f"{ours['events']} events)")
        _print("monitor (fixed-rate)", ours)
        _print("baseline: sample(); sleep(interval)", naive)
        http = _plan(port, db, "http")
        ours_http, httpx_http = asyncio.run(_soak_monitor(http, seconds)), asyncio.run(_soak_with_httpx(http, seconds))
        print(f"100 http probes ({ours_http['healthy']}/100 healthy)")
        _print("monitor, keep-alive HTTP/1.1 client", ours_http)
        _print("baseline: monitor with httpx", httpx_http)
        cpu_ratio = statistics.median(ours_http["cpu"]) / statistics.median(httpx_http["cpu"])
        drift_ratio = max(ours["per_probe"]) / max(naive["per_probe"])
        print(f"ratios: HTTP CPU ours/httpx {cpu_ratio:.2f}; worst drift ours/naive {drift_ratio:.2f}")
        for label, result in (("mix", ours), ("100 http", ours_http)):
            cpu = _stats(result["cpu"])
            rows.append(_row(f"health {label}: CPU", cpu, "% of one core", "< 5 %", result["overall"] < 5.0))
            rows.append(_row(f"health {label}: max sampling drift per probe", _stats(result["per_probe"]), "ms",
                             "< 100 ms", max(result["per_probe"]) < 100.0))
            rows.append(_row(f"health {label}: loop lag p99", _stats(result["lag"]), "ms", "", None))
        rows.append(_row("health mix: baseline sample()+sleep drift per probe", _stats(naive["per_probe"]), "ms",
                         "", None))
        rows.append(_row("health 100 http: baseline httpx CPU", _stats(httpx_http["cpu"]), "% of one core", "",
                         None))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        for path in tmp.iterdir():
            path.unlink()
        os.rmdir(tmp)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s soaks instead of 30 s")
    main(quick=parser.parse_args().quick)
