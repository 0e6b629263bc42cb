"""One health soak in its own process, for bench_health.py: the monitor (or a baseline) and nothing measuring it.

Usage: python benchmarks/_health_soak.py monitor|naive|httpx mix|http SECONDS PORT DB
Prints READY when the soak starts (after 1.5 s of first polls), DONE the moment it ends, then one JSON line of
the sampling drift it recorded. CPU is read by the parent from /proc/PID/stat; the only other thing in this
process is a UDP echo the parent pings 10 times a second to see how late the event loop answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from rollback_tui.health.http11 import HttpPool
from rollback_tui.health.monitor import Monitor
from rollback_tui.health.probes import sample
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def _soak_window(seconds: float) -> None:
    await asyncio.sleep(1.5)  # first polls (imports, connections) happen before the measured soak
    print("READY", flush=True)
    await asyncio.sleep(seconds)
    print("DONE", flush=True)


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


async def _soak_monitor(plan: Plan, seconds: float) -> dict[str, Any]:
    events: list[Any] = []
    monitor = Monitor(plan, SecretStore({}), events.append, sample_every=10.0)
    await monitor.start()
    await _soak_window(seconds)
    snapshot = monitor.snapshot()
    await monitor.stop()
    drifts = [d * 1000.0 for values in monitor.drift.values() for d in values]
    per_probe = [max(values) * 1000.0 for values in monitor.drift.values()]
    healthy = sum(entry["state"] == "healthy" for entry in snapshot.values())
    return {"per_probe": per_probe,
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
    await _soak_window(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await clients.aclose()
    drifts = [d * 1000.0 for values in drift.values() for d in values]
    per_probe = [max(values) * 1000.0 for values in drift.values()]
    return {"per_probe": per_probe,
            "worst": max(per_probe), "p50": _pct(drifts, 0.5), "p99": _pct(drifts, 0.99), "samples": len(drifts)}


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


async def _main(mode: str, mix: str, seconds: float, port: int, db: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    print("ECHO", transport.get_extra_info("sockname")[1], flush=True)
    plan = _plan(port, db, mix)
    try:
        if mode == "monitor":
            return await _soak_monitor(plan, seconds)
        if mode == "naive":
            return await _soak_naive(plan, seconds)
        return await _soak_with_httpx(plan, seconds)
    finally:
        transport.close()


if __name__ == "__main__":
    mode, mix, seconds, port, db = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
    print(json.dumps(asyncio.run(_main(mode, mix, seconds, port, db))), flush=True)
