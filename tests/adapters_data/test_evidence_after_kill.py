"""Evidence or nothing: a database action killed (SIGKILL of the headless session) and resumed with `verify_only`
is done only when a real read-back shows its change; with nothing to read back it comes back unverified."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_tui.record.journal import read_journal

from .util import FIXTURE, alembic_upgrade

CLI = [sys.executable, "-m", "rollback_tui"]
APPROVALS = {"devops-lead": "Dana Ops", "tech-lead": "Terry Tech"}
HEAD, FIRST = "c3d4e5f6a1b2", "a1b2c3d4e5f6"
#: Runs the CLI and SIGKILLs itself just before (or right after) the journal takes an event of a type for an action.
KILLER = """
import os, signal, sys
from rollback_tui.cli import main
from rollback_tui.record import journal
when, kind, action = sys.argv[1:4]
append_many = journal.Journal.append_many
def killing(self, events):
    hit = any(e.type == kind and getattr(e, "action", "") == action for e in events)
    if hit and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    done = append_many(self, events)
    if hit and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return done
journal.Journal.append_many = killing
sys.exit(main(sys.argv[4:]))
"""
SLOW = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT n FROM control)) "
        "SELECT count(*) FROM c;\n")
VERIFY = {"verify_query": "SELECT count(*) FROM users WHERE nickname IS NOT NULL", "verify_equals": 0}


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_db(path: Path, slow: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, nickname TEXT);"
                           "INSERT INTO users VALUES (1, 'ada', 'a'), (2, 'bob', NULL), (3, 'cy', 'c');"
                           "CREATE TABLE control (n INTEGER);")
        conn.execute("INSERT INTO control VALUES (?)", (slow,))
    conn.close()


def nicknames(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT count(*) FROM users WHERE nickname IS NOT NULL").fetchone()[0]
    conn.close()
    return int(count)


def plan(tmp_path: Path, action: dict[str, Any]) -> Path:
    return write(tmp_path / "plan.yaml", {"version": 1, "metadata": {"name": "evidence"},
                                          "rollback": {"scope": ["database"]},
                                          "steps": [{"id": "database", "actions": [action]}]})


def sql_action(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    script = tmp_path / "rollback.sql"
    script.write_text("UPDATE users SET nickname = NULL;\n" + SLOW)
    return {"id": "fix", "kind": "sql", "url": f"sqlite:///{tmp_path / 'app.db'}", "script": str(script), **extra}


def answers(tmp_path: Path, name: str, **extra: Any) -> Path:
    return write(tmp_path / name, {"approvals": APPROVALS, "on_interrupted": "verify_only", **extra})


def common(answers_file: Path) -> list[str]:
    return ["--headless", "--answers", str(answers_file), "--no-sign"]


def killed_mid_transaction(tmp_path: Path, plan_file: Path, answers_file: Path) -> None:
    """Run headless and SIGKILL it while the script's transaction is open (its UPDATE done, nothing committed)."""
    hot = tmp_path / "app.db-journal"
    proc = subprocess.Popen([*CLI, "run", str(plan_file), *common(answers_file), "--journal", "j.jsonl"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not hot.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hot.exists(), "the script's transaction never started"
        time.sleep(0.2)  # inside the slow statement, after the UPDATE
        proc.kill()
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -9


def killed_at(tmp_path: Path, plan_file: Path, answers_file: Path, when: str, kind: str, action: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLER, when, kind, action, "run", str(plan_file),
                           *common(answers_file), "--journal", "j.jsonl"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -9, done.stdout + done.stderr


def resume(tmp_path: Path, answers_file: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    done = subprocess.run([*CLI, "resume", "j.jsonl", *common(answers_file)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    return done, read_journal(tmp_path / "j.jsonl").events


def of_type(events: list[Any], kind: str) -> list[Any]:
    return [event for event in events if event.type == kind]


def after_resume(events: list[Any]) -> list[Any]:
    resumed = of_type(events, "session_resumed")[0].seq
    return [event for event in events if event.seq > resumed]


def test_sql_killed_before_commit_is_not_done_until_its_query_shows_the_change(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", slow=10**10)
    plan_file = plan(tmp_path, sql_action(tmp_path, **VERIFY))
    killed_mid_transaction(tmp_path, plan_file, answers(tmp_path, "run.yaml"))
    assert nicknames(tmp_path / "app.db") == 2  # SQLite rolled the open transaction back: nothing committed
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("UPDATE control SET n = 1")  # the operator fixes the slow statement
    conn.close()
    done, events = resume(tmp_path, answers(tmp_path, "resume.yaml", on_failed_action="retry"))
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = after_resume(events)
    readback = [v for v in of_type(fresh, "verification") if v.action == "fix" and v.check == VERIFY["verify_query"]]
    assert [(v.ok, v.observed) for v in readback] == [(False, "2"), (True, "0")]  # after the kill; after the retry
    failed = [r for r in of_type(fresh, "decision_requested") if r.kind == "action_failed"]
    assert len(failed) == 1 and "does not show the target state" in failed[0].question
    assert len(of_type(events, "action_started")) == 2  # the killed run and the real retry
    assert of_type(events, "session_finished")[0].scopes["database"] == "rolled_back"
    assert nicknames(tmp_path / "app.db") == 0


def test_sql_without_verify_query_comes_back_unverified(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", slow=10**10)
    plan_file = plan(tmp_path, sql_action(tmp_path))  # integrity checked, but nothing reads the change back
    killed_mid_transaction(tmp_path, plan_file, answers(tmp_path, "run.yaml"))
    done, events = resume(tmp_path, answers(tmp_path, "resume.yaml"))  # no answer for a failed action: halt
    assert done.returncode == 3, done.stdout + done.stderr
    fresh = after_resume(events)
    checks = [v for v in of_type(fresh, "verification") if v.action == "fix"]
    assert any(v.readback == "safety" and v.ok for v in checks)  # integrity holds, and proves nothing
    unverified = [v for v in checks if v.readback == "none"]
    assert unverified and all(not v.ok and v.observed.startswith("unverified") for v in unverified)
    failed = [r for r in of_type(fresh, "decision_requested") if r.kind == "action_failed"][0]
    assert failed.question.startswith("database/fix failed: unverified: database/fix has no read-back")
    assert failed.options[:1] == ["retry"] and "manual" in failed.options and "manual" in failed.needs_reason
    finished = of_type(events, "session_finished")[0]
    assert finished.exit_state == "blocked" and finished.scopes["database"] == "not_rolled_back"
    report = (tmp_path / "j.md").read_text()
    assert "- ❌ unverified `read-back of fix after the interruption`" in report
    # the operator checks by hand and says so: a reopen asks again, manual needs the note
    done, events = resume(tmp_path, answers(tmp_path, "manual.yaml", on_failed_action={
        "choice": "manual", "reason": "checked users by hand: nicknames cleared with the script"}))
    assert done.returncode == 0, done.stdout + done.stderr
    assert of_type(events, "session_finished")[-1].scopes["database"] == "manual"


def test_sql_killed_after_commit_is_done_by_its_read_back(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", slow=1)
    plan_file = plan(tmp_path, sql_action(tmp_path, **VERIFY))
    killed_at(tmp_path, plan_file, answers(tmp_path, "run.yaml"), "before", "action_finished", "fix")
    assert nicknames(tmp_path / "app.db") == 0  # committed before the kill
    done, events = resume(tmp_path, answers(tmp_path, "resume.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(of_type(events, "action_started")) == 1  # read back, not run again
    assert of_type(events, "session_finished")[0].scopes["database"] == "rolled_back"


@pytest.fixture
def migrated(tmp_path: Path) -> dict[str, Any]:
    shutil.copytree(FIXTURE, tmp_path / "migrations")
    db = tmp_path / "app.db"
    alembic_upgrade(tmp_path / "migrations" / "alembic.ini", f"sqlite:///{db}")
    action = {"id": "schema", "kind": "alembic", "config": str(tmp_path / "migrations" / "alembic.ini"),
              "url": f"sqlite:///{db}", "revision": FIRST}
    return {"db": db, "plan": plan(tmp_path, action)}


def revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    conn.close()
    return rows[0][0] if rows else "base"


def test_alembic_killed_after_the_downgrade_is_done_by_the_revision(tmp_path: Path, migrated: dict) -> None:
    killed_at(tmp_path, migrated["plan"], answers(tmp_path, "run.yaml"), "before", "action_finished", "schema")
    assert revision(migrated["db"]) == FIRST
    done, events = resume(tmp_path, answers(tmp_path, "resume.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [v for v in of_type(after_resume(events), "verification") if v.action == "schema"]
    assert [(v.check.startswith("schema revision"), v.observed, v.ok) for v in checks if v.readback == "target"][0] \
        == (True, FIRST, True)
    assert len(of_type(events, "action_started")) == 1


def test_alembic_killed_before_the_downgrade_is_not_done(tmp_path: Path, migrated: dict) -> None:
    killed_at(tmp_path, migrated["plan"], answers(tmp_path, "run.yaml"), "after", "action_started", "schema")
    assert revision(migrated["db"]) == HEAD
    done, events = resume(tmp_path, answers(tmp_path, "resume.yaml", on_failed_action="halt"))
    assert done.returncode == 3, done.stdout + done.stderr
    checks = [v for v in of_type(after_resume(events), "verification") if v.action == "schema"]
    assert any(v.readback == "target" and v.observed == HEAD and not v.ok for v in checks)
    assert of_type(events, "session_finished")[0].scopes["database"] == "not_rolled_back"
    assert revision(migrated["db"]) == HEAD
