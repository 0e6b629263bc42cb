"""One instant PromQL query against a Prometheus-compatible HTTP API, judged: every odd answer is a named outcome."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from rollback_tui.health.http11 import HttpPool
from rollback_tui.health.probes import ProbeOutcome, _short, error_reason
from rollback_tui.plan.promql import PromSource, condition_text, holds
from rollback_tui.plan.types import format_duration
from rollback_tui.secrets import SecretStore

Kind = Literal["value", "no_data", "several", "not_finite", "wrong_type", "rejected", "error", "unreachable"]
#: Outcomes that say nothing about the watched system (the probe's state becomes unknown, never healthy).
UNKNOWN_KINDS = ("no_data", "several", "not_finite", "unreachable")
_SERIES_NAMED = 3


@dataclass
class PromAnswer:
    """What one query gave: a finite value, or why there is none (`message` says it in words)."""

    kind: Kind
    message: str
    value: float | None = None
    at: float | None = None
    """The evaluation time the server reports (Unix seconds)."""
    latency_ms: float | None = None


def address(url: str) -> str:
    """host:port of a base URL, for 'unreachable' messages (no user info)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def graph_link(url: str, query: str, span: float = 300.0) -> str:
    """The same query in the server's graph page, over a range covering `span` seconds."""
    minutes = max(5, math.ceil(span / 60.0))
    return (f"{url.rstrip('/')}/graph?g0.expr={quote(query, safe='')}&g0.tab=0"
            f"&g0.range_input={minutes}m")


def _headers(source: PromSource, secrets: SecretStore) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if source.bearer_token is not None:
        headers["Authorization"] = f"Bearer {secrets.expand(source.bearer_token)}"
    elif source.basic_auth is not None:
        pair = f"{secrets.expand(source.basic_auth.username)}:{secrets.expand(source.basic_auth.password)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return headers


def _labels(metric: Any) -> str:
    if not isinstance(metric, dict):
        return "{}"
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())[:6])
    return "{" + inner + "}"


def _server_error(status: int, body: bytes) -> tuple[str, str]:
    """(errorType, error) from a Prometheus error answer, or the HTTP status and the body's first line."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("status") == "error":
        return str(document.get("errorType", "error")), str(document.get("error", ""))
    first = body.decode(errors="replace").strip().splitlines()[0] if body.strip() else ""
    return f"HTTP {status}", first


def _read(body: bytes) -> PromAnswer:
    try:
        document = json.loads(body)
        data = document["data"]
        kind, result = data["resultType"], data["result"]
    except (ValueError, KeyError, TypeError):
        return PromAnswer("error", "answer is not a Prometheus query result")
    if kind == "scalar":
        point, series = result, None
    elif kind == "vector":
        if not isinstance(result, list) or not result:
            return PromAnswer("no_data", "no series (the query matched nothing)")
        if len(result) > 1:
            named = ", ".join(_labels(item.get("metric")) for item in result[:_SERIES_NAMED]
                              if isinstance(item, dict))
            more = f" and {len(result) - _SERIES_NAMED} more" if len(result) > _SERIES_NAMED else ""
            return PromAnswer("several", f"{len(result)} series ({named}{more}): aggregate it to one, "
                                         "e.g. with sum() or max()")
        point, series = result[0].get("value") if isinstance(result[0], dict) else None, result[0]
    else:
        return PromAnswer("wrong_type", f"result type {kind} (the query must give a scalar or one series)")
    try:
        at, value = float(point[0]), float(point[1])
    except (TypeError, ValueError, IndexError):
        return PromAnswer("error", "answer has no number")
    if not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        where = f" for {_labels(series.get('metric'))}" if isinstance(series, dict) and series.get("metric") else ""
        return PromAnswer("not_finite", f"value is {shown}{where} (e.g. a ratio over no requests)", at=at)
    return PromAnswer("value", f"value {value:g}", value=value, at=at)


async def ask(source: PromSource, secrets: SecretStore, *, timeout: float, pool: HttpPool | None = None,
              path: str = "/api/v1/query", params: dict[str, str] | None = None) -> PromAnswer:
    """One GET of the API under `timeout` (the server is told the same limit); never raises for a bad answer."""
    base = secrets.expand(source.url).rstrip("/")
    query = {"query": source.query, "timeout": f"{max(timeout, 0.001):g}s", **(params or {})}
    headers = _headers(source, secrets)  # a secret that cannot be read fails the sample, naming the secret
    own = pool is None
    pool = pool or HttpPool(max_idle_per_origin=1)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            response = await pool.request("GET", f"{base}{path}?{urlencode(query)}", headers,
                                          verify=source.verify_tls)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        return PromAnswer("unreachable", f"no answer from {address(base)} within {format_duration(timeout)}")
    except Exception as exc:
        why = error_reason(exc, timeout=timeout, host=address(base))
        return PromAnswer("unreachable", _short(f"{address(base)} unreachable: {why}"))
    finally:
        if own:
            await pool.aclose()
    latency = round((time.perf_counter() - started) * 1000.0, 1)
    if response.status != 200:
        error_type, message = _server_error(response.status, response.body)
        kind: Kind = "rejected" if error_type == "bad_data" else "error"
        answer = PromAnswer(kind, _short(f"server said {error_type}: {message}"))
    else:
        answer = _read(response.body)
    answer.latency_ms = latency
    return answer


def judge(source: PromSource, answer: PromAnswer) -> ProbeOutcome:
    """A probe outcome: healthy only for a finite value that meets the condition."""
    wanted = condition_text(source.condition)
    if answer.kind != "value" or answer.value is None:
        return ProbeOutcome(False, answer.latency_ms, answer.message, unknown=answer.kind in UNKNOWN_KINDS)
    if not holds(source.condition, answer.value):
        return ProbeOutcome(False, answer.latency_ms, f"value {answer.value:g} (expected {wanted})",
                            value=answer.value)
    return ProbeOutcome(True, answer.latency_ms, f"value {answer.value:g} ({wanted})", value=answer.value)


async def sample_prometheus(probe: PromSource, secrets: SecretStore, pool: HttpPool | None, timeout: float
                            ) -> ProbeOutcome:
    """One sample of a `prometheus` probe."""
    return judge(probe, await ask(probe, secrets, timeout=timeout, pool=pool))


def stamp(at: float | None) -> str:
    """Unix seconds as `HH:MM:SSZ` UTC (the day is in the event's own timestamp)."""
    if at is None:
        return "–"
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%SZ")
