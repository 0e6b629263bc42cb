"""The unleash adapter on what the real server cannot be made to do: 500s, timeouts, non-JSON, a stuck or
malformed Client API, refused connections. Everything else runs against the real server (test_unleash.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, run_safely, verify_safely
from rollback_tui.plan.actions import UnleashAction

from .conftest import Collected, assert_no_canary
from .util import CANARY, Loopback, Reply, Request, UnleashFake


def action(url: str, **kwargs: Any) -> UnleashAction:
    fields = {"kind": "unleash", "id": "unleash-off", "url": url, "environment": "production",
              "flags": ["new-checkout"], "token": "${secrets.canary}", "timeout": 20}
    return UnleashAction.model_validate({**fields, **kwargs})


def client_answer(enabled: bool, rollout: str, revision: int, environment: str = "production") -> dict[str, Any]:
    return {"version": 2, "query": {"environment": environment},
            "features": [{"name": "new-checkout", "enabled": enabled, "strategies": [
                {"name": "flexibleRollout", "parameters": {"rollout": rollout}, "constraints": []}]}],
            "meta": {"revisionId": revision, "etag": f'"abc:{revision}:v1"'}}


def off_fake(client: Callable[[Request], Reply]) -> UnleashFake:
    fake = UnleashFake(token=CANARY, client=client)
    fake.add("default", "new-checkout", "production", False, [
        {"id": "s-1", "name": "flexibleRollout", "parameters": {"rollout": "0"}, "constraints": []}])
    return fake


async def test_server_error_and_non_json(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    broken = serve(UnleashFake(token=CANARY, fail_with=500))
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


async def test_slow_server_times_out_naming_the_request(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    servers: list[Loopback] = []

    def slow(request: Request) -> Reply:
        servers[0].release.wait(10)
        return Reply(200, {})

    servers.append(serve(slow))
    started = time.monotonic()
    result = await run_safely(action(servers[0].url, timeout=1.5), ctx)
    assert result.status in ("failed", "timeout") and "timed out after" in result.error
    assert "/environments/production/off" in result.error
    assert time.monotonic() - started < 5


async def test_client_api_that_never_agrees_fails_with_what_it_said(serve: Callable[..., Loopback],
                                                                    ctx: ActionContext, collected: Collected) -> None:
    seen: list[str | None] = []

    def stuck(request: Request) -> Reply:
        seen.append(request.headers.get("if-none-match"))
        if seen[-1] == '"abc:7:v1"':
            return Reply(304, b"")
        answer = client_answer(True, "50", 7)
        answer["features"].append({"name": "old-banner", "enabled": False, "strategies": []})
        return Reply(200, answer)

    fake = off_fake(stuck)
    fake.add("default", "old-banner", "production", False, [])
    server = serve(fake)
    started = time.monotonic()
    checks = await verify_safely(action(server.url, flags=["new-checkout", "old-banner"], client_wait=0.8), ctx)
    elapsed = time.monotonic() - started
    assert [c.ok for c in checks] == [True, True, True, False, True]  # the Admin API says off, SDKs still get it on
    assert checks[3].check == "unleash new-checkout Client API (production)"
    assert checks[3].observed.startswith("enabled, flexibleRollout 50 % (revision 7), still after 0.")
    assert checks[4].observed == "disabled (revision 7)"  # the flag that agrees is not marked as waited on
    assert 0.8 <= elapsed < 3
    assert seen[0] is None and len(seen) >= 3 and set(seen[1:]) == {'"abc:7:v1"'}  # ETag sent back: 304s
    assert len(seen) <= 12  # backoff, not a busy loop
    assert_no_canary(collected.text, [vars(c) for c in checks])


async def test_client_api_catching_up_passes(serve: Callable[..., Loopback], ctx: ActionContext,
                                             collected: Collected) -> None:
    answers = [Reply(200, client_answer(True, "50", 7)), Reply(304, b""), Reply(200, client_answer(False, "0", 9))]

    def lagging(request: Request) -> Reply:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    server = serve(off_fake(lagging))
    checks = await verify_safely(action(server.url), ctx)
    assert all(c.ok for c in checks), checks
    assert checks[-1].observed == "disabled, flexibleRollout 0 % (revision 9)"
    assert "Unleash Client API agrees after" in collected.text


@pytest.mark.parametrize("reply, expected", [
    (Reply(200, {"features": "all of them"}), "not a Client API answer (no 'features' list)"),
    (Reply(200, b"{not json", "application/json"), "the answer is not JSON"),
    (Reply(500, {"message": "db down"}), "-> 500, expected 200"),
])
async def test_malformed_client_api(serve: Callable[..., Loopback], ctx: ActionContext, reply: Reply,
                                    expected: str) -> None:
    server = serve(off_fake(lambda request: reply))
    started = time.monotonic()
    checks = await verify_safely(action(server.url), ctx)
    assert [c.ok for c in checks[:2]] == [True, True]
    assert not checks[2].ok and checks[2].observed.startswith("unreadable: ") and expected in checks[2].observed
    assert time.monotonic() - started < 3  # an unreadable answer is not waited on
