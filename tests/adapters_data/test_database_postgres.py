"""Alembic and SQL adapters against a real PostgreSQL started from the machine's packages; the password in the URL
is the canary secret and must never show. Skipped with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.loopback.postgres import PostgresUnavailable, find_binaries, start_postgres
from rollback_tui.plan.actions import AlembicAction, SqlAction
from rollback_tui.secrets import MASK

from .util import CANARY, FIXTURE, alembic_upgrade

pytestmark = pytest.mark.postgres
HEAD, MIDDLE = "c3d4e5f6a1b2", "b2c3d4e5f6a1"
_names = itertools.count()


def _available() -> str:
    try:
        find_binaries()
    except PostgresUnavailable as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _available()
    if reason:
        pytest.skip(reason)
    url, stop = start_postgres(tmp_path_factory.mktemp("pg"), password=CANARY)
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def pg(server: str) -> dict[str, str]:
    """A fresh database; `plan_url` carries `${secrets.PGPASS}` as a plan would, `real_url` the password."""
    import psycopg2

    name = f"app{next(_names)}"
    conn = psycopg2.connect(server)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    real = server.rsplit("/", 1)[0] + f"/{name}"
    plan = real.replace(quote(CANARY, safe=""), "${secrets.PGPASS}")
    assert plan != real
    return {"real_url": real, "plan_url": plan}


def execute(url: str, statement: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            rows = cursor.fetchall() if cursor.description else None
        conn.commit()
        return rows
    finally:
        conn.close()


def assert_no_secret(collected: Any, *texts: Any) -> None:
    everything = collected.text + "\n" + "\n".join(str(text) for text in texts)
    assert CANARY not in everything and quote(CANARY, safe="") not in everything
    assert MASK not in collected.text  # not even masked: the password was never put in a command line or a log


@pytest.fixture
def migrated(pg: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = tmp_path / "migrations"
    shutil.copytree(FIXTURE, env)
    alembic_upgrade(env / "alembic.ini", pg["real_url"].replace("postgresql:", "postgresql+psycopg2:"))
    execute(pg["real_url"], "INSERT INTO users (id, name, nickname) VALUES (1, 'ada', 'a'), (2, 'bob', NULL);"
                            "INSERT INTO orders (id, user_id, total) VALUES (1, 1, 10);"
                            "INSERT INTO audit (event) VALUES ('deploy 2.4.0')")
    return {**pg, "ini": str(env / "alembic.ini")}


async def test_alembic_downgrade_on_postgres(migrated: dict, ctx: ActionContext, collected: Any) -> None:
    act = AlembicAction.model_validate({
        "kind": "alembic", "id": "schema", "config": migrated["ini"], "url": migrated["plan_url"],
        "revision": MIDDLE, "safety": {"row_count_tables": ["users", "public.orders"]}})
    description = await describe_safely(act, ctx)
    assert description.summary.endswith(f"from {HEAD} to {MIDDLE}: 1 revision(s)")
    assert "DROP TABLE audit;" in description.details
    assert "ALTER TABLE users DROP COLUMN nickname;" in description.details
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    backup = Path(result.details["backup"])
    assert backup.suffix == ".dump" and backup.read_bytes().startswith(b"PGDMP")
    assert result.details["row_counts_after"] == {"users": 2, "public.orders": 1}
    assert execute(migrated["real_url"], "SELECT version_num FROM alembic_version") == [(MIDDLE,)]
    checks = await verify_safely(act, ctx)
    assert [check.ok for check in checks] == [True, True, True]
    assert_no_secret(collected, description, result, checks)


async def test_sql_script_on_postgres(migrated: dict, ctx: ActionContext, collected: Any, tmp_path: Path) -> None:
    script = tmp_path / "rollback.sql"
    script.write_text("UPDATE users SET nickname = NULL;\nDELETE FROM audit;\n")
    act = SqlAction.model_validate({
        "kind": "sql", "id": "fix", "url": migrated["plan_url"], "script": str(script),
        "verify_query": "SELECT count(*) FROM users WHERE nickname IS NOT NULL", "verify_equals": 0})
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert [check.ok for check in await verify_safely(act, ctx)] == [True]
    assert_no_secret(collected, result)


async def test_failing_postgres_script_rolls_back(migrated: dict, ctx: ActionContext, collected: Any,
                                                  tmp_path: Path) -> None:
    script = tmp_path / "broken.sql"
    script.write_text("UPDATE users SET name = 'changed';\nSELECT * FROM\n  customers;\n")
    act = SqlAction.model_validate({"kind": "sql", "id": "fix", "url": migrated["plan_url"], "script": str(script),
                                    "safety": {"backup": False}})
    result = await run_safely(act, ctx)
    assert result.status == "failed"
    assert 'relation "customers" does not exist' in result.error and "rolled back" in result.error
    assert execute(migrated["real_url"], "SELECT name FROM users WHERE id = 1") == [("ada",)]
    assert_no_secret(collected, result)


async def test_wrong_user_fails_without_leaking_the_password(pg: dict, ctx: ActionContext, collected: Any,
                                                             tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    url = pg["plan_url"].replace("rollback:", "intruder:")
    act = SqlAction.model_validate({"kind": "sql", "id": "fix", "url": url, "script": str(script)})
    result = await run_safely(act, ctx)
    assert result.status == "failed" and "password authentication failed" in result.error
    checks = await verify_safely(AlembicAction.model_validate({
        "kind": "alembic", "id": "schema", "config": str(FIXTURE / "alembic.ini"), "url": url, "revision": MIDDLE}),
        ctx)
    assert not checks[0].ok and "password authentication failed" in checks[0].observed
    assert_no_secret(collected, result, checks)
