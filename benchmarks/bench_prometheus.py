"""Metrics soak: 20 prometheus probes at 1 s and one running analysis against a real Prometheus: CPU of the monitor.

Usage: python benchmarks/bench_prometheus.py [--quick]
Prometheus (the `prometheus` binary on PATH; skipped without it) runs in its own process group on a loopback
port, scraping itself every second. The monitor runs in a process of its own (benchmarks/_prometheus_soak.py):
20 probes, each an instant query of a different expression every second, and one analysis sampling every
second; this process reads its CPU from /proc/PID/stat (the whole process: interpreter, event loop, threads) per
1 s window and overall, and pings a UDP echo in its loop for the lag, as bench_health does. The same process
with the same imports and nothing running is measured first, for comparison (nothing is subtracted).
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_health import _row, _stats, measure  # noqa: E402

HERE = Path(__file__).resolve().parent


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


def main(quick: bool = False) -> list[dict]:
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus not on PATH (apt-get install prometheus): metrics soak skipped")
        return []
    seconds = 10.0 if quick else 30.0
    root = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    process, url = _start(binary, root)
    try:
        idle = measure([str(HERE / "_prometheus_soak.py"), "idle", url, str(seconds)], seconds, "idle")
        soak = measure([str(HERE / "_prometheus_soak.py"), "monitor", url, str(seconds)], seconds, "monitor")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    cpu = _stats(soak["cpu"])
    ok = soak["overall"] < 2.0 and soak["healthy"] == soak["probes"] == 20
    print(f"20 prometheus probes at 1 s + 1 analysis, {seconds:g} s, CPU of the monitor's process read from "
          f"/proc: {soak['overall']:.2f} % of one core overall, {cpu[0]:.2f} % ({cpu[1]:.2f}-{cpu[2]:.2f}) per 1 s "
          f"window; the same process idle {idle['overall']:.2f} %; {soak['healthy']}/{soak['probes']} healthy, "
          f"{soak['samples']} samples, drift p99 {soak['drift_p99']:.1f} ms, loop lag p99 "
          f"{statistics.median(soak['lag']):.1f} ms")
    return [_row("metrics: 20 prometheus probes + 1 analysis, the monitor process's CPU (from /proc)",
                 (soak["overall"], cpu[1], cpu[2]), "% of one core", "< 2 %", ok),
            _row("metrics: the same process idle (same imports, nothing running)", _stats(idle["cpu"]),
                 "% of one core", "", None),
            _row("metrics: loop lag p99", _stats(soak["lag"]), "ms", "", None)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s soak instead of 30 s")
    main(quick=parser.parse_args().quick)
