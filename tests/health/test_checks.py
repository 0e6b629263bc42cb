"""Step checks: step 7's health (probe refs), functionality (HTTP smoke) and data (SQL) checks as evidence lines."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from rollback_tui.health.checks import run_step_check
from rollback_tui.health.monitor import Monitor
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import MASK, SecretStore

from .conftest import HttpServer
from .util import Events, make_plan


def validate_plan(health: list[dict[str, Any]], verify: list[dict[str, Any]], **extra: Any) -> Plan:
    return make_plan(health, steps=[{"id": "validate", "verify": verify}], **extra)


async def test_step_seven_health_functionality_and_data(http_server: HttpServer, tmp_path: Path,
                                                        events: Events, secrets: SecretStore) -> None:
    http_server.set("/health", 200, json.dumps({"status": "ok"}))
    http_server.set("/version", 200, json.dumps({"version": "1.4.2"}))
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("create table users(id integer); insert into users values (1), (2);")
    plan = validate_plan(
        [{"id": "api", "kind": "http", "url": http_server.url("/health"), "interval": 0.05}],
        [
            {"kind": "probe", "probe": "api"},
            {"kind": "http", "url": http_server.url("/version"), "category": "functionality",
             "json_field": "version", "json_equals": "1.4.2"},
            {"kind": "sql", "id": "users kept", "category": "data", "url": f"sqlite:///{db}",
             "query": "select count(*) from users", "expect": 2},
        ])
    async with Monitor(plan, secrets, events, sample_every=60) as monitor:
        await events.wait_state("api", "healthy")
        results = [await run_step_check(check, plan=plan, secrets=secrets, monitor=monitor)
                   for check in plan.steps[0].verify]
    health, smoke, data = results
    assert (health.check, health.expected, health.category, health.ok) == ("probe api", "healthy", "health", True)
    assert health.observed.startswith("healthy: status 200")
    assert smoke.check == f"GET {http_server.url('/version')}" and smoke.category == "functionality" and smoke.ok
    assert smoke.expected == "status 200, version = '1.4.2', within 3s timeout"
    assert smoke.observed.startswith("status 200 in ")
    assert (data.check, data.category, data.ok) == ("users kept", "data", True)
    assert data.expected == "first value = 2, within 3s timeout" and data.observed.startswith("value 2 in ")


async def test_failing_checks_say_why(http_server: HttpServer, tmp_path: Path, secrets: SecretStore) -> None:
    http_server.set("/version", 200, json.dumps({"version": "1.5.0"}))
    http_server.set("/slow", 200, "{}", delay=0.1)
    plan = validate_plan([], [
        {"kind": "http", "url": http_server.url("/version"), "json_field": "version", "json_equals": "1.4.2"},
        {"kind": "http", "url": http_server.url("/slow"), "max_latency": "20ms"},
        {"kind": "probe", "probe": "nope"},
    ])
    wrong, slow, missing = [await run_step_check(check, plan=plan, secrets=secrets, monitor=None)
                            for check in plan.steps[0].verify]
    assert not wrong.ok and wrong.observed == 'failed: version is "1.5.0" (expected "1.4.2")'
    assert not slow.ok and slow.observed.startswith("degraded: latency ") and slow.expected.endswith(
        "within 20 ms, within 3s timeout")
    assert not missing.ok and missing.observed == "no probe named 'nope' under health:"


async def test_probe_ref_reads_the_monitor_state(http_server: HttpServer, events: Events,
                                                 secrets: SecretStore) -> None:
    http_server.set("/health", 200, "{}", delay=0.08)
    plan = validate_plan(
        [{"id": "api", "kind": "http", "url": http_server.url("/health"), "max_latency": "20ms",
          "interval": 0.05}],
        [{"kind": "probe", "probe": "api"}, {"kind": "probe", "probe": "api", "expect": "not_down"}])
    healthy_only, not_down = plan.steps[0].verify
    async with Monitor(plan, secrets, events, sample_every=60) as monitor:
        await events.wait_state("api", "degraded")
        strict = await run_step_check(healthy_only, plan=plan, secrets=secrets, monitor=monitor)
        lenient = await run_step_check(not_down, plan=plan, secrets=secrets, monitor=monitor)
    assert not strict.ok and strict.observed.startswith("degraded: latency")
    assert lenient.ok and lenient.expected == "not down (healthy or degraded)"


async def test_probe_ref_without_a_monitor_or_before_the_first_result_samples_now(
        http_server: HttpServer, events: Events, secrets: SecretStore) -> None:
    http_server.set("/health", 503, "{}")
    plan = validate_plan([{"id": "api", "kind": "http", "url": http_server.url("/health"), "interval": 3600}],
                         [{"kind": "probe", "probe": "api"}])
    check = plan.steps[0].verify[0]
    alone = await run_step_check(check, plan=plan, secrets=secrets, monitor=None)
    assert not alone.ok and alone.observed == "down (sampled now): status 503 (expected 200)"
    # a monitor that has not polled yet (first poll due later) is asked to sample now
    monitor = Monitor(plan, secrets, events, sample_every=60)
    result = await run_step_check(check, plan=plan, secrets=secrets, monitor=monitor)
    # one failure meets degraded_after (1) but not down_after (3)
    assert not result.ok and result.observed == "degraded: status 503 (expected 200) (sampled now)"
    assert monitor.has_result("api")


async def test_probe_ref_evidence_is_sampled_at_the_decision_not_one_interval_old(
        http_server: HttpServer, events: Events, secrets: SecretStore) -> None:
    http_server.set("/health", 503, "{}")
    plan = validate_plan([{"id": "api", "kind": "http", "url": http_server.url("/health"), "interval": 3600,
                           "down_after": 1}], [{"kind": "probe", "probe": "api"}])
    check = plan.steps[0].verify[0]
    async with Monitor(plan, secrets, events, sample_every=60) as monitor:
        await events.wait_state("api", "down")
        http_server.set("/health", 200, "{}")  # the step fixed it; the next scheduled poll is an hour away
        result = await run_step_check(check, plan=plan, secrets=secrets, monitor=monitor)
    assert result.ok and result.observed.startswith("healthy: ") and result.observed.endswith("(sampled now)")


async def test_secrets_never_reach_the_evidence(http_server: HttpServer) -> None:
    http_server.set("/health", 200, "{}")
    plan = validate_plan([], [{"kind": "http", "url": "http://${secrets.HOST}.invalid/x"}],
                         secrets={"HOST": {"env": "SMOKE_HOST"}})
    store = SecretStore(plan.secrets, environ={"SMOKE_HOST": "canary-host-name"})
    result = await run_step_check(plan.steps[0].verify[0], plan=plan, secrets=store, monitor=None)
    assert not result.ok and "canary-host-name" not in result.observed
    assert result.observed.startswith(f"failed: DNS lookup failed for {MASK}.invalid")
    assert result.check == "GET http://${secrets.HOST}.invalid/x"
