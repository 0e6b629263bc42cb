"""One sample of a probe (HTTP, TCP, command, SSH, SQL): failures are data (a short reason), never exceptions."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rollback_tui.errors import RollbackError
from rollback_tui.health.http11 import HttpPool, HttpProtocolError
from rollback_tui.plan.models import Plan
from rollback_tui.plan.probes import CommandProbe, HttpProbe, PrometheusProbe, SqlProbe, SshProbe, TcpProbe
from rollback_tui.plan.types import format_duration
from rollback_tui.secrets import SecretStore

if TYPE_CHECKING:
    from rollback_tui.plan.probes import Probe

T = TypeVar("T")
_REASON_MAX = 200


@dataclass
class ProbeOutcome:
    """The result of one sample: passed or not, how long it took, why, and whether it passed too slowly."""

    ok: bool
    latency_ms: float | None
    reason: str
    degraded: bool = False
    unknown: bool = False
    """The sample says nothing about the system (a metrics query without one finite value, its server down)."""
    value: float | None = None
    """The number a metrics query gave."""


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


def error_reason(exc: BaseException, *, timeout: float | None = None, host: str = "") -> str:
    """A short, operator-readable reason for a network or OS error (walks the exception's cause chain)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for err in seen:
        if isinstance(err, ssl.SSLCertVerificationError):
            return _short(f"TLS certificate not valid: {err.verify_message or err.reason}")
    for err in seen:
        if isinstance(err, ssl.SSLError):
            return _short(f"TLS error: {err.reason or err}")
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, socket.gaierror):
            where = f" for {host}" if host else ""
            return _short(f"DNS lookup failed{where}: {err.strerror or err}")
        if isinstance(err, (TimeoutError, asyncio.TimeoutError)):
            return f"timed out after {format_duration(timeout)}" if timeout is not None else "timed out"
        if isinstance(err, ConnectionResetError):
            return "connection reset by peer"
    for err in seen:
        if isinstance(err, OSError) and err.strerror:
            return _short(err.strerror[0].lower() + err.strerror[1:])
    name = type(exc).__name__
    text = str(exc).strip()
    if isinstance(exc, (RollbackError, HttpProtocolError)):
        return _short(text.splitlines()[0] if text else name)
    return _short(f"{name}: {text}" if text else name)


# ---------------------------------------------------------------- HTTP


def _json_path(document: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path (`checks.db`, `items.0.state`) into decoded JSON; (found, value)."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _statuses(expect: int | list[int]) -> list[int]:
    return [expect] if isinstance(expect, int) else list(expect)


async def _sample_http(probe: HttpProbe, secrets: SecretStore, pool: HttpPool | None) -> ProbeOutcome:
    own = pool is None
    pool = pool or HttpPool(max_idle_per_origin=1)
    try:
        url = secrets.expand(probe.url)
        headers = {name: secrets.expand(value) for name, value in probe.headers.items()}
        started = time.perf_counter()
        try:
            response = await pool.request(probe.method, url, headers, verify=probe.verify_tls)
        except Exception as exc:
            return ProbeOutcome(False, None, error_reason(exc, timeout=probe.timeout, host=_host_of(url)))
        return _judge_http(probe, response.status, response.body, _ms(started))
    finally:
        if own:
            await pool.aclose()


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].rsplit(":", 1)[0]


def _judge_http(probe: HttpProbe, status: int, body: bytes, latency: float) -> ProbeOutcome:
    expected = _statuses(probe.expect_status)
    if status not in expected:
        wanted = " or ".join(str(code) for code in expected)
        return ProbeOutcome(False, latency, f"status {status} (expected {wanted})")
    if probe.body_contains is not None and probe.body_contains not in body.decode(errors="replace"):
        return ProbeOutcome(False, latency, _short(f"body does not contain {probe.body_contains!r}"))
    if probe.json_field is not None:
        try:
            document = json.loads(body)
        except ValueError:
            return ProbeOutcome(False, latency, "body is not JSON")
        found, value = _json_path(document, probe.json_field)
        if not found:
            return ProbeOutcome(False, latency, _short(f"JSON field {probe.json_field} missing"))
        # json_equals left out means "the field is present"
        if probe.json_equals is not None and value != probe.json_equals:
            observed, wanted = json.dumps(value), json.dumps(probe.json_equals)
            return ProbeOutcome(False, latency, _short(f"{probe.json_field} is {observed} (expected {wanted})"))
    return _timed_success(f"status {status} in {latency:.0f} ms", latency, probe.max_latency)


