"""The demo's metrics for real: checkout-service's /metrics, Prometheus in the sandbox scraping it, step 7's analysis
passing once the service is rolled back and failing when errors are driven again, and the demo without Prometheus."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.demo import metrics
from rollback_tui.demo.build import BAD_CONFIG, GOOD_CONFIG, SHIPPED_PLAN
from rollback_tui.demo.sandbox import Sandbox, build_sandbox
from rollback_tui.health.checks import run_step_check
from rollback_tui.plan.loader import load_plan
from rollback_tui.plan.promql import AnalysisCheck
from rollback_tui.secrets import SecretStore
from tests.demo.conftest import ANY_PORTS
from tests.health.prom_server import prometheus_binary


@pytest.fixture
def with_prometheus() -> None:
    prometheus_binary()  # a skip (a failure in CI) without it


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback)
        return answer.read().decode()


def _query(port: str, query: str) -> list[Any]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        return json.loads(_text(url))["data"]["result"]
    except OSError:
        return []


def _wait_for(port: str, query: str, predicate: Any, timeout: float = 40.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = _query(port, query)
        if predicate(result):
            return result
        assert time.monotonic() < deadline, f"{query}: {result!r} after {timeout} s"
        time.sleep(0.25)


def _analysis(sandbox: Sandbox) -> tuple[Any, AnalysisCheck]:
    plan = load_plan(sandbox.plan_path, sandbox.variables).plan
    validate = next(step for step in plan.steps if step.id.value == "validate")
    found = [check for check in validate.verify if isinstance(check, AnalysisCheck)]
    assert len(found) == 1
    return plan, found[0]


def _judge(plan: Any, check: AnalysisCheck) -> Any:
    return asyncio.run(run_step_check(check, plan=plan, secrets=SecretStore({}), monitor=None))


def _roll_back_by_hand(sandbox: Sandbox) -> None:
    """What steps 2-4 do, done directly: flag off, v1.4.2 checked out and restarted, the good config."""
    layout = sandbox.layout
    flags = json.loads(layout.flags.read_text())
    flags["flags"]["new-checkout"].update(defaultVariant="off")
    flags["flags"]["new-checkout"].pop("targeting", None)
    layout.flags.write_text(json.dumps(flags))
    subprocess.run(["git", "-C", str(layout.deploy), "checkout", "-q", "v1.4.2"], check=True)
    subprocess.run([sys.executable, "-m", "rollback_tui.demo.ctl", "--sandbox", str(layout.root), "restart"],
                   check=True, capture_output=True)
    layout.config.write_text(GOOD_CONFIG)


def test_the_service_serves_its_metrics_and_prometheus_scrapes_them(with_prometheus: None, tmp_path: Path) -> None:
    sandbox = build_sandbox(tmp_path / "sandbox", operator="demo-operator")
    with sandbox.start(ports=ANY_PORTS):
        web, prom = sandbox.variables["web_port"], sandbox.variables["prom_port"]
        assert sandbox.ready["prom_port"] == int(prom)
        body = _text(f"http://127.0.0.1:{web}/metrics")
        for line in ('checkout_http_requests_total{code="200",path="/health"}',
                     'checkout_http_request_errors_total{path="/quote"}',
                     'checkout_http_request_duration_seconds_bucket{le="0.005",path="/quote"}'):
            assert line in body
        # the bad release answers every /quote with a 500, and the traffic keeps asking
        _wait_for(prom, 'up{job="checkout-service"}', lambda r: r and r[0]["value"][1] == "1")
        errors = _wait_for(prom, 'sum(checkout_http_request_errors_total{path="/quote"})',
                           lambda r: r and float(r[0]["value"][1]) >= 5)
        assert float(errors[0]["value"][1]) >= 5
        assert (sandbox.layout.prometheus / "data").is_dir()  # its data lives in the sandbox
        assert "127.0.0.1:" + web in (sandbox.layout.prometheus / "prometheus.yml").read_text()


def test_the_analysis_fails_on_the_bad_release_passes_after_the_rollback_and_fails_on_driven_errors(
        with_prometheus: None, tmp_path: Path) -> None:
    sandbox = build_sandbox(tmp_path / "sandbox", operator="demo-operator")
    with sandbox.start(ports=ANY_PORTS):
        plan, check = _analysis(sandbox)
        # at once, while Prometheus is still starting: the analysis waits for the first data, then fails it
        bad = _judge(plan, check)
        assert not bad.ok and bad.observed.startswith("failed: failure limit 1 reached at sample 1 of 3"), bad.observed
        assert "Z 1 (fail)" in bad.observed

        _roll_back_by_hand(sandbox)
        prom = sandbox.variables["prom_port"]
        _wait_for(prom, check.query, lambda r: r and float(r[0]["value"][1]) == 0.0)
        good = _judge(plan, check)
        assert good.ok and good.observed.startswith("passed (3 passed, 0 failed"), good.observed
        assert f"graph: http://127.0.0.1:{prom}/graph?g0.expr=" in good.observed

        sandbox.layout.config.write_text(BAD_CONFIG)  # engine v2 again: every /quote fails from now on
        _wait_for(prom, check.query, lambda r: r and float(r[0]["value"][1]) > 0.05)
        driven = _judge(plan, check)
        assert not driven.ok, driven.observed
        assert driven.observed.startswith(("failed: failure limit 1", "inconclusive")), driven.observed


def test_prometheus_ends_with_the_sandbox_and_with_its_services(with_prometheus: None, tmp_path: Path) -> None:
    sandbox = build_sandbox(tmp_path / "sandbox", operator="demo-operator")
    sandbox.start(ports=ANY_PORTS)
    pid = sandbox.ready["prometheus_pid"]
    assert _alive(pid)
    sandbox.stop()
    assert not _alive(pid)
    # the services killed outright (their parent, the demo, gone too): Prometheus gets SIGTERM from the kernel
    sandbox.start(ports=ANY_PORTS)
    pid, services = sandbox.ready["prometheus_pid"], sandbox.ready["pid"]
    os.kill(services, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    sandbox.stop()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_without_prometheus_the_plan_has_no_metrics_parts_and_says_why(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = metrics.shutil.which
    monkeypatch.setattr(metrics.shutil, "which", lambda name: None if name == "prometheus" else real(name))
    sandbox = build_sandbox(tmp_path / "sandbox", operator="demo-operator")
    text = sandbox.plan_path.read_text()
    assert "kind: prometheus" not in text and "kind: analysis" not in text and "127.0.0.1:${prom_port}" not in text
    assert text.count("# metrics check skipped: no `prometheus` on PATH (apt-get install prometheus;") == 2
    enabled, note = metrics.read_choice(sandbox.layout)
    assert not enabled and note.startswith("metrics check skipped: no `prometheus` on PATH")
    with sandbox.start(ports=ANY_PORTS):
        assert "prom_port" not in sandbox.ready and "prom_port" not in sandbox.variables
        plan = load_plan(sandbox.plan_path, sandbox.variables).plan
        assert [probe.id for probe in plan.health] == ["checkout-health", "checkout-release", "orders-intact"]
        validate = next(step for step in plan.steps if step.id.value == "validate")
        assert not any(isinstance(check, AnalysisCheck) for check in validate.verify)
    assert not sandbox.layout.prometheus.exists()


def test_the_shipped_plan_marks_exactly_the_metrics_parts() -> None:
    text = SHIPPED_PLAN.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines.count(metrics.BEGIN) == lines.count(metrics.END) == 2
    kept = metrics.plan_text(text, True, "unused")
    assert kept == text
    cut = metrics.plan_text(text, False, "metrics check skipped: test")
    assert "checkout-5xx-ratio" not in cut and "kind: analysis" not in cut and "kind: prometheus" not in cut
    assert "kind: sql" in cut and "orders-kept" in cut  # what follows each block is still there


def test_without_prometheus_client_the_service_runs_and_metrics_say_why(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics.importlib.util, "find_spec", lambda name: None)
    assert metrics.choose()[1] == ("metrics check skipped: the service's /metrics needs prometheus_client "
                                   "(pip install 'rollback-tui[metrics]')")
