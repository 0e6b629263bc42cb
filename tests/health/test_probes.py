"""One sample of each probe kind against real servers, processes and databases: failures become reasons."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from rollback_tui.health.http11 import HttpPool
from rollback_tui.health.probes import ProbeOutcome, sample, sqlite_path
from rollback_tui.plan.models import SecretSpec
from rollback_tui.plan.probes import Probe
from rollback_tui.secrets import MASK, SecretStore

from .conftest import HttpServer, TcpListener
from .util import make_plan, wait_until

PROBE = TypeAdapter(Probe)
PLAN = make_plan()


def probe(**fields: Any) -> Any:
    fields.setdefault("id", "p")
    return PROBE.validate_python(fields)


async def take(spec: dict[str, Any], secrets: SecretStore | None = None) -> ProbeOutcome:
    return await sample(probe(**spec), plan=PLAN, secrets=secrets or SecretStore({}))


# ---------------------------------------------------------------- HTTP


async def test_http_ok_with_status_body_and_json_field(http_server: HttpServer) -> None:
    http_server.set("/health", 200, json.dumps({"status": "ok", "checks": {"db": "up"}, "items": [{"v": 2}]}))
    outcome = await take({"kind": "http", "url": http_server.url("/health"), "body_contains": '"ok"',
                          "json_field": "checks.db", "json_equals": "up"})
    assert outcome.ok and not outcome.degraded
    assert outcome.reason.startswith("status 200 in ")
    assert outcome.latency_ms is not None and outcome.latency_ms >= 0
    assert (await take({"kind": "http", "url": http_server.url("/health"), "json_field": "items.0.v",
                        "json_equals": 2})).ok
    # a field with no expected value only has to be present
    assert (await take({"kind": "http", "url": http_server.url("/health"), "json_field": "status"})).ok


async def test_http_wrong_status(http_server: HttpServer) -> None:
    http_server.set("/health", 503, "{}")
    outcome = await take({"kind": "http", "url": http_server.url("/health")})
    assert not outcome.ok and outcome.reason == "status 503 (expected 200)"
    outcome = await take({"kind": "http", "url": http_server.url("/health"), "expect_status": [200, 204]})
    assert outcome.reason == "status 503 (expected 200 or 204)"
    assert (await take({"kind": "http", "url": http_server.url("/health"), "expect_status": [200, 503]})).ok


async def test_http_body_and_json_mismatches(http_server: HttpServer) -> None:
    http_server.set("/text", 200, "all good")
    http_server.set("/json", 200, json.dumps({"status": "failing"}))
    url_text, url_json = http_server.url("/text"), http_server.url("/json")
    assert (await take({"kind": "http", "url": url_text, "json_field": "status"})).reason == "body is not JSON"
    assert (await take({"kind": "http", "url": url_text, "body_contains": "bad"})).reason == \
        "body does not contain 'bad'"
    assert (await take({"kind": "http", "url": url_json, "json_field": "checks.db"})).reason == \
        "JSON field checks.db missing"
    outcome = await take({"kind": "http", "url": url_json, "json_field": "status", "json_equals": "ok"})
    assert not outcome.ok and outcome.reason == 'status is "failing" (expected "ok")'


async def test_http_slow_answer_is_a_degraded_pass(http_server: HttpServer) -> None:
    http_server.set("/slow", 200, "{}", delay=0.15)
    outcome = await take({"kind": "http", "url": http_server.url("/slow"), "max_latency": "50ms"})
    assert outcome.ok and outcome.degraded
    assert outcome.reason.startswith("latency ") and outcome.reason.endswith(" ms > 50 ms")


async def test_http_timeout(http_server: HttpServer) -> None:
    http_server.set("/hang", 200, "{}", delay=2.0)
    outcome = await take({"kind": "http", "url": http_server.url("/hang"), "timeout": "200ms"})
    assert not outcome.ok and outcome.reason == "timed out after 0.2s" and outcome.latency_ms is None


async def test_http_connection_refused_and_dns_failure(closed_port: int) -> None:
    outcome = await take({"kind": "http", "url": f"http://127.0.0.1:{closed_port}/health"})
    assert not outcome.ok and outcome.reason == "connection refused"
    outcome = await take({"kind": "http", "url": "http://no-such-host.invalid/health"})
    assert not outcome.ok and outcome.reason.startswith("DNS lookup failed for no-such-host.invalid")


async def test_http_self_signed_certificate_is_invalid_unless_verification_is_off(tls_server: HttpServer) -> None:
    tls_server.set("/health", 200, "{}")
    outcome = await take({"kind": "http", "url": tls_server.url("/health")})
    assert not outcome.ok
    assert outcome.reason.startswith("TLS certificate not valid: ") and "self" in outcome.reason
    assert (await take({"kind": "http", "url": tls_server.url("/health"), "verify_tls": False})).ok


async def test_http_secrets_are_expanded_at_use_and_masked_in_reasons(http_server: HttpServer) -> None:
    http_server.set("/health", 401, "{}")
    store = SecretStore({"TOKEN": SecretSpec(env="HEALTH_TOKEN")}, environ={"HEALTH_TOKEN": "s3cret-canary"})
    outcome = await take({"kind": "http", "url": http_server.url("/health"),
                          "headers": {"Authorization": "Bearer ${secrets.TOKEN}"}}, store)
    assert http_server.headers_seen[-1]["Authorization"] == "Bearer s3cret-canary"
    assert outcome.reason == "status 401 (expected 200)"
    # a secret that ends up in a reason (here: in the host name a DNS lookup failed on) is masked
    outcome = await take({"kind": "http", "url": "http://${secrets.TOKEN}.invalid/health"}, store)
    assert not outcome.ok and "s3cret-canary" not in outcome.reason
    assert outcome.reason.startswith(f"DNS lookup failed for {MASK}.invalid")


async def test_http_shared_client_reuses_one_connection(http_server: HttpServer) -> None:
    http_server.set("/health", 200, "{}")
    connections: list[int] = []
    original = http_server.server.process_request

    def counting(request: Any, address: Any) -> None:
        connections.append(1)
        original(request, address)

    http_server.server.process_request = counting  # type: ignore[method-assign]
    clients = HttpPool()
    try:
        for _ in range(5):
            outcome = await sample(probe(kind="http", url=http_server.url("/health")), plan=PLAN,
                                   secrets=SecretStore({}), client=clients)
            assert outcome.ok
    finally:
        await clients.aclose()
    assert http_server.hits["/health"] == 5 and len(connections) == 1


async def test_http_unsupported_url_is_a_reason() -> None:
    outcome = await take({"kind": "http", "url": "ftp://127.0.0.1/x"})
    assert not outcome.ok and outcome.reason.startswith("unsupported URL")


# ---------------------------------------------------------------- TCP


async def test_tcp_listener_and_closed_port(tcp_listener: TcpListener, closed_port: int) -> None:
    outcome = await take({"kind": "tcp", "host": "127.0.0.1", "port": tcp_listener.port})
    assert outcome.ok and outcome.reason.startswith("connected in ")
    outcome = await take({"kind": "tcp", "host": "127.0.0.1", "port": closed_port})
    assert not outcome.ok and outcome.reason == "connection refused"
    outcome = await take({"kind": "tcp", "host": "no-such-host.invalid", "port": 80})
    assert not outcome.ok and outcome.reason.startswith("DNS lookup failed")


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listener whose accept queue is full, so a new connect hangs in SYN-SENT (a black hole on loopback)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


async def test_tcp_connect_that_hangs_times_out(full_backlog: int) -> None:
    outcome = await take({"kind": "tcp", "host": "127.0.0.1", "port": full_backlog, "timeout": "300ms"})
    assert not outcome.ok and outcome.reason == "timed out after 0.3s"


# ---------------------------------------------------------------- command


async def test_command_exit_status_and_output_match() -> None:
    ok = await take({"kind": "command", "argv": [sys.executable, "-c", "print('ready')"],
                     "output_contains": "ready"})
    assert ok.ok and ok.reason.startswith("exit 0 in ")
    failing = "import sys; print('db: connection lost', file=sys.stderr); sys.exit(3)"
    bad = await take({"kind": "command", "argv": [sys.executable, "-c", failing]})
    assert not bad.ok and bad.reason == "exit 3 (expected 0): db: connection lost"
    wrong = await take({"kind": "command", "argv": [sys.executable, "-c", "print('starting')"],
                        "output_contains": "ready"})
    assert wrong.reason == "output does not contain 'ready'"
    expected = await take({"kind": "command", "argv": [sys.executable, "-c", "raise SystemExit(2)"],
                           "expect_exit": 2})
    assert expected.ok


async def test_command_not_found() -> None:
    outcome = await take({"kind": "command", "argv": ["/nonexistent/healthcheck"]})
    assert not outcome.ok and outcome.reason == "command not found: /nonexistent/healthcheck"


async def test_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"import os, subprocess, time; p = subprocess.Popen(['sleep', '30']); " \
             f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(30)"
    outcome = await take({"kind": "command", "argv": [sys.executable, "-c", script], "timeout": "1s"})
    assert not outcome.ok and outcome.reason == "timed out after 1s"
    grandchild = int(pid_file.read_text())

    def gone() -> bool:
        try:
            # a zombie is dead too: it only waits for init to reap it
            return Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    # SIGTERM reached the whole group, the grandchild included (it may take a moment to die)
    await wait_until(gone, timeout=10)


# ---------------------------------------------------------------- SQL


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript("create table orders(id integer primary key, state text);"
                       "insert into orders(state) values ('paid'), ('paid'), ('open');")
    conn.commit()
    conn.close()
    return path


async def test_sql_sqlite_expected_value(sqlite_db: Path) -> None:
    url = f"sqlite:///{sqlite_db}"  # an absolute path gives four slashes
    assert url.startswith("sqlite:////")
    ok = await take({"kind": "sql", "url": url, "query": "select count(*) from orders", "expect": 3})
    assert ok.ok and ok.reason.startswith("value 3 in ")
    assert (await take({"kind": "sql", "url": url, "query": "select count(*) from orders", "expect": "3"})).ok
    wrong = await take({"kind": "sql", "url": url, "query": "select count(*) from orders where state='paid'",
                        "expect": 3})
    assert not wrong.ok and wrong.reason == "value 2 (expected 3)"
    none = await take({"kind": "sql", "url": url, "query": "select id from orders where state='lost'"})
    assert not none.ok and none.reason == "query returned no rows"
    assert (await take({"kind": "sql", "url": url, "query": "select id from orders"})).ok


async def test_sql_errors_are_reasons_and_never_create_a_database(tmp_path: Path, sqlite_db: Path) -> None:
    missing = tmp_path / "missing.db"
    outcome = await take({"kind": "sql", "url": f"sqlite:///{missing}", "query": "select 1"})
    assert not outcome.ok and outcome.reason.startswith("query failed: unable to open database")
    assert not missing.exists()
    outcome = await take({"kind": "sql", "url": f"sqlite:///{sqlite_db}", "query": "select * from nope"})
    assert outcome.reason == "query failed: no such table: nope"
    outcome = await take({"kind": "sql", "url": f"sqlite:///{sqlite_db}", "query": "delete from orders"})
    assert not outcome.ok and "readonly" in outcome.reason
    outcome = await take({"kind": "sql", "url": "mysql://db/app", "query": "select 1"})
    assert outcome.reason == "unsupported database URL scheme 'mysql' (sqlite or postgresql)"


async def test_sql_runaway_query_is_interrupted(sqlite_db: Path) -> None:
    query = "with recursive n(x) as (select 1 union all select x + 1 from n) select count(*) from n"
    threads = threading.active_count()
    outcome = await take({"kind": "sql", "url": f"sqlite:///{sqlite_db}", "query": query, "timeout": "300ms"})
    assert not outcome.ok and outcome.reason == "timed out after 0.3s"
    # the worker thread was interrupted by sqlite itself, not left running
    await wait_until(lambda: threading.active_count() <= threads + 1, timeout=5)


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///relative/app.db") == "relative/app.db"
    assert sqlite_path("sqlite:////abs/app.db") == "/abs/app.db"
    with pytest.raises(ValueError):
        sqlite_path("sqlite://app.db")


@pytest.mark.postgres
async def test_sql_postgresql(tmp_path: Path) -> None:
    postgres = pytest.importorskip("rollback_tui.loopback.postgres",
                                   reason="rollback_tui.loopback.postgres is not written yet")
    try:
        url, stop = await asyncio.to_thread(postgres.start_postgres, tmp_path)
    except postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    try:
        # the password goes through the secret store, as a plan would write it
        password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        store = SecretStore({"PG": SecretSpec(env="PG_PASSWORD")}, environ={"PG_PASSWORD": password})
        template = url.replace(f":{password}@", ":${secrets.PG}@")
        ok = await take({"kind": "sql", "url": template, "query": "select 40 + 2", "expect": 42}, store)
        assert ok.ok, ok.reason
        bad = await take({"kind": "sql", "url": template, "query": "select * from nope"}, store)
        assert not bad.ok and bad.reason.startswith('query failed: relation "nope" does not exist')
        slow = await take({"kind": "sql", "url": template, "query": "select pg_sleep(5)", "timeout": "500ms"}, store)
        assert not slow.ok and slow.reason == "timed out after 0.5s"
        wrong = await take({"kind": "sql", "url": url.replace(password, "wrong-password"), "query": "select 1"},
                           store)
        assert not wrong.ok and "password authentication failed" in wrong.reason
        assert password not in ok.reason + bad.reason + slow.reason + wrong.reason
    finally:
        await asyncio.to_thread(stop)


# ---------------------------------------------------------------- boundary


async def test_a_secret_that_cannot_be_read_is_a_reason_not_an_exception() -> None:
    store = SecretStore({"TOKEN": SecretSpec(env="UNSET_HEALTH_VAR")}, environ={})
    outcome = await take({"kind": "http", "url": "http://127.0.0.1:1/${secrets.TOKEN}"}, store)
    assert not outcome.ok and "UNSET_HEALTH_VAR is not set" in outcome.reason


async def test_ssh_probe_on_an_undeclared_group_is_a_reason() -> None:
    outcome = await take({"kind": "ssh", "group": "web", "command": "true"})
    assert not outcome.ok and outcome.reason == "host group 'web' is not declared under host_groups:"
