"""The demo's metrics: Prometheus in the sandbox scraping checkout-service's /metrics, and steady traffic to scrape.

Decided once, when the sandbox is built (`choose`): with a `prometheus` binary on PATH and the prometheus_client
library installed, the sandbox's plan keeps its prometheus probe and step 7's analysis and the services process
starts Prometheus; without either, the plan has neither and the demo says why in one line. Prometheus starts
early and in the background (nothing waits for it): the analysis waits for the first scrape within its own budget.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from rollback_tui.demo.layout import Layout

#: The lines of the shipped plan between these markers are the metrics parts (kept or cut by `plan_text`).
BEGIN, END = "# metrics: begin", "# metrics: end"
#: Requests per second the demo's "users" send to /quote while Prometheus watches (the error ratio's denominator).
TRAFFIC_PER_SECOND = 5
SCRAPE_INTERVAL = "1s"


def choose() -> tuple[bool, str]:
    """(run Prometheus?, one line for the operator)."""
    binary = shutil.which("prometheus")
    if binary is None:
        return False, ("metrics check skipped: no `prometheus` on PATH (apt-get install prometheus; "
                       "or a release from prometheus.io)")
    if importlib.util.find_spec("prometheus_client") is None:
        return False, ("metrics check skipped: the service's /metrics needs prometheus_client "
                       "(pip install 'rollback-tui[metrics]')")
    return True, f"metrics: Prometheus ({binary}) scrapes checkout-service /metrics every {SCRAPE_INTERVAL}"


def record_choice(layout: Layout, enabled: bool, note: str) -> None:
    layout.metrics_choice.write_text(json.dumps({"enabled": enabled, "note": note}) + "\n")


def read_choice(layout: Layout) -> tuple[bool, str]:
    try:
        data = json.loads(layout.metrics_choice.read_text()[:4096])
        return bool(data.get("enabled")), str(data.get("note", ""))
    except (OSError, ValueError, AttributeError):
        return False, "metrics check skipped: this sandbox was built without it"


def plan_text(text: str, enabled: bool, note: str) -> str:
    """The shipped plan with its metrics parts kept (markers and all) or cut, a comment saying why in their place."""
    if enabled:
        return text
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + f"# {note}\n")
        elif stripped == END:
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def free_port(preferred: int) -> int:
    """`preferred` when it is free on loopback, else any free port (handed to Prometheus, which binds it)."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free loopback port")


def write_config(layout: Layout, web_port: int) -> Path:
    layout.prometheus.mkdir(exist_ok=True)
    config = layout.prometheus / "prometheus.yml"
    config.write_text(
        f"# written by the demo's services at each start (the web port may change on resume)\n"
        f"global: {{scrape_interval: {SCRAPE_INTERVAL}, scrape_timeout: 900ms, evaluation_interval: 1s}}\n"
        "scrape_configs:\n"
        "  - job_name: checkout-service\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{web_port}']}}]\n")
    return config


def start_prometheus(layout: Layout, web_port: int, preferred: int,
                     preexec_fn: Callable[[], None] | None) -> tuple[subprocess.Popen[bytes], int] | None:
    """Start Prometheus on a free loopback port, its data in the sandbox; returns at once (None: no binary)."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    config = write_config(layout, web_port)
    port = free_port(preferred)
    with open(layout.prometheus_log, "ab") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={layout.prometheus / 'data'}",
             "--storage.tsdb.retention.time=1d", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(layout.prometheus), preexec_fn=preexec_fn)
    return process, port


def stop_prometheus(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Traffic(threading.Thread):
    """The service's users: GET /quote at a fixed rate, so the error ratio always has requests to count."""

    def __init__(self, port: int, per_second: int = TRAFFIC_PER_SECOND) -> None:
        super().__init__(daemon=True, name="traffic")
        self.port = port
        self.period = 1.0 / per_second
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
            try:
                connection.request("GET", "/quote")
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                pass  # a restart queues requests; a refused one is just a lost user
            finally:
                connection.close()

    def stop(self) -> None:
        self.stopped.set()
