"""The monitor against real loopback servers: state transitions, thresholds, flapping, alerts, samples, stop."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rollback_tui.record.events import HealthAlert, HealthSample
from rollback_tui.health.monitor import Monitor
from rollback_tui.secrets import SecretStore

from .conftest import HttpServer, TcpListener
from .util import Events, make_plan, wait_until

FAST = {"interval": 0.05, "timeout": 1.0}


async def test_outage_and_recovery_walk_through_every_state(http_server: HttpServer, events: Events,
                                                           secrets: SecretStore) -> None:
    http_server.set("/health", 200, json.dumps({"status": "ok"}))
    plan = make_plan([{"id": "api", "kind": "http", "url": http_server.url("/health"), "json_field": "status",
                       "json_equals": "ok", "degraded_after": 2, "down_after": 4, "healthy_after": 3,
                       "trigger": True, **FAST}])
    monitor = Monitor(plan, secrets, events, sample_every=60)
    assert monitor.snapshot()["api"]["state"] == "unknown"
    async with monitor:
        first = await events.wait_state("api", "healthy")
        assert (first.old, first.new) == ("unknown", "healthy") and first.reason.startswith("status 200")
        http_server.set("/health", 503, json.dumps({"status": "failing"}))
        degraded = await events.wait_state("api", "degraded")
        down = await events.wait_state("api", "down")
        assert degraded.reason == down.reason == "status 503 (expected 200)"
        alert = await events.wait_for(lambda: events.of(HealthAlert, "api"))
        assert alert[0].reason == "rollback trigger api is down: status 503 (expected 200)"
        snapshot = monitor.snapshot()["api"]
        assert snapshot["state"] == "down" and snapshot["reason"] == "status 503 (expected 200)"
        hits_when_down = http_server.hits["/health"]
        http_server.set("/health", 200, json.dumps({"status": "ok"}))
        await events.wait_state("api", "healthy")
    # degraded after 2 failures and down after 4 mean at least 4 failing polls; 3 passes to recover
    assert hits_when_down >= 1 + 4
    assert events.changes("api") == [("unknown", "healthy"), ("healthy", "degraded"), ("degraded", "down"),
                                     ("down", "healthy")]
    assert len(events.of(HealthAlert)) == 1


async def test_a_server_that_flaps_every_other_request_stays_healthy_under_hysteresis(
        http_server: HttpServer, events: Events, secrets: SecretStore) -> None:
    counter = {"n": 0}

    def flapping(method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
        counter["n"] += 1
        return (200 if counter["n"] % 2 else 500), b"{}", 0.0

    http_server.routes["/flap"] = flapping
    plan = make_plan([
        {"id": "tolerant", "kind": "http", "url": http_server.url("/flap"), "degraded_after": 2, **FAST},
    ])
    async with Monitor(plan, secrets, events, sample_every=60):
        await wait_until(lambda: counter["n"] >= 12)
    # one failure at a time never reaches degraded_after=2
    assert events.changes("tolerant") == [("unknown", "healthy")]


async def test_a_flapping_server_with_strict_thresholds_reports_each_flap(http_server: HttpServer, events: Events,
                                                                          secrets: SecretStore) -> None:
    counter = {"n": 0}

    def flapping(method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
        counter["n"] += 1
        return (200 if (counter["n"] // 2) % 2 == 0 else 500), b"{}", 0.0  # ok, ok, fail, fail, ok, ok, ...

    http_server.routes["/flap"] = flapping
    plan = make_plan([{"id": "strict", "kind": "http", "url": http_server.url("/flap"), "degraded_after": 1,
                       "down_after": 2, **FAST}])
    async with Monitor(plan, secrets, events, sample_every=60):
        await events.wait_for(lambda: len(events.changes("strict")) >= 7)
    changes = events.changes("strict")[:7]
    assert changes == [("unknown", "healthy"), ("healthy", "degraded"), ("degraded", "down"), ("down", "healthy"),
                       ("healthy", "degraded"), ("degraded", "down"), ("down", "healthy")]


async def test_slow_answers_degrade_and_timeouts_fail(http_server: HttpServer, events: Events,
                                                      secrets: SecretStore) -> None:
    http_server.set("/slow", 200, "{}", delay=0.12)
    plan = make_plan([{"id": "slow", "kind": "http", "url": http_server.url("/slow"), "max_latency": "50ms",
                       "interval": 0.05, "timeout": 1.0}])
    async with Monitor(plan, secrets, events, sample_every=60):
        change = await events.wait_state("slow", "degraded")
        assert change.old == "unknown" and change.reason.endswith("ms > 50 ms") and change.latency_ms >= 50
        http_server.set("/slow", 200, "{}", delay=1.0)
    plan = make_plan([{"id": "hang", "kind": "http", "url": http_server.url("/slow"), "interval": 0.05,
                       "timeout": 0.2, "down_after": 2}])
    async with Monitor(plan, secrets, events, sample_every=60):
        down = await events.wait_state("hang", "down")
    assert down.reason == "timed out after 0.2s" and down.latency_ms is None


async def test_every_kind_of_failure_is_a_state_never_an_exception(tmp_path: Path, closed_port: int,
                                                                   tls_server: HttpServer, events: Events,
                                                                   secrets: SecretStore) -> None:
    tls_server.set("/health", 200, "{}")
    (tmp_path / "text.db").write_text("not a database")
    probes: list[dict[str, Any]] = [
        {"id": "refused", "kind": "http", "url": f"http://127.0.0.1:{closed_port}/"},
        {"id": "dns", "kind": "http", "url": "http://nowhere.invalid/"},
        {"id": "tls", "kind": "http", "url": tls_server.url("/health")},
        {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": closed_port},
        {"id": "cmd", "kind": "command", "argv": ["/nonexistent/check"]},
        {"id": "sql", "kind": "sql", "url": f"sqlite:///{tmp_path / 'text.db'}",
         "query": "select count(*) from sqlite_master"},
        {"id": "ssh", "kind": "ssh", "group": "missing", "command": "true"},
    ]
    plan = make_plan([{**probe, "down_after": 1, **FAST} for probe in probes])
    async with Monitor(plan, secrets, events, sample_every=60) as monitor:
        await events.wait_for(lambda: all(monitor.state(p["id"]) == "down" for p in probes))
        snapshot = monitor.snapshot()
    reasons = {probe_id: entry["reason"] for probe_id, entry in snapshot.items()}
    assert reasons["refused"] == reasons["tcp"] == "connection refused"
    assert reasons["dns"].startswith("DNS lookup failed for nowhere.invalid")
    assert reasons["tls"].startswith("TLS certificate not valid")
    assert reasons["cmd"] == "command not found: /nonexistent/check"
    assert reasons["sql"] == "query failed: file is not a database"
    assert reasons["ssh"] == "host group 'missing' is not declared under host_groups:"


async def test_samples_are_batched_per_period_with_offsets_before_the_event(
        http_server: HttpServer, tcp_listener: TcpListener, events: Events, secrets: SecretStore) -> None:
    http_server.set("/health", 200, "{}")
    plan = make_plan([{"id": "api", "kind": "http", "url": http_server.url("/health"), **FAST},
                      {"id": "port", "kind": "tcp", "host": "127.0.0.1", "port": tcp_listener.port, **FAST}])
    async with Monitor(plan, secrets, events, sample_every=0.3) as monitor:
        await events.wait_for(lambda: len(events.of(HealthSample)) >= 2)
    batches = events.of(HealthSample)
    polls = sum(len(rows) for batch in batches for rows in batch.samples.values())
    # far fewer events than polls: the samples are batched
    assert polls >= 2 * len(batches) and polls > len(batches)
    for batch in batches:
        for probe_id, rows in batch.samples.items():
            assert probe_id in ("api", "port")
            offsets = [row[0] for row in rows]
            assert offsets == sorted(offsets) and all(offset <= 0 for offset in offsets)
            assert all(row[1] == "healthy" and isinstance(row[2], float) for row in rows)
    # every poll is in exactly one batch: the last one is flushed by stop()
    assert polls == sum(status.samples for status in monitor._status.values())


async def test_stop_cancels_every_task_and_closes_the_clients(http_server: HttpServer, tmp_path: Path,
                                                              events: Events, secrets: SecretStore) -> None:
    http_server.set("/health", 200, "{}")
    plan = make_plan([
        {"id": "api", "kind": "http", "url": http_server.url("/health"), **FAST},
        {"id": "cmd", "kind": "command", "argv": [sys.executable, "-c", "import time; time.sleep(30)"],
         "interval": 0.05, "timeout": 60},
    ])
    monitor = Monitor(plan, secrets, events, sample_every=60)
    await monitor.start()
    await events.wait_state("api", "healthy")
    pool = monitor._clients
    assert pool is not None
    kept = [conn.writer for conns in pool._idle.values() for conn in conns]
    await monitor.stop()
    assert not monitor.running and kept and all(writer.is_closing() for writer in kept)
    assert not [task for task in asyncio.all_tasks() if task.get_name().startswith("health:")]
    # the last samples were flushed on stop, and stopping twice is harmless
    assert events.of(HealthSample)
    await monitor.stop()


async def test_a_failing_listener_does_not_stop_monitoring(http_server: HttpServer, secrets: SecretStore) -> None:
    http_server.set("/health", 200, "{}")
    seen: list[Any] = []

    def broken(event: Any) -> None:
        seen.append(event)
        raise RuntimeError("listener bug")

    plan = make_plan([{"id": "api", "kind": "http", "url": http_server.url("/health"), **FAST}])
    async with Monitor(plan, secrets, broken, sample_every=60):
        await wait_until(lambda: seen)
        http_server.set("/health", 500, "{}")
        await wait_until(lambda: any(getattr(e, "new", "") == "degraded" for e in seen))


async def test_probes_without_id_get_one_and_an_empty_plan_is_fine(events: Events, secrets: SecretStore,
                                                                   tcp_listener: TcpListener) -> None:
    async with Monitor(make_plan([]), secrets, events) as monitor:
        assert monitor.snapshot() == {}
    plan = make_plan([{"kind": "tcp", "host": "127.0.0.1", "port": tcp_listener.port, **FAST}])
    async with Monitor(plan, secrets, events, sample_every=60) as monitor:
        await events.wait_state("probe-1", "healthy")
    assert events.items and all(event.seq == 0 for event in events.items)


async def test_a_hanging_probe_does_not_hold_up_the_others(http_server: HttpServer, events: Events,
                                                           secrets: SecretStore) -> None:
    http_server.set("/hang", 200, "{}", delay=5.0)
    http_server.set("/fast", 200, "{}")
    plan = make_plan([{"id": "hang", "kind": "http", "url": http_server.url("/hang"), "interval": 0.05, "timeout": 10},
                      {"id": "fast", "kind": "http", "url": http_server.url("/fast"), **FAST}])
    async with Monitor(plan, secrets, events, sample_every=60) as monitor:
        await wait_until(lambda: http_server.hits.get("/fast", 0) >= 10)
        assert monitor.state("fast") == "healthy" and monitor.state("hang") == "unknown"
        # the hanging probe is not re-polled on every missed tick: one request is in flight
        assert http_server.hits["/hang"] == 1
