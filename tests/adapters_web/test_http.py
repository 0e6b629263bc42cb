"""Webhooks (plain, Slack, Jira comment) and the generic HTTP flag API against loopback servers."""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.plan.actions import HttpAction, HttpFlagAction

from .conftest import Collected, assert_no_canary
from .util import CANARY, Loopback, Reply, Request


def hook(url: str, **kwargs: Any) -> HttpAction:
    return HttpAction.model_validate({"kind": "http", "id": "notify", "url": url, "timeout": 20, **kwargs})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def guarded(reply: Reply) -> Callable[[Request], Reply]:
    """Answer `reply` to requests carrying the canary bearer token; 401 (echoing the header) otherwise."""
    def handle(request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {CANARY}":
            return Reply(401, {"error": f"bad credentials {request.headers.get('authorization')}"})
        return reply
    return handle


async def test_plain_webhook_with_secret_header(serve: Callable[..., Loopback], ctx: ActionContext,
                                                collected: Collected) -> None:
    server = serve(guarded(Reply(202, {"queued": True})))
    act = hook(f"{server.url}/hook", headers={"Authorization": "Bearer ${secrets.canary}"},
               json_body={"event": "rollback", "steps": 7})

    description = await describe_safely(act, ctx)
    assert description.summary == f"request: POST {server.url}/hook"
    assert "  Authorization: Bearer ${secrets.canary}" in description.details  # the reference, not the value
    assert '  body {"event": "rollback", "steps": 7}' in description.details

    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert server.requests[0].json() == {"event": "rollback", "steps": 7}
    assert f"POST {server.url}/hook -> 202 in" in collected.text

    checks = await verify_safely(act, ctx)
    assert checks[0].ok and checks[0].observed == "202 recorded when sent (a webhook cannot be read back)"
    assert_no_canary(collected.text, result.details, description, [vars(c) for c in checks])


async def test_rejected_credentials_never_leak(serve: Callable[..., Loopback], ctx: ActionContext,
                                               collected: Collected) -> None:
    server = serve(guarded(Reply(200)))
    act = hook(f"{server.url}/hook", headers={"Authorization": "Bearer ${secrets.canary}x"}, json_body={})
    result = await run_safely(act, ctx)
    assert result.status == "failed" and "-> 401, expected 200 or 201 or 202 or 204" in result.error
    # the server echoed the header; the session's record path (ctx.redactor) masks it before anyone sees it
    assert "bad credentials Bearer •••x" in ctx.redactor(result.error)
    checks = await verify_safely(act, ctx)
    assert not checks[0].ok and checks[0].observed.startswith("401 recorded")
    assert_no_canary(*map(ctx.redactor, [collected.text, result.error, str([vars(c) for c in checks])]))


async def test_slack_preset(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    server = serve(lambda request: Reply(200, "ok", "text/plain"))
    act = hook(f"{server.url}/services/T0/B0/xyz", preset="slack", text="Rollback of checkout complete")
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    request = server.requests[0]
    assert request.method == "POST" and request.path == "/services/T0/B0/xyz"
    assert request.json() == {"text": "Rollback of checkout complete"}
    assert request.headers["content-type"] == "application/json"


async def test_slack_webhook_url_as_secret(serve: Callable[..., Loopback], ctx: ActionContext,
                                           collected: Collected) -> None:
    server = serve(lambda request: Reply(200, "ok", "text/plain"))
    act = hook("${secrets.canary}", preset="slack", text="done")
    ctx.secrets = type(ctx.secrets)({"canary": ctx.plan.secrets["canary"]},
                                    environ={"RB_WEB_CANARY": f"{server.url}/hooks/{CANARY}"})
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert server.requests[0].path == f"/hooks/{CANARY}"
    assert "POST ••• -> 200" in ctx.redactor(collected.text)  # as the record path masks it
    checks = await verify_safely(act, ctx)
    assert_no_canary(*map(ctx.redactor, [collected.text, str(result.details), str([vars(c) for c in checks])]))


async def test_jira_comment_preset(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    server = serve(guarded(Reply(201, {"id": "10001", "body": "Rolled back"})))
    act = hook(server.url + "/", preset="jira_comment", issue="OPS-7", text="Rolled back to v2.3.1",
               headers={"Authorization": "Bearer ${secrets.canary}"})
    description = await describe_safely(act, ctx)
    assert description.summary == f"Jira comment on OPS-7: POST {server.url}/rest/api/2/issue/OPS-7/comment"
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert server.requests[0].path == "/rest/api/2/issue/OPS-7/comment"
    assert server.requests[0].json() == {"body": "Rolled back to v2.3.1"}


async def test_preset_without_text_is_a_clear_failure(ctx: ActionContext) -> None:
    result = await run_safely(hook("http://127.0.0.1:1", preset="jira_comment", text="x"), ctx)
    assert result.status == "failed" and "needs 'text' and 'issue'" in result.error


async def test_server_error_status(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    server = serve(lambda request: Reply(500, "<h1>boom</h1>", "text/html"))
    result = await run_safely(hook(f"{server.url}/hook", json_body={"a": 1}), ctx)
    assert result.status == "failed"
    assert result.error.startswith(f"POST {server.url}/hook -> 500, expected 200 or 201 or 202 or 204: <h1>boom</h1>")


async def test_refused_connection(ctx: ActionContext) -> None:
    port = free_port()
    result = await run_safely(hook(f"http://127.0.0.1:{port}/hook", json_body={}), ctx)
    assert result.status == "failed"
    assert result.error == f"POST http://127.0.0.1:{port}/hook: connection refused"
    checks = await verify_safely(hook(f"http://127.0.0.1:{port}/hook"), ctx)
    assert not checks[0].ok and checks[0].observed.startswith("not delivered: connection refused")
    never = await verify_safely(hook(f"http://127.0.0.1:{port}/hook", id="never-sent"), ctx)
    assert not never[0].ok and "no request sent in this session" in never[0].observed


async def test_timeout(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    server: Loopback

    def slow(request: Request) -> Reply:
        server.release.wait(10)
        return Reply(200)

    server = serve(slow)
    result = await run_safely(hook(f"{server.url}/slow", json_body={}, timeout=1), ctx)
    assert result.status == "timeout"
    assert "timed out" in result.error


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    # cryptography comes with asyncssh, so no openssl binary is needed
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(private, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_untrusted_tls_certificate(serve: Callable[..., Loopback], ctx: ActionContext,
                                         self_signed: ssl.SSLContext) -> None:
    server = serve(lambda request: Reply(200), tls=self_signed)
    result = await run_safely(hook(f"{server.url}/hook", json_body={}), ctx)
    assert result.status == "failed"
    assert result.error.startswith(f"POST {server.url}/hook: TLS certificate verification failed")


# ---------------------------------------------------------------- generic HTTP flag API


class FlagApi:
    """A flag service: PATCH /flags/NAME {"enabled": bool}; GET /flags/NAME -> {"flag": {"enabled": ...}}."""

    def __init__(self) -> None:
        self.flags: dict[str, bool] = {"new-checkout": True}

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("x-api-key") != CANARY:
            return Reply(401, {"error": "unauthorized"})
        name = request.path.rsplit("/", 1)[-1]
        if name not in self.flags:
            return Reply(404, {"error": f"no flag {name}"})
        if request.method == "PATCH":
            self.flags[name] = bool(request.json()["enabled"])
            return Reply(200, {"ok": True})
        return Reply(200, {"flag": {"name": name, "enabled": self.flags[name]}})


def flag_action(base: str, **kwargs: Any) -> HttpFlagAction:
    return HttpFlagAction.model_validate({
        "kind": "http_flag", "id": "flag-off", "flag": "new-checkout", "url": f"{base}/flags/new-checkout",
        "body": {"enabled": False}, "headers": {"X-Api-Key": "${secrets.canary}"}, "verify_field": "flag.enabled",
        "timeout": 20, **kwargs})


async def test_http_flag_turns_off_and_reads_back(serve: Callable[..., Loopback], ctx: ActionContext,
                                                  collected: Collected) -> None:
    api = FlagApi()
    server = serve(api)
    act = flag_action(server.url)

    before = await verify_safely(act, ctx)
    assert not before[0].ok and before[0].observed == "true" and before[0].expected == "false"
    description = await describe_safely(act, ctx)
    assert "flag new-checkout: flag.enabled true -> false" in description.details
    assert "  X-Api-Key: ${secrets.canary}" in description.details

    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert api.flags["new-checkout"] is False
    assert f"PATCH {server.url}/flags/new-checkout -> 200 in" in collected.text
    checks = await verify_safely(act, ctx)
    assert checks[0].ok and checks[0].observed == "false"
    assert_no_canary(collected.text, result.details, description, [vars(c) for c in before + checks])


async def test_http_flag_failures(serve: Callable[..., Loopback], ctx: ActionContext) -> None:
    server = serve(FlagApi())
    missing = await run_safely(flag_action(server.url, url=f"{server.url}/flags/nope"), ctx)
    assert missing.status == "failed" and "-> 404, expected 2xx" in missing.error and "check the URL" in missing.error

    zero = await verify_safely(flag_action(server.url, verify_equals=0), ctx)
    assert not zero[0].ok  # `true` is not 0, and `false` would not be either

    absent = await verify_safely(flag_action(server.url, verify_field="flag.state"), ctx)
    assert not absent[0].ok and "field 'flag.state' missing" in absent[0].observed

    page = serve(lambda request: Reply(200, "<html>login</html>", "text/html"))
    not_json = await verify_safely(flag_action(page.url), ctx)
    assert not not_json[0].ok and "not JSON (text/html)" in not_json[0].observed


async def test_http_flag_describe_when_service_is_down(ctx: ActionContext) -> None:
    description = await describe_safely(flag_action(f"http://127.0.0.1:{free_port()}"), ctx)
    assert description.summary.startswith("turn flag new-checkout off: PATCH")
    assert any("connection refused" in risk for risk in description.risks)
