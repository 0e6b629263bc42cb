"""The prometheus probe against a real Prometheus 2.x scraping a real exporter on 127.0.0.1 every second."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.health.checks import run_step_check
from rollback_tui.health.monitor import Monitor
from rollback_tui.health.probes import sample
from rollback_tui.frontend.plan_commands import cmd_validate
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import MASK, SecretStore

from .prom_server import PASSWORD, TOKEN, USER, AuthProxy, Prometheus, auth_proxy, free_port, prometheus  # noqa: F401
from .util import Events, make_plan, wait_until


def probe(url: str, query: str, condition: Any = "< 0.01", **extra: Any) -> dict[str, Any]:
    return {"kind": "prometheus", "id": "errors", "url": url, "query": query, "condition": condition,
            "timeout": "2s", **extra}


def plan_of(*probes: dict[str, Any], **extra: Any) -> Plan:
    return make_plan(list(probes), **extra)


async def one(spec: dict[str, Any], store: SecretStore | None = None, **extra: Any) -> Any:
    plan = plan_of(spec, **extra)
    return await sample(plan.health[0], plan=plan, secrets=store or SecretStore({}))


async def test_healthy_then_unhealthy_as_the_exporter_changes(prometheus: Prometheus) -> None:
    prometheus.exporter.ratio.set(0.001)
    prometheus.wait_for("demo_error_ratio", lambda r: r and float(r[0]["value"][1]) == 0.001)
    outcome = await one(probe(prometheus.url, "demo_error_ratio"))
    assert outcome.ok and not outcome.unknown and outcome.value == 0.001, outcome
    assert outcome.reason == "value 0.001 (< 0.01)"
    prometheus.exporter.ratio.set(0.25)
    prometheus.wait_for("demo_error_ratio", lambda r: r and float(r[0]["value"][1]) == 0.25)
    outcome = await one(probe(prometheus.url, "demo_error_ratio"))
    assert not outcome.ok and not outcome.unknown and outcome.reason == "value 0.25 (expected < 0.01)"
    between = await one(probe(prometheus.url, "demo_error_ratio", {"between": [0.2, 0.3]}))
    assert between.ok and between.reason == "value 0.25 (between 0.2 and 0.3)"
    prometheus.exporter.ratio.set(0.001)  # the other tests expect the healthy value again
    prometheus.wait_for("demo_error_ratio", lambda r: r and float(r[0]["value"][1]) == 0.001)


@pytest.mark.parametrize("query,condition,ok", [("scalar(demo_shard_load{shard='b'})", "== 2", True),
                                                ("sum(demo_shard_load)", ">= 3", True),
                                                ("sum(demo_shard_load)", "!= 3", False),
                                                ("max(demo_shard_load)", "> 2", False),
                                                ("min(demo_shard_load)", "<= 1", True)])
async def test_conditions_on_scalars_and_vectors(prometheus: Prometheus, query: str, condition: str,
                                                 ok: bool) -> None:
    outcome = await one(probe(prometheus.url, query, condition))
    assert outcome.ok is ok and not outcome.unknown, outcome


async def test_no_series_several_series_nan_and_a_matrix_are_never_healthy(prometheus: Prometheus) -> None:
    none = await one(probe(prometheus.url, 'demo_error_ratio{job="nope"}'))
    assert not none.ok and none.unknown and none.reason.startswith("no series"), none
    several = await one(probe(prometheus.url, "demo_shard_load"))
    assert not several.ok and several.unknown, several
    assert several.reason.startswith("2 series (") and 'shard="a"' in several.reason and "sum()" in several.reason
    nan = await one(probe(prometheus.url, "demo_odd", "!= 5"))
    assert not nan.ok and nan.unknown and nan.reason.startswith("value is NaN"), nan
    inf = await one(probe(prometheus.url, "demo_error_ratio / 0", "> 0"))
    assert not inf.ok and inf.unknown and inf.reason.startswith("value is +Inf"), inf
    matrix = await one(probe(prometheus.url, "demo_error_ratio[1m]"))
    assert not matrix.ok and not matrix.unknown and matrix.reason.startswith("result type matrix"), matrix


async def test_a_syntax_error_fails_with_the_servers_message(prometheus: Prometheus) -> None:
    outcome = await one(probe(prometheus.url, "sum(rate(demo_requests_total[1m]) by (job)"))
    assert not outcome.ok and not outcome.unknown
    assert outcome.reason.startswith('server said bad_data: invalid parameter "query": 1:'), outcome.reason
    assert "parse error" in outcome.reason


async def test_unreachable_and_slow_servers_are_unknown_with_the_address() -> None:
    port = free_port()
    outcome = await one(probe(f"http://127.0.0.1:{port}", "up"))
    assert not outcome.ok and outcome.unknown
    assert outcome.reason == f"127.0.0.1:{port} unreachable: connection refused"


async def test_the_probe_timeout_bounds_a_server_that_never_answers() -> None:
    import socket

    with socket.socket() as silent:  # accepts (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        outcome = await one(probe(f"http://127.0.0.1:{port}", "up", timeout="0.5s"))
    assert time.monotonic() - started < 1.5
    assert outcome.unknown and outcome.reason == f"no answer from 127.0.0.1:{port} within 0.5s", outcome.reason


async def test_bearer_and_basic_auth_reach_the_server_and_stay_masked(auth_proxy: AuthProxy) -> None:
    declared = {"tok": {"env": "PROM_TOKEN"}, "pw": {"env": "PROM_PW"}}
    models = plan_of(secrets=declared).secrets
    store = SecretStore(models, environ={"PROM_TOKEN": TOKEN, "PROM_PW": PASSWORD})
    bearer = probe(auth_proxy.url, "demo_error_ratio", ">= 0", bearer_token="${secrets.tok}")
    outcome = await one(bearer, store, secrets=declared)
    assert outcome.ok, outcome
    assert auth_proxy.seen[-1] == f"Bearer {TOKEN}"
    basic = probe(auth_proxy.url, "demo_error_ratio", ">= 0", basic_auth={"username": USER, "password": "${secrets.pw}"})
    assert (await one(basic, store, secrets=declared)).ok
    assert auth_proxy.seen[-1].startswith("Basic ")
    # a wrong token: the gateway echoes what it got, and the reason shows it masked
    wrong = SecretStore(models, environ={"PROM_TOKEN": "canary-wrong-token-99", "PROM_PW": PASSWORD})
    refused = await one(bearer, wrong, secrets=declared)
    assert not refused.ok and not refused.unknown
    assert refused.reason.startswith("server said HTTP 401: unauthorized: got 'Bearer ") and MASK in refused.reason
    assert "canary-wrong-token-99" not in refused.reason


def test_inline_credentials_are_refused_when_the_plan_loads() -> None:
    with pytest.raises(Exception, match="inline secret"):
        plan_of(probe("http://127.0.0.1:1", "up", bearer_token="abc"))


async def test_the_monitor_shows_the_value_and_goes_unknown_without_data(prometheus: Prometheus) -> None:
    events = Events()
    plan = plan_of(probe(prometheus.url, "demo_error_ratio", interval="200ms"),
                   {**probe(prometheus.url, "demo_shard_load", interval="200ms"), "id": "shards"})
    async with Monitor(plan, SecretStore({}), events, sample_every=0) as monitor:
        await wait_until(lambda: monitor.state("errors") == "healthy" and monitor.has_result("shards"))
        snap = monitor.snapshot()
    assert snap["errors"]["reason"] == "value 0.001 (< 0.01)"
    assert snap["shards"]["state"] == "unknown" and snap["shards"]["reason"].startswith("2 series")


async def test_the_monitors_samples_carry_the_value_for_the_health_pane(prometheus: Prometheus) -> None:
    """[t, state, latency, value] for a value probe; [t, state, latency] (no value) when the query has none."""
    from rollback_tui.record.events import HealthSample

    events = Events()
    plan = plan_of(probe(prometheus.url, "demo_error_ratio", interval="200ms"),
                   {**probe(prometheus.url, "demo_shard_load", interval="200ms"), "id": "shards"})
    async with Monitor(plan, SecretStore({}), events, sample_every=0.5) as monitor:
        await wait_until(lambda: any("errors" in e.samples and "shards" in e.samples
                                     for e in events.of(HealthSample)))
        assert monitor.state("errors") == "healthy"
    rows = [row for e in events.of(HealthSample) for row in e.samples.get("errors", [])]
    assert rows and all(len(row) == 4 and row[1] == "healthy" and row[3] == 0.001 for row in rows)
    shards = [row for e in events.of(HealthSample) for row in e.samples.get("shards", [])]
    assert shards and all(len(row) == 3 and row[1] == "unknown" for row in shards)


async def test_as_a_step_check(prometheus: Prometheus) -> None:
    plan = make_plan([], steps=[{"id": "validate", "verify": [probe(prometheus.url, "demo_error_ratio"),
                                                               probe(prometheus.url, "nope_metric")]}])
    good, empty = [await run_step_check(check, plan=plan, secrets=SecretStore({}), monitor=None)
                   for check in plan.steps[0].verify]
    assert good.ok and good.observed == "value 0.001 (< 0.01)" and good.expected.startswith("one finite value < 0.01")
    assert not empty.ok and empty.observed.startswith("unknown: no series")


PLAN = """\
version: 1
metadata: {{name: prom-validate}}
rollback: {{scope: [code]}}
health:
  - kind: prometheus
    id: ratio
    url: "{url}"
    query: sum(rate(demo_requests_total[1m]) by (job)
    condition: "< 0.01"
steps:
  - id: code
    actions: [{{id: noop, kind: shell, argv: ["true"]}}]
  - id: validate
    verify:
      - kind: prometheus
        url: "{url}"
        query: 'demo_error_ratio +'
        condition: "< 0.01"
"""


def test_validate_reports_syntax_errors_at_file_line_col(prometheus: Prometheus, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(url=prometheus.url))
    assert cmd_validate(path, {}) == 2
    err = capsys.readouterr().err
    # the first query starts at line 8, column 12; Prometheus puts the error at 1:35 of it (the unexpected `by`)
    assert f"{path}:8:46: PromQL query rejected by 127.0.0.1:" in err, err
    assert "parse error: unexpected <by> in aggregation" in err
    # the second is quoted: 'demo_error_ratio +' at column 16, the end of input at 1:19 of the query
    line = PLAN.splitlines().index("        query: 'demo_error_ratio +'") + 1
    assert f"{path}:{line}:35: PromQL query rejected" in err and "unexpected end of input" in err


def test_validate_with_the_server_down_notes_it_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    path = tmp_path / "plan.yaml"
    port = free_port()
    path.write_text(PLAN.format(url=f"http://127.0.0.1:{port}"))
    assert cmd_validate(path, {}) == 0
    out = capsys.readouterr().out
    assert f"{path}:8:12: PromQL query not checked (127.0.0.1:{port} unreachable: connection refused)" in out, out
