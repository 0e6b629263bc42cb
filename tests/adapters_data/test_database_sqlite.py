"""Alembic and SQL-script adapters against real SQLite databases and real Alembic migrations."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.adapters.database import AlembicAdapter
from rollback_tui.plan.actions import AlembicAction, SqlAction

from .util import FIXTURE, alembic_upgrade

HEAD, MIDDLE, FIRST = "c3d4e5f6a1b2", "b2c3d4e5f6a1", "a1b2c3d4e5f6"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once per module (a real `alembic upgrade head`, then rows); each test gets a copy."""
    base = tmp_path_factory.mktemp("template")
    shutil.copytree(FIXTURE, base / "migrations")
    path = base / "app.db"
    alembic_upgrade(base / "migrations" / "alembic.ini", f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO users (id, name, nickname) VALUES (?, ?, ?)",
                         [(1, "ada", "a"), (2, "bob", None), (3, "cy", "c")])
        conn.executemany("INSERT INTO orders (id, user_id, total) VALUES (?, ?, ?)", [(1, 1, 10), (2, 3, 20)])
        conn.execute("INSERT INTO audit (event) VALUES ('deploy 2.4.0')")
    conn.close()
    return base


@pytest.fixture
def app_db(template: Path, tmp_path: Path) -> dict[str, Any]:
    """The fixture migrations and a SQLite database at head with rows, in this test's temp dir."""
    env = tmp_path / "migrations"
    shutil.copytree(template / "migrations", env)
    path = tmp_path / "app.db"
    shutil.copyfile(template / "app.db", path)
    return {"ini": str(env / "alembic.ini"), "url": f"sqlite:///{path}", "path": path, "env": env}


def alembic(app_db: dict[str, Any], revision: str, **fields: Any) -> AlembicAction:
    return AlembicAction.model_validate({"kind": "alembic", "id": "schema", "config": app_db["ini"],
                                         "url": app_db["url"], "revision": revision, **fields})


