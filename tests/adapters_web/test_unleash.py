"""The unleash adapter against the real open-source Unleash server (npm `unleash-server`) on a throwaway PostgreSQL.

The server is started once per test session, only when a test here is selected. Outside CI, a machine without
the npm package or PostgreSQL skips these tests saying why; with CI=true they fail instead.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, CheckResult, describe_safely, run_safely, verify_safely
from rollback_tui.plan.actions import UnleashAction
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

from .conftest import Collected
from .unleash_server import UnleashServer, UnleashUnavailable, start_unleash

_ENV = {"admin": "RB_UNLEASH_ADMIN", "client": "RB_UNLEASH_CLIENT", "devclient": "RB_UNLEASH_DEV_CLIENT",
        "unknown": "RB_UNLEASH_UNKNOWN"}
_names = itertools.count()


@pytest.fixture(scope="session")
def unleash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnleashServer]:
    try:
        server = start_unleash(tmp_path_factory.mktemp("unleash"))
    except UnleashUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the real Unleash server could not start: {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def uctx(unleash_server: UnleashServer, tmp_path: Path, collected: Collected) -> ActionContext:
    plan = Plan.model_validate({
        "metadata": {"name": "unleash-real"}, "rollback": {"scope": ["flags"]},
        "secrets": {name: {"env": var} for name, var in _ENV.items()},
        "steps": [{"id": "flags"}, {"id": "validate"}]})
    environ = {_ENV["admin"]: unleash_server.admin_token, _ENV["client"]: unleash_server.client_tokens["production"],
               _ENV["devclient"]: unleash_server.client_tokens["development"],
               _ENV["unknown"]: "*:*.not-a-token-of-this-server"}
    workdir = tmp_path / "session"
    workdir.mkdir()
    return ActionContext(plan=plan, step="flags", action_id="unleash-off", secrets=SecretStore(plan.secrets,
                         environ=environ), output=collected, workdir=workdir, extra={"base_dir": str(tmp_path)})


def action(server: UnleashServer, flags: list[str], **kwargs: Any) -> UnleashAction:
    fields = {"kind": "unleash", "id": "unleash-off", "url": server.url, "environment": "production",
              "flags": flags, "token": "${secrets.admin}", "client_token": "${secrets.client}", "timeout": 20}
    return UnleashAction.model_validate({**fields, **kwargs})


def rollout(percent: str, group: str, **extra: Any) -> dict[str, Any]:
    return {"name": "flexibleRollout", "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
            "parameters": {"rollout": percent, "stickiness": "default", "groupId": group}, **extra}


def feature(server: UnleashServer, stem: str, production: list[dict[str, Any]],
            development: list[dict[str, Any]] | None = None, enabled: tuple[str, ...] = ("production",)) -> str:
    """Create a feature in project default with strategies per environment, enabled where asked."""
    name = f"{stem}-{next(_names)}-{os.getpid()}"
    server.admin("POST", "/api/admin/projects/default/features", {"name": name, "type": "release"})
    for env, strategies in (("production", production), ("development", development or [])):
        for strategy in strategies:
            server.admin("POST", f"/api/admin/projects/default/features/{name}/environments/{env}/strategies",
                         strategy)
        if env in enabled:
            server.admin("POST", f"/api/admin/projects/default/features/{name}/environments/{env}/on")
    return name


def admin_env(server: UnleashServer, name: str, env: str) -> dict[str, Any]:
    body = server.admin("GET", f"/api/admin/projects/default/features/{name}")
    return next(item for item in body["environments"] if item["name"] == env)


def assert_no_tokens(server: UnleashServer, *texts: Any) -> None:
    secrets = [server.admin_token, *server.client_tokens.values()]
    for text in texts:
        for token in secrets:
            assert token.split(".", 1)[1] not in str(text)


def by_name(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {check.check: check for check in checks}


@pytest.fixture
def segment(unleash_server: UnleashServer) -> int:
    body = unleash_server.admin("POST", "/api/admin/segments", {
        "name": f"beta-{next(_names)}-{os.getpid()}",
        "constraints": [{"contextName": "userId", "operator": "IN", "values": ["1", "2"]}]})
    return int(body["id"])


async def test_disables_flags_zeroes_rollouts_and_sdks_agree(unleash_server: UnleashServer, uctx: ActionContext,
                                                             collected: Collected, segment: int) -> None:
    server = unleash_server
    checkout = feature(server, "new-checkout", [rollout("50", "new-checkout", segments=[segment]),
                                                {"name": "remoteAddress", "parameters": {"IPs": "10.0.0.1"}}],
                       development=[rollout("100", "new-checkout")], enabled=("production", "development"))
    banner = feature(server, "beta-banner", [rollout("0", "beta-banner")])
    act = action(server, [checkout, banner])

    before = await verify_safely(act, uctx)
    assert not by_name(before)[f"unleash {checkout} in production"].ok
    client_before = by_name(before)[f"unleash {checkout} Client API (production)"]
    assert not client_before.ok and client_before.observed.startswith("enabled, flexibleRollout 50 %")
    assert "still after" not in client_before.observed  # the Admin API says on: no waiting for the Client API

    result = await run_safely(act, uctx)
    assert result.ok, result.error
    production = admin_env(server, checkout, "production")
    assert production["enabled"] is False
    zeroed = next(s for s in production["strategies"] if s["name"] == "flexibleRollout")
    assert zeroed["parameters"] == {"rollout": "0", "stickiness": "default", "groupId": "new-checkout"}
    # everything else of the strategy survived the PUT (it replaces the whole strategy)
    assert zeroed["constraints"][0]["values"] == ["eu"] and zeroed["segments"] == [segment]
    assert [s["parameters"] for s in production["strategies"] if s["name"] == "remoteAddress"] == [{"IPs": "10.0.0.1"}]
    development = admin_env(server, checkout, "development")
    assert development["enabled"] is True and development["strategies"][0]["parameters"]["rollout"] == "100"
    assert admin_env(server, banner, "production")["enabled"] is False
    assert result.details["flags"][checkout]["strategies_zeroed"] == [zeroed["id"]]
    assert result.details["flags"][banner]["strategies_zeroed"] == []  # already 0: no PUT

    checks = await verify_safely(act, uctx)
    assert checks and all(check.ok for check in checks), checks
    client = by_name(checks)[f"unleash {checkout} Client API (production)"]
    assert client.observed.startswith("disabled, flexibleRollout 0 % (revision ")
    # what an SDK polling with the production token gets, read here independently of the adapter
    status, sdk = server.request("GET", "/api/client/features", token=server.client_tokens["production"])
    assert status == 200
    seen = next(f for f in sdk["features"] if f["name"] == checkout)
    assert seen["enabled"] is False and seen["strategies"][0]["parameters"]["rollout"] == "0"
    assert "/off -> 200 in" in collected.text and "/api/client/features?environment=production ->" in collected.text
    assert_no_tokens(server, collected.text, result.error, result.details, [vars(c) for c in checks + before])


async def test_describe_reads_without_changing(unleash_server: UnleashServer, uctx: ActionContext) -> None:
    name = feature(unleash_server, "describe", [rollout("25", "describe")])
    description = await describe_safely(action(unleash_server, [name]), uctx)
    assert "disable 1 flag(s) in production and set flexibleRollout rollouts to 0 %" in description.summary
    assert f"flag {name} in production: enabled -> disabled" in description.details
    assert any(line.startswith("  flexibleRollout ") and line.endswith(": 25 % -> 0 %") for line in description.details)
    assert description.risks == []
    assert admin_env(unleash_server, name, "production")["enabled"] is True
    without_client = await describe_safely(action(unleash_server, [name], client_token=None), uctx)
    assert any("no client_token" in risk for risk in without_client.risks)


async def test_client_token_of_another_environment_fails_verify(unleash_server: UnleashServer,
                                                                uctx: ActionContext) -> None:
    name = feature(unleash_server, "wrong-env", [rollout("50", "wrong-env")])
    act = action(unleash_server, [name], client_token="${secrets.devclient}")
    assert (await run_safely(act, uctx)).ok
    started = time.monotonic()
    checks = by_name(await verify_safely(act, uctx))
    assert checks[f"unleash {name} in production"].ok  # the Admin API agrees ...
    client = checks[f"unleash {name} Client API (production)"]  # ... but SDKs with this token see development
    assert not client.ok and "answered for environment 'development'" in client.observed
    assert time.monotonic() - started < 5  # waiting cannot fix a token of the wrong environment


async def test_admin_token_reads_the_client_api_of_the_environment(unleash_server: UnleashServer,
                                                                   uctx: ActionContext) -> None:
    name = feature(unleash_server, "admin-view", [rollout("10", "admin-view")])
    act = action(unleash_server, [name], client_token=None)
    assert (await run_safely(act, uctx)).ok
    checks = by_name(await verify_safely(act, uctx))
    assert checks[f"unleash {name} Client API (production)"].ok, checks


async def test_wrong_token_is_401_with_a_hint(unleash_server: UnleashServer, uctx: ActionContext) -> None:
    name = feature(unleash_server, "auth", [rollout("50", "auth")])
    act = action(unleash_server, [name, "other"], token="${secrets.client}")  # a client token on the Admin API
    result = await run_safely(act, uctx)
    assert result.status == "failed" and f"flag {name}" in result.error and "flag other" in result.error
    assert "-> 403, expected 200" in result.error and "lack permission" in result.error
    assert admin_env(unleash_server, name, "production")["enabled"] is True
    checks = await verify_safely(action(unleash_server, [name], token="${secrets.unknown}", client_token=None), uctx)
    assert checks and all(not check.ok and "401" in check.observed for check in checks), checks


async def test_unknown_flag_and_environment(unleash_server: UnleashServer, uctx: ActionContext) -> None:
    name = feature(unleash_server, "known", [rollout("50", "known")])
    result = await run_safely(action(unleash_server, ["no-such-flag", name]), uctx)
    assert result.status == "failed" and "flag no-such-flag:" in result.error and "-> 404" in result.error
    assert "no feature named" in result.error and name not in result.error  # the other flag went through
    assert admin_env(unleash_server, name, "production")["enabled"] is False
    staging = action(unleash_server, [name], environment="staging", client_token=None)
    checks = await verify_safely(staging, uctx)
    assert not checks[0].ok and "has no environment 'staging'" in checks[0].observed
    off = await run_safely(staging, uctx)
    assert off.status == "failed" and "Could not find environment staging" in off.error


async def test_plain_strategy_types_are_the_servers(unleash_server: UnleashServer) -> None:
    """The adapter assumes only the open-source server's strategy types; that server refuses the others."""
    from rollback_tui.adapters.unleash import BUILTIN_STRATEGIES

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"`unleash-server` {unleash_server.version} (npm" in readme  # the adapter table names what ran here
    body = unleash_server.admin("GET", "/api/admin/strategies")
    assert {s["name"] for s in body["strategies"] if not s.get("deprecated")} >= set(BUILTIN_STRATEGIES)
    name = feature(unleash_server, "types", [])
    status, answer = unleash_server.request(
        "POST", f"/api/admin/projects/default/features/{name}/environments/production/strategies",
        {"name": "userWithId", "parameters": {"userIds": "42"}})
    assert status == 400 and "userWithId" in str(answer)


async def test_custom_strategy_is_left_alone_and_the_flag_still_goes_off(unleash_server: UnleashServer,
                                                                          uctx: ActionContext) -> None:
    server = unleash_server
    custom = f"tenantRollout{next(_names)}"
    server.admin("POST", "/api/admin/strategies", {"name": custom, "description": "a team's own strategy",
                                                   "parameters": [{"name": "tenants", "type": "list"}]})
    name = feature(server, "custom", [{"name": custom, "parameters": {"tenants": "a,b"}}, rollout("40", "custom")])
    act = action(server, [name])
    description = await describe_safely(act, uctx)
    assert any(f"strategy {custom!r} is not a built-in strategy" in risk for risk in description.risks)
    assert (await run_safely(act, uctx)).ok
    strategies = admin_env(server, name, "production")["strategies"]
    assert [s["parameters"] for s in strategies if s["name"] == custom] == [{"tenants": "a,b"}]
    checks = await verify_safely(act, uctx)
    assert all(check.ok for check in checks), checks
