"""Timed analyses against a real Prometheus: pass, fail early, inconclusive, no data, bad query, at the go/no-go."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from rollback_tui.engine.decisions import Decision
from rollback_tui.record.events import DecisionRequested
from rollback_tui.engine.session import Session
from rollback_tui.health.checks import run_step_check
from rollback_tui.plan.loader import load_plan
from rollback_tui.secrets import SecretStore

from .prom_server import Prometheus, prometheus  # noqa: F401 (the session fixture)
from .util import make_plan


def analysis(url: str, query: str = "demo_error_ratio", **extra: Any) -> dict[str, Any]:
    return {"kind": "analysis", "id": "error-ratio", "url": url, "query": query, "condition": "< 0.01",
            "interval": "300ms", "count": 4, "timeout": "2s", **extra}


async def run(spec: dict[str, Any]) -> Any:
    plan = make_plan([], steps=[{"id": "validate", "verify": [spec]}])
    return await run_step_check(plan.steps[0].verify[0], plan=plan, secrets=SecretStore({}), monitor=None)


def at(prometheus: Prometheus, value: float) -> None:
    prometheus.exporter.ratio.set(value)
    prometheus.wait_for("demo_error_ratio", lambda r: r and float(r[0]["value"][1]) == value)


async def test_a_passing_analysis_lists_every_sample_and_links_the_graph(prometheus: Prometheus) -> None:
    at(prometheus, 0.001)
    started = time.monotonic()
    result = await run(analysis(prometheus.url))
    assert 0.85 < time.monotonic() - started < 4.0  # 4 samples, 300 ms apart
    assert result.ok and result.check == "error-ratio", result
    assert result.observed.startswith("passed (4 passed, 0 failed, 0 inconclusive, 0 without a value of 4)")
    samples = result.observed.split("samples (UTC): ")[1].split("; graph: ")[0].split(", ")
    assert len(samples) == 4 and all(s.endswith("Z 0.001") for s in samples), samples
    assert result.observed.endswith(f"graph: {prometheus.url}/graph?g0.expr={quote('demo_error_ratio', safe='')}"
                                    "&g0.tab=0&g0.range_input=5m")
    assert result.expected == "demo_error_ratio < 0.01 in 4 samples every 0.3s, fails at 1 miss"


async def test_the_failure_limit_ends_the_wait_early(prometheus: Prometheus) -> None:
    at(prometheus, 0.5)
    try:
        started = time.monotonic()
        result = await run(analysis(prometheus.url, count=20, failure_limit=2))
        elapsed = time.monotonic() - started
    finally:
        at(prometheus, 0.001)
    assert not result.ok and elapsed < 2.0, (elapsed, result)
    assert result.observed.startswith("failed: failure limit 2 reached at sample 2 of 20 (0 passed, 2 failed")
    assert result.observed.count("0.5 (fail)") == 2


async def test_values_in_the_inconclusive_band_go_to_the_operator(prometheus: Prometheus) -> None:
    at(prometheus, 0.03)
    try:
        result = await run(analysis(prometheus.url, count=3, inconclusive={"between": [0.01, 0.05]}))
    finally:
        at(prometheus, 0.001)
    assert not result.ok
    assert result.observed.startswith("inconclusive (0 passed, 0 failed, 3 inconclusive, 0 without a value of 3)")
    assert "inconclusive between 0.01 and 0.05" in result.expected


@pytest.mark.parametrize("query,shown,problem", [
    ('demo_error_ratio{job="none"}', "no series", "no series (the query matched nothing)"),
    ("demo_odd", "NaN", "value is NaN"),
    ("demo_shard_load", "several series", "2 series ("),
])
async def test_samples_without_a_value_are_inconclusive_never_a_pass(prometheus: Prometheus, query: str,
                                                                     shown: str, problem: str) -> None:
    result = await run(analysis(prometheus.url, query, count=2, condition="!= 12345"))
    assert not result.ok and result.observed.startswith("inconclusive (0 passed, 0 failed, 0 inconclusive, 2 without")
    assert f"Z {shown} (error)" in result.observed and f"first problem: {problem}" in result.observed


async def test_a_rejected_query_fails_at_once_with_the_servers_message(prometheus: Prometheus) -> None:
    result = await run(analysis(prometheus.url, "rate(demo_requests_total[1m]", count=10))
    assert not result.ok and result.observed.startswith("failed: query rejected at sample 1 (")
    assert 'first problem: server said bad_data: invalid parameter "query": 1:' in result.observed


async def test_an_inconclusive_analysis_is_evidence_at_the_go_no_go(prometheus: Prometheus, tmp_path: Path
                                                                    ) -> None:
    at(prometheus, 0.03)
    plan = {"version": 1, "metadata": {"name": "analysis-gate"}, "rollback": {"scope": ["code"]},
            "steps": [{"id": "code", "actions": [{"id": "noop", "kind": "shell", "argv": ["true"]}]},
                      {"id": "validate", "verify": [analysis(prometheus.url, count=2,
                                                             inconclusive={"between": [0.01, 0.05]})]}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    seen: list[DecisionRequested] = []

    class Operator:
        async def decide(self, request: DecisionRequested) -> Decision:
            seen.append(request)
            if request.kind == "approval":
                return Decision("approve", by="Dana" if "devops" in request.subject else "Terry")
            if request.kind == "gate" and request.step == "validate":
                return Decision("override", "ratio 3 % is the known baseline of this service")
            return Decision("go" if "go" in request.options else "approve", "ok")

    try:
        session = Session.start(load_plan(path), decisions=Operator(), operator="olivia",
                                journal_path=tmp_path / "s.journal.jsonl", no_sign=True)
        result = await session.run()
    finally:
        at(prometheus, 0.001)
    gate = next(r for r in seen if r.kind == "gate" and r.step == "validate")
    assert "override" in gate.options and "go" not in gate.options
    [evidence] = gate.evidence.verifications
    assert evidence["check"] == "error-ratio" and not evidence["ok"]
    assert evidence["observed"].startswith("inconclusive (0 passed, 0 failed, 2 inconclusive")
    assert "0.03 (inconclusive)" in evidence["observed"] and "/graph?g0.expr=demo_error_ratio" in evidence["observed"]
    assert result.exit_state == "completed", result
    journal = (tmp_path / "s.journal.jsonl").read_text()
    assert "0.03 (inconclusive)" in journal and "g0.expr=demo_error_ratio" in journal


async def test_a_secret_that_cannot_be_read_is_a_sample_without_a_value_not_a_crash(prometheus: Prometheus
                                                                                    ) -> None:
    declared = {"tok": {"env": "PROM_BENCH_TOKEN_UNSET"}}
    plan = make_plan([], secrets=declared, steps=[{"id": "validate", "verify": [
        analysis(prometheus.url, count=2, bearer_token="${secrets.tok}")]}])
    store = SecretStore(plan.secrets, environ={})
    result = await run_step_check(plan.steps[0].verify[0], plan=plan, secrets=store, monitor=None)
    assert not result.ok and result.observed.startswith("inconclusive (0 passed, 0 failed, 0 inconclusive, 2 without")
    assert "PROM_BENCH_TOKEN_UNSET" in result.observed, result.observed


async def test_wait_for_data_does_not_count_the_answers_before_the_first_series(prometheus: Prometheus) -> None:
    """A series that appears only while the analysis waits: the answers before it are not samples."""
    import asyncio

    name = f"demo_late_{time.monotonic_ns()}"
    spec = analysis(prometheus.url, f"sum({name})", count=2, wait_for_data="20s", interval="200ms")
    running = asyncio.create_task(run(spec))
    await asyncio.sleep(1.0)  # the analysis is asking: no such series yet
    assert not running.done()
    from prometheus_client import Gauge

    gauge = Gauge(name, "appears late", registry=prometheus.exporter.registry)
    gauge.set(0.001)
    try:
        result = await asyncio.wait_for(running, 30)
    finally:
        prometheus.exporter.registry.unregister(gauge)
    assert result.ok, result.observed
    assert result.observed.startswith("passed (2 passed, 0 failed, 0 inconclusive, 0 without a value of 2)")
    assert "first data after " in result.observed
    assert "first waiting up to 20s for data" in result.expected


async def test_wait_for_data_runs_out_and_the_samples_then_count(prometheus: Prometheus) -> None:
    result = await run(analysis(prometheus.url, 'demo_error_ratio{job="never"}', count=2, wait_for_data="1s"))
    assert not result.ok and result.observed.startswith("inconclusive (0 passed, 0 failed, 0 inconclusive, 2 without")
    assert "no data within wait_for_data 1s (" in result.observed


async def test_wait_for_data_waits_for_a_server_still_starting() -> None:
    """Nothing listens yet: 'unreachable' is waited out too, then counted (here the budget runs out)."""
    from .prom_server import free_port

    started = time.monotonic()
    result = await run(analysis(f"http://127.0.0.1:{free_port()}", count=1, wait_for_data="2s"))
    assert time.monotonic() - started >= 1.9
    assert not result.ok and "no data within wait_for_data 2s (" in result.observed and "unreachable" in result.observed
