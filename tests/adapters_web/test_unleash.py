"""The Unleash Admin API against a loopback server implementing the documented requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.plan.actions import UnleashAction

from .conftest import Collected, assert_no_canary
from .util import CANARY, Loopback, Reply, UnleashFake


def rollout(strategy_id: str, percent: str) -> dict[str, Any]:
    return {"id": strategy_id, "name": "flexibleRollout", "title": "", "disabled": False, "sortOrder": 0,
            "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
            "parameters": {"rollout": percent, "stickiness": "default", "groupId": "new-checkout"},
            "variants": [], "segments": [3]}


@pytest.fixture
def unleash(serve: Callable[..., Loopback]) -> tuple[UnleashFake, Loopback]:
    fake = UnleashFake(token=CANARY)
    fake.add("default", "new-checkout", "production", True, [rollout("s-1", "50"), {
        "id": "s-2", "name": "userWithId", "parameters": {"userIds": "42"}, "constraints": []}])
    fake.add("default", "new-checkout", "development", True, [rollout("s-3", "100")])
    fake.add("default", "beta-banner", "production", True, [rollout("s-4", "0")])
    return fake, serve(fake)


def action(url: str, **kwargs: Any) -> UnleashAction:
    fields = {"kind": "unleash", "id": "unleash-off", "url": url, "environment": "production",
              "flags": ["new-checkout", "beta-banner"], "token": "${secrets.canary}", "timeout": 20}
    return UnleashAction.model_validate({**fields, **kwargs})


async def test_disables_flags_and_zeroes_rollouts(unleash: tuple[UnleashFake, Loopback], ctx: ActionContext,
                                                  collected: Collected) -> None:
    fake, server = unleash
    act = action(server.url)

    before = await verify_safely(act, ctx)
    assert [check.ok for check in before].count(False) == 3  # two flags enabled, rollout 50 %

    result = await run_safely(act, ctx)
    assert result.ok, result.error
    production = fake.projects["default"]["new-checkout"]["production"]
    assert production["enabled"] is False
    assert production["strategies"][0]["parameters"] == {"rollout": "0", "stickiness": "default",
                                                         "groupId": "new-checkout"}
    # everything else of the strategy was sent back unchanged (PUT replaces the whole strategy)
    assert production["strategies"][0]["constraints"][0]["values"] == ["eu"]
    assert production["strategies"][0]["segments"] == [3]
    assert production["strategies"][1]["parameters"] == {"userIds": "42"}
    assert fake.projects["default"]["new-checkout"]["development"]["enabled"] is True  # other environment untouched
    assert fake.projects["default"]["beta-banner"]["production"]["enabled"] is False
    assert result.details["flags"]["new-checkout"]["strategies_zeroed"] == ["s-1"]
    assert result.details["flags"]["beta-banner"]["strategies_zeroed"] == []  # already 0: no PUT
    paths = [(request.method, request.path) for request in server.requests]
    assert ("POST", "/api/admin/projects/default/features/new-checkout/environments/production/off") in paths
    assert ("PUT", "/api/admin/projects/default/features/new-checkout/environments/production/strategies/s-1") in paths
    assert not any(path.endswith("/s-4") for _, path in paths)
    assert all(request.headers["authorization"] == CANARY for request in server.requests)
    assert "/off -> 200 in" in collected.text

    checks = await verify_safely(act, ctx)
    assert checks and all(check.ok for check in checks), checks
    assert ("unleash new-checkout in production", "disabled") in [(c.check, c.observed) for c in checks]
    assert_no_canary(collected.text, result.error, result.details, [vars(c) for c in checks + before])


async def test_describe_reads_current_state(unleash: tuple[UnleashFake, Loopback], ctx: ActionContext) -> None:
    fake, server = unleash
    description = await describe_safely(action(server.url), ctx)
    assert "disable 2 flag(s) in production and set gradual rollouts to 0 %" in description.summary
    assert "flag new-checkout in production: enabled -> disabled" in description.details
    assert "  flexibleRollout s-1: 50 % -> 0 %" in description.details
    assert not any(request.method != "GET" for request in server.requests)
    assert fake.projects["default"]["new-checkout"]["production"]["enabled"] is True


async def test_wrong_token_is_401_with_a_hint(unleash: tuple[UnleashFake, Loopback], ctx: ActionContext,
                                              collected: Collected) -> None:
    fake, server = unleash
    fake.token = "another-token-value"
    act = action(server.url)
    result = await run_safely(act, ctx)
    assert result.status == "failed"
    assert "-> 401, expected 200" in result.error and "check the token" in result.error
    assert "flag new-checkout" in result.error and "flag beta-banner" in result.error  # every flag was tried
    checks = await verify_safely(act, ctx)
    assert all(not check.ok and "401" in check.observed for check in checks)
    description = await describe_safely(act, ctx)
    assert any("401" in risk for risk in description.risks)
    assert_no_canary(collected.text, result.error, [vars(c) for c in checks], description)


async def test_unknown_flag_404_does_not_stop_the_others(unleash: tuple[UnleashFake, Loopback],
                                                         ctx: ActionContext) -> None:
    fake, server = unleash
    result = await run_safely(action(server.url, flags=["nope", "new-checkout"]), ctx)
    assert result.status == "failed" and "flag nope:" in result.error and "-> 404" in result.error
    assert "new-checkout" not in result.error
    assert fake.projects["default"]["new-checkout"]["production"]["enabled"] is False
    checks = await verify_safely(action(server.url, environment="staging", flags=["new-checkout"]), ctx)
    assert not checks[0].ok and "has no environment 'staging'" in checks[0].observed


async def test_server_error_and_non_json(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    fake = UnleashFake(token=CANARY, fail_with=500)
    broken = serve(fake)
    result = await run_safely(action(broken.url), ctx)
    assert result.status == "failed" and "-> 500, expected 200: {\"message\": \"internal error\"}" in result.error

    html = serve(lambda request: Reply(200, "<html><body>Sign in</body></html>", "text/html"))
    checks = await verify_safely(action(html.url, flags=["x"]), ctx)
    assert not checks[0].ok and "the answer is not JSON (text/html)" in checks[0].observed


async def test_refused_connection(ctx: ActionContext) -> None:
    result = await run_safely(action("http://127.0.0.1:9", flags=["x"]), ctx)
    assert result.status == "failed"
    assert "POST http://127.0.0.1:9/api/admin/projects/default/features/x/environments/production/off: " \
           "connection refused" in result.error