def _timed_success(reason: str, latency: float, max_latency: float | None) -> ProbeOutcome:
    if max_latency is not None and latency > max_latency * 1000.0:
        return ProbeOutcome(True, latency, f"latency {latency:.0f} ms > {max_latency * 1000.0:.0f} ms", degraded=True)
    return ProbeOutcome(True, latency, reason)


# ---------------------------------------------------------------- TCP and command


async def _sample_tcp(probe: TcpProbe) -> ProbeOutcome:
    started = time.perf_counter()
    try:
        _, writer = await asyncio.open_connection(probe.host, probe.port)
    except Exception as exc:
        return ProbeOutcome(False, None, error_reason(exc, timeout=probe.timeout, host=probe.host))
    latency = _ms(started)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # the peer may reset a connection we only opened to prove it accepts
    return _timed_success(f"connected in {latency:.0f} ms", latency, getattr(probe, "max_latency", None))


async def _sample_command(probe: CommandProbe, secrets: SecretStore) -> ProbeOutcome:
    from rollback_tui.adapters.proc import capture

    argv = [secrets.expand(arg) for arg in probe.argv]
    started = time.perf_counter()
    try:
        # capture kills the whole process group when the timeout cancels it
        result = await capture(argv, timeout=probe.timeout)
    except FileNotFoundError:
        return ProbeOutcome(False, None, _short(f"command not found: {probe.argv[0]}"))
    except PermissionError:
        return ProbeOutcome(False, None, _short(f"permission denied running {probe.argv[0]}"))
    except (TimeoutError, asyncio.TimeoutError):
        return ProbeOutcome(False, None, f"timed out after {format_duration(probe.timeout)}")
    latency = _ms(started)
    if result.returncode != probe.expect_exit:
        last = next((line for line in reversed(result.stderr_tail + result.stdout_tail) if line.strip()), "")
        detail = f": {last.strip()}" if last else ""
        return ProbeOutcome(False, latency, _short(f"exit {result.returncode} (expected {probe.expect_exit}){detail}"))
    if probe.output_contains is not None:
        output = "\n".join(result.stdout_tail + result.stderr_tail)
        if probe.output_contains not in output:
            return ProbeOutcome(False, latency, _short(f"output does not contain {probe.output_contains!r}"))
    return _timed_success(f"exit {result.returncode} in {latency:.0f} ms", latency, getattr(probe, "max_latency", None))


# ---------------------------------------------------------------- SSH


async def _sample_ssh(probe: SshProbe, plan: Plan, secrets: SecretStore) -> ProbeOutcome:
    group = plan.host_groups.get(probe.group)
    if group is None:
        return ProbeOutcome(False, None, _short(f"host group {probe.group!r} is not declared under host_groups:"))
    try:
        from rollback_tui.adapters.ssh import run_on_group
    except ImportError as exc:
        return ProbeOutcome(False, None, _short(f"SSH probes unavailable: {exc}"))
    started = time.perf_counter()
    # the deadline bounds the whole fan-out: hosts still queued then count as timed out, not lost
    deadline = asyncio.get_running_loop().time() + probe.timeout
    outcomes = await run_on_group(group, secrets.expand(probe.command), secrets=secrets, timeout=probe.timeout,
                                  deadline=deadline, expect_exit=probe.expect_exit)
    latency = _ms(started)
    total = len(outcomes)
    passed = [outcome for outcome in outcomes if outcome.status == "ok"]
    failed = [outcome for outcome in outcomes if outcome.status != "ok"]
    need = total if probe.min_ok is None else min(probe.min_ok, total)
    summary = f"{len(passed)}/{total} hosts passed"
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        summary += f"; {first.error or f'host {first.host}: {first.status}'}{more}"
    if len(passed) < need:
        return ProbeOutcome(False, latency, _short(f"{summary} (need {need})"))
    return _timed_success(_short(summary), latency, getattr(probe, "max_latency", None))


# ---------------------------------------------------------------- SQL


