"""Metrics soak: 20 prometheus probes at 1 s and one running analysis against a real Prometheus: CPU of the monitor.

Usage: python benchmarks/bench_prometheus.py [--quick]
Prometheus (the `prometheus` binary on PATH; skipped without it) runs in its own process group on a loopback
port, scraping itself every second, so only this process's CPU (time.process_time) is counted: the monitor's
20 probes (each an instant query of a different expression) and one analysis sampling every second. The
measuring loop itself (a 10 ms sleep, as in bench_health) costs CPU too: it runs alone first, and the
monitor's share is the soak's CPU minus that idle baseline (both are shown).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_health import _Windows, _row, _stats  # noqa: E402

from rollback_tui.health.analysis import run_analysis  # noqa: E402
from rollback_tui.health.monitor import Monitor  # noqa: E402
from rollback_tui.plan.models import Plan  # noqa: E402
from rollback_tui.secrets import SecretStore  # noqa: E402

_QUERIES = ["up", "sum(up)", "max(up)", "count(up)", "scalar(up)", "sum(prometheus_build_info)",
            "sum(rate(prometheus_http_requests_total[1m]))", "sum(process_resident_memory_bytes)",
            "max(process_cpu_seconds_total)", "sum(prometheus_tsdb_head_series)"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(binary: str, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    (root / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    process = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}",
                                f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=1) as answer:  # noqa: S310
                if b'"value"' in answer.read():
                    return process, url
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("prometheus did not start within 30 s")


async def _soak(url: str, seconds: float) -> dict[str, Any]:
    probes = [{"id": f"prom-{i}", "kind": "prometheus", "url": url, "query": _QUERIES[i % len(_QUERIES)],
               "condition": ">= 0", "interval": 1, "timeout": 3} for i in range(20)]
    analysis = {"kind": "analysis", "id": "soak", "url": url, "query": "sum(up)", "condition": ">= 1",
                "interval": 1, "count": int(seconds) + 5, "timeout": 3}
    plan = Plan.model_validate({"metadata": {"name": "bench"}, "rollback": {"scope": ["code"]},
                                "steps": [{"id": "validate", "verify": [analysis]}], "health": probes})
    events: list[Any] = []
    secrets = SecretStore({})
    monitor = Monitor(plan, secrets, events.append, sample_every=10.0)
    windows = _Windows()
    await monitor.start()
    running = asyncio.create_task(run_analysis(plan.steps[0].verify[0], secrets))  # type: ignore[arg-type]
    await asyncio.sleep(1.5)  # first polls (imports, connections) happen outside the measured windows
    await windows.run(seconds)
    snapshot = monitor.snapshot()
    await monitor.stop()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    healthy = sum(entry["state"] == "healthy" for entry in snapshot.values())
    return {"cpu": windows.cpu, "overall": windows.overall, "lag": windows.lag_p99, "healthy": healthy}


def main(quick: bool = False) -> list[dict]:
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus not on PATH (apt-get install prometheus): metrics soak skipped")
        return []
    seconds = 10.0 if quick else 30.0
    root = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    process, url = _start(binary, root)
    try:
        idle = _Windows()
        asyncio.run(idle.run(seconds))
        result = asyncio.run(_soak(url, seconds))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    cpu = _stats(result["cpu"])
    share = result["overall"] - idle.overall
    print(f"20 prometheus probes at 1 s + 1 analysis, {seconds:g} s: CPU {result['overall']:.2f} % overall, "
          f"{cpu[0]:.2f} % ({cpu[1]:.2f}-{cpu[2]:.2f}) per 1 s window; measuring loop alone {idle.overall:.2f} %; "
          f"monitor's share {share:.2f} %; {result['healthy']}/20 healthy, "
          f"loop lag p99 {statistics.median(result['lag']):.1f} ms")
    return [_row("metrics: 20 prometheus probes + 1 analysis, monitor's CPU (soak minus idle loop)",
                 (share, share, share), "% of one core", "< 2 %", share < 2.0 and result["healthy"] == 20),
            _row("metrics: the same soak's CPU, measuring loop included", cpu, "% of one core", "", None),
            _row("metrics: loop lag p99", _stats(result["lag"]), "ms", "", None)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s soak instead of 30 s")
    main(quick=parser.parse_args().quick)