def revision_of(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return rows[0][0] if rows else "base"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_describe_shows_offline_sql(app_db: dict, ctx: ActionContext) -> None:
    description = await describe_safely(alembic(app_db, MIDDLE, safety={"row_count_tables": ["users"]}), ctx)
    assert description.summary == f"alembic downgrade {app_db['url']} from {HEAD} to {MIDDLE}: 1 revision(s)"
    assert f"  {HEAD}: add users.nickname and an audit table (release 2.4.0, the bad one)" in description.details
    assert "DROP TABLE audit;" in description.details
    assert "ALTER TABLE users DROP COLUMN nickname;" in description.details
    assert "row counts must not change: users" in description.details
    assert "destroys data: DROP TABLE audit;" in description.risks
    assert revision_of(app_db["path"]) == HEAD  # describe changed nothing


async def test_downgrade_with_backup_and_row_counts(app_db: dict, ctx: ActionContext, collected: Any) -> None:
    act = alembic(app_db, MIDDLE, safety={"row_count_tables": ["users", "orders"]})
    before = await verify_safely(act, ctx)
    assert not before[0].ok and before[0].observed == HEAD and before[0].expected == MIDDLE
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert revision_of(app_db["path"]) == MIDDLE
    assert "audit" not in tables(app_db["path"])
    assert result.details["previous_revision"] == HEAD and result.details["revision"] == MIDDLE
    assert result.details["row_counts_before"] == result.details["row_counts_after"] == {"users": 3, "orders": 2}
    assert result.details["integrity_before"] == result.details["integrity_after"] == "ok"
    backup = Path(result.details["backup"])
    assert backup.parent == ctx.workdir and revision_of(backup) == HEAD and "audit" in tables(backup)
    assert "Running downgrade c3d4e5f6a1b2 -> b2c3d4e5f6a1" in collected.text
    checks = await verify_safely(act, ctx)
    assert [(check.check, check.ok) for check in checks] == [
        (f"schema revision of {app_db['url']}", True), (f"integrity of {app_db['url']}", True),
        ("rows in users", True), ("rows in orders", True)]
    assert checks[2].expected == "3 (as before the rollback)" and checks[2].category == "data"


async def test_a_downgrade_stopped_half_way_names_the_revision_it_left(app_db: dict, ctx: ActionContext) -> None:
    env_py = app_db["env"] / "env.py"
    env_py.write_text(env_py.read_text().replace("context.configure(connection=connection, target_metadata=target_metadata)",
                                                 "context.configure(connection=connection, target_metadata=target_metadata, "
                                                 "transaction_per_migration=True)"))
    orders = app_db["env"] / "versions" / "b2_orders.py"
    text = orders.read_text()
    start = text.index("def downgrade()")
    orders.write_text(text[:start] + "def downgrade() -> None:\n"
                      "    raise RuntimeError('orders cannot be dropped: irreversible migration')\n")
    act = alembic(app_db, FIRST)
    description = await describe_safely(act, ctx)
    assert any(line.startswith("transactions: one transaction per migration") for line in description.details)
    result = await run_safely(act, ctx)
    assert result.status == "failed"
    assert revision_of(app_db["path"]) == MIDDLE  # c3 was undone and committed, b2 refused
    assert f"the database was left at revision {MIDDLE} (started at {HEAD}, target {FIRST})" in result.error
    assert "irreversible migration" in result.error
    assert result.details["revision"] == MIDDLE and result.details["previous_revision"] == HEAD
    checks = await verify_safely(act, ctx)
    assert not checks[0].ok and checks[0].observed == MIDDLE


async def test_plan_review_says_how_the_env_groups_transactions(app_db: dict, ctx: ActionContext) -> None:
    description = await describe_safely(alembic(app_db, MIDDLE), ctx)
    mode = next(line for line in description.details if line.startswith("transactions: "))
    assert "one transaction for the whole downgrade" in mode and "sqlite DDL is not transactional" in mode


async def test_changed_row_count_fails_with_the_numbers(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    act = alembic(app_db, FIRST, safety={"row_count_tables": ["users", "orders"], "backup_dir": str(tmp_path / "bk")})
    result = await run_safely(act, ctx)
    assert result.status == "failed"
    assert "row counts changed: orders 2 -> missing" in result.error
    assert f"backup: {tmp_path / 'bk'}" in result.error
    checks = await verify_safely(act, ctx)
    assert checks[0].ok and not checks[-1].ok and checks[-1].observed == "missing"


async def test_missing_row_count_table_refuses_before_changing(app_db: dict, ctx: ActionContext) -> None:
    result = await run_safely(alembic(app_db, MIDDLE, safety={"row_count_tables": ["customers"]}), ctx)
    assert result.status == "failed" and "customers do not exist" in result.error
    assert revision_of(app_db["path"]) == HEAD


async def test_already_at_target_does_nothing(app_db: dict, ctx: ActionContext) -> None:
    result = await run_safely(alembic(app_db, HEAD), ctx)
    assert result.ok and "backup" not in result.details
    assert list(ctx.workdir.iterdir()) == []


async def test_unknown_revision_and_missing_database(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    result = await run_safely(alembic(app_db, "ffff0000"), ctx)
    assert result.status == "failed" and "ffff0000" in result.error and "Can't locate" in result.error
    gone = tmp_path / "gone.db"
    result = await run_safely(alembic(app_db, MIDDLE, url=f"sqlite:///{gone}"), ctx)
    assert result.status == "failed" and "does not exist" in result.error
    assert not gone.exists()
    description = await describe_safely(alembic(app_db, MIDDLE, config=str(tmp_path / "nope.ini")), ctx)
    assert any("nope.ini does not exist" in risk for risk in description.risks)


async def test_downgrade_to_base(app_db: dict, ctx: ActionContext) -> None:
    act = alembic(app_db, "base", safety={"backup": False})
    assert (await run_safely(act, ctx)).ok
    assert revision_of(app_db["path"]) == "base"
    assert (await verify_safely(act, ctx))[0].ok


async def test_cancel_kills_the_alembic_process(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    (app_db["env"] / "versions" / "d4_slow.py").write_text(f'''"""slow

Revision ID: d4e5f6a1b2c3
Revises: {HEAD}
"""
import os, time
revision = "d4e5f6a1b2c3"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None

def upgrade() -> None:
    pass

def downgrade() -> None:
    open({str(marker)!r}, "w").write(str(os.getpid()))
    time.sleep(120)
''')
    alembic_upgrade(Path(app_db["ini"]), app_db["url"])
    task = asyncio.ensure_future(AlembicAdapter().run(alembic(app_db, HEAD, safety={"backup": False}), ctx))
    for _ in range(600):
        if marker.exists() and marker.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(marker.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert revision_of(app_db["path"]) == "d4e5f6a1b2c3"


# ---------------------------------------------------------------- SQL scripts


def sql(app_db: dict, script: Path, **fields: Any) -> SqlAction:
    return SqlAction.model_validate({"kind": "sql", "id": "fix", "url": app_db["url"], "script": str(script),
                                     **fields})


async def test_sql_script_runs_in_one_transaction(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    script = tmp_path / "rollback.sql"
    script.write_text("-- undo the 2.4.0 data change\nUPDATE users SET nickname = NULL;\n"
                      "DELETE FROM audit WHERE event LIKE 'deploy%';\n")
    act = sql(app_db, script, verify_query="SELECT count(*) FROM users WHERE nickname IS NOT NULL",
              verify_equals=0, safety={"row_count_tables": ["users", "orders"]})
    description = await describe_safely(act, ctx)
    assert description.summary == f"run {script} on {app_db['url']}"
    assert "destroys data: DELETE FROM audit WHERE event LIKE 'deploy%';" in description.risks
    assert not (await verify_safely(act, ctx))[0].ok
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert result.details["statements"] == 2 and Path(result.details["backup"]).exists()
    checks = await verify_safely(act, ctx)
    assert all(check.ok for check in checks) and checks[0].observed == "0"


async def test_failing_statement_rolls_everything_back(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    script = tmp_path / "broken.sql"
    script.write_text("UPDATE users SET name = 'changed';\n\nINSERT INTO\n  customers VALUES (1);\n")
    result = await run_safely(sql(app_db, script), ctx)
    assert result.status == "failed"
    assert result.error.startswith(f"{script}:3: no such table: customers; the script was rolled back")
    with sqlite3.connect(app_db["path"]) as conn:
        assert conn.execute("SELECT name FROM users WHERE id = 1").fetchone()[0] == "ada"


async def test_script_with_its_own_transaction_is_refused(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    script = tmp_path / "txn.sql"
    script.write_text("UPDATE users SET name = 'x';\nBEGIN;\nDELETE FROM users;\nCOMMIT;\n")
    result = await run_safely(sql(app_db, script), ctx)
    assert result.status == "failed" and f"{script}:2: remove BEGIN" in result.error


async def test_sql_row_count_change_fails(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    script = tmp_path / "oops.sql"
    script.write_text("DELETE FROM orders WHERE id = 2;\n")
    result = await run_safely(sql(app_db, script, safety={"row_count_tables": ["orders"]}), ctx)
    assert result.status == "failed" and "row counts changed: orders 2 -> 1" in result.error


async def test_missing_script_and_bad_url(app_db: dict, ctx: ActionContext, tmp_path: Path) -> None:
    result = await run_safely(sql(app_db, tmp_path / "none.sql"), ctx)
    assert result.status == "failed" and "cannot read SQL script" in result.error
    result = await run_safely(sql(app_db, tmp_path / "none.sql", url="mysql://db/app"), ctx)
    assert result.status == "failed" and "unsupported database URL scheme 'mysql'" in result.error


async def test_missing_psycopg2_names_the_extra(ctx: ActionContext, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # import now raises ImportError
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    act = SqlAction.model_validate({"kind": "sql", "id": "pg", "url": "postgresql://u@127.0.0.1:9/db",
                                    "script": str(script), "safety": {"backup": False}})
    result = await run_safely(act, ctx)
    assert result.status == "failed" and "pip install 'rollback-tui[postgres]'" in result.error