def sqlite_path(url: str) -> str:
    """The file of a `sqlite:///relative.db` or `sqlite:////absolute.db` URL (SQLAlchemy's convention)."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        raise ValueError(f"a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db, not {url!r}")
    return rest[3:].split("?", 1)[0]


def _query_sqlite(url: str, query: str, timeout: float) -> tuple[bool, Any]:
    import sqlite3
    from urllib.parse import quote

    path = sqlite_path(url)
    # read-only: a health probe must never create or change the database it watches
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    deadline = time.monotonic() + timeout
    # a runaway query is interrupted from inside sqlite, so the thread does not outlive the sample
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    try:
        row = conn.execute(query).fetchone()
    finally:
        conn.close()
    return (row is not None), (row[0] if row else None)


def _query_postgres(url: str, query: str, timeout: float) -> tuple[bool, Any]:
    import psycopg2  # lazily: only plans with PostgreSQL probes pay for it

    dsn = "postgresql://" + url.split("://", 1)[1]  # drop a SQLAlchemy driver suffix such as +psycopg2
    conn = psycopg2.connect(dsn, connect_timeout=max(1, math.ceil(timeout)),
                            options=f"-c statement_timeout={max(1, int(timeout * 1000))}")
    try:
        conn.set_session(readonly=True, autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute(query)
            row = cursor.fetchone()
    finally:
        conn.close()
    return (row is not None), (row[0] if row else None)


def _same(value: Any, expect: Any) -> bool:
    if value == expect:
        return True
    if isinstance(value, (int, float)) and isinstance(expect, (int, float)):
        return math.isclose(value, expect)
    return str(value) == str(expect)


async def _in_thread(executor: Executor | None, func: Callable[..., T], *args: Any) -> T:
    if executor is None:
        return await asyncio.to_thread(func, *args)
    return await asyncio.get_running_loop().run_in_executor(executor, func, *args)


async def _sample_sql(probe: SqlProbe, secrets: SecretStore, executor: Executor | None) -> ProbeOutcome:
    url = secrets.expand(probe.url)
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        query = _query_sqlite
    elif scheme in ("postgresql", "postgres"):
        query = _query_postgres
    else:
        return ProbeOutcome(False, None, _short(f"unsupported database URL scheme {scheme!r} (sqlite or postgresql)"))
    started = time.perf_counter()
    try:
        found, value = await _in_thread(executor, query, url, probe.query, probe.timeout)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "interrupted" in first or "statement timeout" in first:
            return ProbeOutcome(False, None, f"timed out after {format_duration(probe.timeout)}")
        return ProbeOutcome(False, None, _short(f"query failed: {first}"))
    latency = _ms(started)
    if not found:
        return ProbeOutcome(False, latency, "query returned no rows")
    if probe.expect is not None and not _same(value, probe.expect):
        return ProbeOutcome(False, latency, _short(f"value {value!r} (expected {probe.expect!r})"))
    return _timed_success(_short(f"value {value!r} in {latency:.0f} ms"), latency, getattr(probe, "max_latency", None))


# ---------------------------------------------------------------- dispatch


async def _dispatch(probe: Probe, plan: Plan, secrets: SecretStore, client: HttpPool | None,
                    executor: Executor | None) -> ProbeOutcome:
    if isinstance(probe, HttpProbe):
        return await _sample_http(probe, secrets, client)
    if isinstance(probe, TcpProbe):
        return await _sample_tcp(probe)
    if isinstance(probe, CommandProbe):
        return await _sample_command(probe, secrets)
    if isinstance(probe, SshProbe):
        return await _sample_ssh(probe, plan, secrets)
    if isinstance(probe, SqlProbe):
        return await _sample_sql(probe, secrets, executor)
    if isinstance(probe, PrometheusProbe):
        from rollback_tui.health.prometheus import sample_prometheus  # it builds on this module

        return await sample_prometheus(probe, secrets, client, probe.timeout)
    return ProbeOutcome(False, None, f"unknown probe kind {getattr(probe, 'kind', '?')!r}")


def _guard(probe: Probe) -> float:
    # SSH fan-out and commands enforce the timeout inside (naming the host that hung, killing the process
    # group); the outer guard leaves them room to do so and only catches what they miss
    if isinstance(probe, (SshProbe, CommandProbe)):
        return probe.timeout + 2.0
    if isinstance(probe, PrometheusProbe):  # its own timeout names the server that did not answer
        return probe.timeout + 1.0
    return probe.timeout


async def sample(probe: Probe, *, plan: Plan, secrets: SecretStore, client: HttpPool | None = None,
                 executor: Executor | None = None) -> ProbeOutcome:
    """Take one sample of a probe under its timeout; every failure (including a bug) becomes a reason.

    `client` is the keep-alive pool HTTP probes share (a temporary one is made when None); `executor` runs SQL
    queries (default: asyncio.to_thread). Reasons are redacted with the secret store's redactor.
    """
    try:
        async with asyncio.timeout(_guard(probe)):
            outcome = await _dispatch(probe, plan, secrets, client, executor)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        outcome = ProbeOutcome(False, None, f"timed out after {format_duration(probe.timeout)}")
    except Exception as exc:  # the boundary: a probe never stops the session
        outcome = ProbeOutcome(False, None, error_reason(exc, timeout=probe.timeout))
    outcome.reason = secrets.redactor(outcome.reason)
    return outcome
