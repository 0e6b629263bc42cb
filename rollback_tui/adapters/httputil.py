"""Shared HTTP helpers for the web adapters: one logged request, readable failures, JSON answers, masking."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollback_tui.errors import ActionTimeout, AdapterError
from rollback_tui.secrets import MASK

if TYPE_CHECKING:  # httpx is imported lazily: it costs start-up time
    import httpx

    from rollback_tui.adapters.base import ActionContext

_HINTS = {
    401: "the server refused the credentials: check the token/secret the action references",
    403: "the credentials lack permission for this request (or a change request is required)",
    404: "check the URL and the names in it (project, flag, environment, issue)",
}
_SNIPPET = 160

# `password = x`, `"apiKey": "x"`, `DB_TOKEN=x`: the value after a credential-looking key
_CRED_ASSIGN = re.compile(
    r"""(?ix)
    (?P<pre>(?:^|[\s{,])["']?[\w.\-]*(?:password|passwd|secret|token|key|credential)[\w.\-]*["']?\s*[:=]\s*)
    (?:(?P<quote>["'])[^"']*(?P=quote)|[^"'\s,}]+)""",
)
# `scheme://user:password@host`
_URL_PASSWORD = re.compile(r"(?P<pre>://[^:/@\s]+:)(?P<val>[^@\s/]+)(?=@)")
_CREDENTIAL_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL")


def looks_secret(key: str) -> bool:
    """A key whose value is probably a credential (PASSWORD, SECRET, TOKEN, KEY in its name)."""
    upper = key.upper()
    return any(word in upper for word in _CREDENTIAL_WORDS)


def mask_credentials(line: str) -> str:
    """Mask values that look like credentials in one line of text (config files, .env, diffs)."""
    def masked(match: re.Match[str]) -> str:
        quote = match.group("quote") or ""
        return f"{match.group('pre')}{quote}{MASK}{quote}"

    line = _CRED_ASSIGN.sub(masked, line)
    return _URL_PASSWORD.sub(lambda m: f"{m.group('pre')}{MASK}", line)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    import httpx

    # building the CA store costs 20-90 ms: once per process, not once per action
    return httpx.create_ssl_context()


def new_client(timeout: float, *, verify: bool = True) -> httpx.AsyncClient:
    """An AsyncClient with one overall timeout per request; httpx is imported here, not at start-up."""
    import httpx

    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), verify=_tls_context() if verify else False,
                             follow_redirects=False)


def request_timeout(action_timeout: float) -> float:
    """Per-request timeout: a little under the action's, so the message names the request, not the action."""
    return max(0.05, action_timeout - min(1.0, action_timeout * 0.1))


def _root_causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def transport_reason(exc: BaseException, timeout: float) -> str:
    """A short, operator-readable reason for a failed request (refused, TLS, DNS, timeout)."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    for cause in _root_causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({cause.verify_message or cause.reason})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error ({cause.reason or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP exchange ({exc})"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL (use http:// or https://)"
    return str(exc) or type(exc).__name__


@dataclass
class Answer:
    """A received HTTP answer, with what is needed to explain it."""

    method: str
    url: str
    status: int
    text: str
    content_type: str
    elapsed_ms: int

    @property
    def label(self) -> str:
        return f"{self.method} {self.url}"

    def snippet(self) -> str:
        body = " ".join(self.text.split())
        return body[:_SNIPPET] + ("…" if len(body) > _SNIPPET else "")

    def json(self) -> Any:
        """The body as JSON, or an AdapterError saying what came back instead."""
        try:
            return json.loads(self.text)
        except ValueError:
            kind = self.content_type or "no content type"
            raise AdapterError(
                f"{self.label} -> {self.status}: the answer is not JSON ({kind}): {self.snippet()!r}",
                hint="check that the URL points at the API, not a web page or proxy",
            ) from None

    def fail(self, expected: str = "2xx") -> AdapterError:
        """An error for an unexpected status, with a hint for the common ones."""
        detail = f": {self.snippet()}" if self.text.strip() else ""
        return AdapterError(f"{self.label} -> {self.status}, expected {expected}{detail}",
                            hint=_HINTS.get(self.status, ""))


async def send(
    ctx: ActionContext,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    timeout: float,
    log: bool = True,
) -> Answer:
    """One request: logged as `METHOD url -> status in N ms`; transport failures become AdapterError."""
    method = method.upper()
    started = time.monotonic()
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if json_body is not None:
        kwargs["json"] = json_body
    try:
        response = await client.request(method, url, **kwargs)
    except asyncio.CancelledError:
        # the action's own timeout (or the operator) stopped it: say which request was in flight
        elapsed = int((time.monotonic() - started) * 1000)
        ctx.log(f"{method} {url} -> cancelled after {elapsed} ms", stream="stderr")
        raise
    except Exception as exc:
        import httpx

        if not isinstance(exc, httpx.HTTPError):
            raise
        reason = transport_reason(exc, timeout)
        if log:
            ctx.log(f"{method} {url} -> {reason}", stream="stderr")
        error = ActionTimeout if isinstance(exc, httpx.TimeoutException) else AdapterError
        raise error(f"{method} {url}: {reason}") from None
    elapsed = int((time.monotonic() - started) * 1000)
    if log:
        ctx.log(f"{method} {url} -> {response.status_code} in {elapsed} ms")
    answer = Answer(method, url, response.status_code, response.text,
                    response.headers.get("content-type", ""), elapsed)
    return answer


def expand_json(ctx: ActionContext, value: Any) -> Any:
    """Substitute `${secrets.NAME}` in every string of a JSON value (at the moment of use)."""
    if isinstance(value, str):
        return ctx.expand(value)
    if isinstance(value, list):
        return [expand_json(ctx, item) for item in value]
    if isinstance(value, dict):
        return {ctx.expand(str(key)): expand_json(ctx, item) for key, item in value.items()}
    return value


def expand_headers(ctx: ActionContext, headers: Mapping[str, str]) -> dict[str, str]:
    return {name: ctx.expand(value) for name, value in headers.items()}


def dotted(value: Any, path: str) -> tuple[bool, Any]:
    """Follow `a.b.0.c` into a JSON value; (found, value)."""
    current = value
    for part in path.split(".") if path else []:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def show_json(value: Any) -> str:
    """Compact JSON for describe/check texts (not expanded: secret references stay references)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
