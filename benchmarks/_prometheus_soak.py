"""One metrics soak in its own process, for bench_prometheus.py: the monitor's prometheus probes and one analysis
(or, `idle`, the same process with the same imports and nothing running), and nothing measuring it.

Usage: python benchmarks/_prometheus_soak.py monitor|idle URL SECONDS
Prints ECHO PORT, READY when the soak starts (after 1.5 s of first polls), DONE the moment it ends, then one JSON
line (probe states, sampling drift, the analysis's samples). CPU is read by the parent from /proc/PID/stat; the only
other thing in this process is a UDP echo the parent pings 10 times a second to see how late the event loop answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from _health_soak import _Echo, _pct, _soak_window

from rollback_tui.health.analysis import run_analysis
from rollback_tui.health.monitor import Monitor
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

#: 20 different instant queries over Prometheus's own series (it scrapes itself every second).
QUERIES = ["up", "sum(up)", "max(up)", "count(up)", "scalar(up)", "sum(prometheus_build_info)",
           "sum(rate(prometheus_http_requests_total[1m]))", "sum(process_resident_memory_bytes)",
           "max(process_cpu_seconds_total)", "sum(prometheus_tsdb_head_series)"]


def plan_for(url: str, seconds: float) -> Plan:
    probes = [{"id": f"prom-{i}", "kind": "prometheus", "url": url, "query": QUERIES[i % len(QUERIES)],
               "condition": ">= 0", "interval": 1, "timeout": 3} for i in range(20)]
    analysis = {"kind": "analysis", "id": "soak", "url": url, "query": "sum(up)", "condition": ">= 1",
                "interval": 1, "count": int(seconds) + 5, "timeout": 3}
    return Plan.model_validate({"metadata": {"name": "bench"}, "rollback": {"scope": ["code"]},
                                "steps": [{"id": "validate", "verify": [analysis]}], "health": probes})


async def _soak(url: str, seconds: float) -> dict[str, Any]:
    plan = plan_for(url, seconds)
    events: list[Any] = []
    secrets = SecretStore({})
    monitor = Monitor(plan, secrets, events.append, sample_every=10.0)
    await monitor.start()
    running = asyncio.create_task(run_analysis(plan.steps[0].verify[0], secrets))  # type: ignore[arg-type]
    await _soak_window(seconds)
    snapshot = monitor.snapshot()
    await monitor.stop()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    drifts = [d * 1000.0 for values in monitor.drift.values() for d in values]
    return {"healthy": sum(entry["state"] == "healthy" for entry in snapshot.values()), "probes": len(snapshot),
            "samples": len(drifts), "drift_p99": _pct(drifts, 0.99), "events": len(events)}


async def _main(mode: str, url: str, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    print("ECHO", transport.get_extra_info("sockname")[1], flush=True)
    try:
        if mode == "monitor":
            return await _soak(url, seconds)
        plan_for(url, seconds)  # the same models built, nothing started
        await _soak_window(seconds)
        return {}
    finally:
        transport.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_main(sys.argv[1], sys.argv[2], float(sys.argv[3])))), flush=True)
