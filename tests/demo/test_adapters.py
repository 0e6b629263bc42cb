"""The demo plan, driven action by action through the real adapters: red to green, rows kept, webhook posted."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

from rollback_tui.adapters.base import ActionContext, run_safely, verify_safely
from rollback_tui.demo.layout import GOOD_VERSION, SEEDED_ROWS
from rollback_tui.demo.sandbox import Sandbox
from rollback_tui.health.checks import run_step_check
from rollback_tui.plan.loader import load_plan
from rollback_tui.secrets import SecretStore
from tests.adapters_web.flagd_peer import assert_served_off
from tests.demo.conftest import get


async def test_every_step_through_the_real_adapters(sandbox: Sandbox) -> None:
    # the health watch of step 7 is shortened: the monitor-free checks here sample on their own
    plan = load_plan(sandbox.plan_path, {**sandbox.variables, "watch_seconds": "1"}).plan
    secrets = SecretStore(plan.secrets)
    health_url = f"http://127.0.0.1:{sandbox.variables['web_port']}/health"
    workdir = sandbox.root / "session"
    workdir.mkdir()
    log: list[str] = []
    assert get(health_url)[0] == 503
    health_after: dict[str, int] = {}
    for step in plan.steps:
        for action in step.actions:
            ctx = ActionContext(plan=plan, step=step.id.value, action_id=action.id, secrets=secrets,
                                output=lambda host, stream, lines: log.extend(lines), workdir=workdir)
            result = await run_safely(action, ctx)
            assert result.ok, f"{step.id.value}/{action.id}: {result.status} {result.error}\n" + "\n".join(log[-20:])
            checks = await verify_safely(action, ctx)
            failed = [check for check in checks if not check.ok]
            assert not failed, f"{step.id.value}/{action.id}: {failed}"
        for check in step.verify:
            outcome = await run_step_check(check, plan=plan, secrets=secrets, monitor=None)
            assert outcome.ok, f"{step.id.value}: {outcome}"
        health_after[step.id.value] = get(health_url)[0]
        if step.id.value == "flags":  # the real flagd evaluator serves off to every context tried
            assert_served_off(sandbox.layout.flags, ["new-checkout"])
    # red until the configuration step, green from then on
    assert health_after == {"assess": 503, "flags": 503, "code": 503, "configuration": 200, "database": 200,
                            "validate": 200}
    assert any("running release 1.5.0" in line for line in log)  # the assess step's situation report
    assert get(f"http://127.0.0.1:{sandbox.variables['web_port']}/version")[1]["version"] == GOOD_VERSION
    with closing(sqlite3.connect(sandbox.layout.db)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0002"
        for table, rows in SEEDED_ROWS.items():
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "checkout_sessions" not in tables
    hooks = [json.loads(line) for line in sandbox.layout.webhooks.read_text().splitlines()]
    assert hooks[0]["channel"] == "incident-checkout" and "rolled back to 1.4.2" in hooks[0]["body"]["text"]
