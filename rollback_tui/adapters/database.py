"""Database adapters: Alembic downgrade to a revision, and plain SQL rollback scripts (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, ClassVar

from rollback_tui.adapters import dbutil
from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.proc import run_process
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import AlembicAction, DbSafety, SqlAction

#: The child process reads the database URL from here: never from argv, which `ps` shows to everyone.
_URL_ENV = "ROLLBACK_TUI_ALEMBIC_URL"
_SQL_PREVIEW = 200


def _safety_lines(db: dbutil.Database, safety: DbSafety, ctx: ActionContext) -> tuple[list[str], list[str]]:
    lines, risks = [], []
    if safety.backup:
        how = "SQLite online backup" if db.dialect == "sqlite" else "pg_dump --format=custom"
        lines.append(f"backup first: {how} into {safety.backup_dir or ctx.workdir}")
    else:
        risks.append("no backup is taken (safety.backup: false)")
    if safety.integrity_check and db.dialect == "sqlite":
        lines.append("PRAGMA integrity_check before and after")
    if safety.row_count_tables:
        lines.append(f"row counts must not change: {', '.join(safety.row_count_tables)}")
    return lines, risks


# ---------------------------------------------------------------- Alembic


def _alembic_config(ini: str, url: str | None = None) -> Any:
    """An Alembic Config for `ini`; a relative script_location that only exists next to the ini is made absolute
    (plans are written as if run from the ini's directory, the cockpit runs from anywhere)."""
    from alembic.config import Config  # lazily: costs start-up time

    path = Path(ini)
    if not path.is_file():
        raise AdapterError(f"alembic config {ini} does not exist", hint="fix 'config' in the plan")
    config = Config(str(path), stdout=sys.stdout)
    location = config.get_main_option("script_location")
    if location and not Path(location).is_absolute() and not Path(location).exists():
        beside = path.resolve().parent / location
        if beside.exists():
            config.set_main_option("script_location", str(beside))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return config


def _resolve_target(ini: str, revision: str) -> str:
    """The full revision id of the target ('base' stays 'base'); an unknown id is the plan's error."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    if revision == "base":
        return "base"
    try:
        script = ScriptDirectory.from_config(_alembic_config(ini))
        found = script.get_revision(revision)
    except (CommandError, RevisionError) as exc:
        raise AdapterError(f"alembic revision {revision!r}: {exc}",
                           hint=f"list them with: alembic -c {ini} history") from None
    if found is None:
        raise AdapterError(f"alembic revision {revision!r} is not in {ini}'s scripts")
    return found.revision


def _undone(ini: str, current: str, target: str) -> list[str]:
    """`id: message` of each revision a downgrade from current to target undoes, newest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(ini))
    return [f"{rev.revision}: {rev.doc}" for rev in script.iterate_revisions(current, target)]


def _current_heads(db: dbutil.Database, handle: dbutil.Interruptible) -> list[str]:
    """The revisions the database is at (MigrationContext); [] means base."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    if db.path is not None and not db.path.is_file():
        raise AdapterError(f"SQLite database {db.path} does not exist", hint="fix the URL in the plan")
    engine = create_engine(db.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            handle.set(conn.connection.dbapi_connection)
            return list(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise AdapterError(f"cannot read the schema revision of {db.label}: {message}") from None
    finally:
        engine.dispose()


def _transaction_mode(ini: str, dialect: str) -> str:
    """How the env runs a downgrade, from its env.py and the dialect: what a failure half-way leaves behind."""
    from alembic.ddl import impl

    config = _alembic_config(ini)
    env = Path(config.get_main_option("script_location") or "") / "env.py"
    try:
        text = env.read_text(errors="replace")[:200_000]
    except OSError:
        return f"env.py not readable ({env}): how migrations are grouped in transactions is unknown"
    per_migration = "transaction_per_migration=True" in text.replace(" ", "")
    transactional = getattr(impl._impls.get(dialect), "transactional_ddl", False)  # noqa: SLF001 (Alembic's table)
    if per_migration:
        return ("one transaction per migration (env.py: transaction_per_migration=True): a failure leaves the "
                "database at the last revision that completed; the revision is read back after any failure")
    if transactional:
        return (f"one transaction for the whole downgrade ({dialect} has transactional DDL): a failure rolls "
                "every revision back")
    return (f"one transaction for the whole downgrade, but {dialect} DDL is not transactional in Alembic: a failure "
            "can leave the database between revisions; the revision is read back after any failure")


def _offline_problem(exc: AdapterError) -> str:
    """Alembic's offline-mode refusal in one sentence (the raw text stays in the plan review's details)."""
    text = str(exc)
    if "cannot proceed in --sql mode" in text:
        return ("no SQL preview: this downgrade cannot be rendered offline (a migration or env.py needs a live "
                "database connection); review the migrations' downgrade() code instead")
    return f"no SQL preview: {text.splitlines()[0]}"


def _label(heads: list[str]) -> str:
    return ",".join(heads) if heads else "base"


async def _alembic_child(mode: str, ini: str, revision: str, url: str,
                         ctx: ActionContext | None) -> tuple[int, list[str]]:
    """Run Alembic in a child process: it can be killed on timeout or cancel (a thread cannot), and env.py's
    fileConfig cannot rewire the cockpit's logging. Returns (exit code, stdout lines)."""
    argv = [sys.executable, "-m", "rollback_tui.adapters.database", mode, ini, revision]
    out: list[str] = []

    def sink(stream: str, lines: list[str]) -> None:
        if stream == "stdout":
            out.extend(lines)
        if ctx is None:
            return
        if stream == "stderr":  # Alembic logs its progress to stderr: that is information, not an error
            progress = [line for line in lines if line.startswith(("INFO ", "DEBUG "))]
            ctx.log_lines(progress, stream="info")
            lines = [line for line in lines if not line.startswith(("INFO ", "DEBUG "))]
        ctx.log_lines(lines, stream=stream)

    result = await run_process(argv, sink, env={_URL_ENV: url, "PYTHONUNBUFFERED": "1"}, keep_tail=20)
    if result.returncode != 0:
        errors = [line[len("error: "):] for line in result.stderr_tail if line.startswith("error: ")]
        raise AdapterError(f"alembic {mode} to {revision} failed: "
                           f"{errors[-1] if errors else ' | '.join(result.stderr_tail[-3:])}")
    return result.returncode, out


class AlembicAdapter:
    """`alembic downgrade` to a revision, inside the safety envelope (backup, integrity, row counts)."""

    kind: ClassVar[str] = "alembic"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    async def describe(self, action: AlembicAction, ctx: ActionContext) -> Description:
        db = dbutil.Database(dbutil.expand_url(action.url, ctx), action.url)
        summary = f"alembic downgrade {action.url} to {action.revision}"
        safety, risks = _safety_lines(db, action.safety, ctx)
        try:
            target = await dbutil.in_thread(lambda handle: _resolve_target(action.config, action.revision))
            heads = await dbutil.in_thread(lambda handle: _current_heads(db, handle))
        except AdapterError as exc:
            return Description(summary, safety, risks + [str(exc)])
        if len(heads) > 1:
            return Description(summary, safety, risks + [f"the database has several heads ({_label(heads)})"])
        current = _label(heads)
        if current == target:
            return Description(f"{summary}: already at {target}, nothing to do", safety, risks)
        undone = await dbutil.in_thread(lambda handle: _undone(action.config, current, target))
        summary = f"alembic downgrade {action.url} from {current} to {target}: {len(undone)} revision(s)"
        mode = await dbutil.in_thread(lambda handle: _transaction_mode(action.config, db.dialect))
        details = ["revisions undone:", *("  " + line for line in undone), f"transactions: {mode}", *safety]
        try:
            _, sql = await _alembic_child("sql", action.config, f"{current}:{target}", db.sqlalchemy_url, None)
        except AdapterError as exc:
            return Description(summary, details + [f"Alembic said: {exc}"], risks + [_offline_problem(exc)])
        sql = [line for line in sql if line.strip()]
        details += ["SQL that would run (alembic offline mode):", *sql[:_SQL_PREVIEW]]
        if len(sql) > _SQL_PREVIEW:
            details.append(f"... {len(sql) - _SQL_PREVIEW} more lines")
        risks += [f"destroys data: {line}" for line in dbutil.risky_lines("\n".join(sql))]
        return Description(summary, details, risks)

    async def run(self, action: AlembicAction, ctx: ActionContext) -> ActionResult:
        db = dbutil.Database(dbutil.expand_url(action.url, ctx), action.url)
        target = await dbutil.in_thread(lambda handle: _resolve_target(action.config, action.revision))
        heads = await dbutil.in_thread(lambda handle: _current_heads(db, handle))
        details: dict[str, Any] = {"database": action.url, "previous_revision": _label(heads), "target": target}
        if _label(heads) == target:
            ctx.log(f"{action.url} is already at {target}: nothing to do")
            return ActionResult("ok", 0, details=details)
        await dbutil.before(db, action.safety, ctx, details)
        try:
            await _alembic_child("downgrade", action.config, target, db.sqlalchemy_url, ctx)
        except AdapterError as exc:
            where = f"; backup: {details['backup']}" if "backup" in details else ""
            try:  # read back where the database was left, never assume (one transaction per migration stops half-way)
                left = _label(await dbutil.in_thread(lambda handle: _current_heads(db, handle)))
            except AdapterError as read_exc:
                left = f"unknown ({read_exc})"
            details["revision"] = left
            ctx.log(f"after the failure the database is at revision {left} (started at {details['previous_revision']}, "
                    f"target {target})", stream="stderr")
            return ActionResult("failed", error=f"{exc}; the database was left at revision {left} (started at "
                                f"{details['previous_revision']}, target {target}){where}",
                                details=details)
        problem = await dbutil.after(db, action.safety, ctx, details)
        heads = await dbutil.in_thread(lambda handle: _current_heads(db, handle))
        details["revision"] = _label(heads)
        if not problem and _label(heads) != target:
            problem = f"the database is at {_label(heads)} after the downgrade, not {target}"
        status = "failed" if problem else "ok"
        return ActionResult(status, 0 if status == "ok" else None, problem, details=details)

    async def verify(self, action: AlembicAction, ctx: ActionContext) -> list[CheckResult]:
        db = dbutil.Database(dbutil.expand_url(action.url, ctx), action.url)
        target = await dbutil.in_thread(lambda handle: _resolve_target(action.config, action.revision))
        heads = await dbutil.in_thread(lambda handle: _current_heads(db, handle))
        checks = [CheckResult(f"schema revision of {action.url}", target, _label(heads), _label(heads) == target)]
        return checks + await dbutil.data_checks(db, action.safety, ctx)


# ---------------------------------------------------------------- plain SQL scripts


def _read_script(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise AdapterError(f"cannot read SQL script {path}: {exc.strerror}", hint="fix 'script' in the plan") from None


def _matches(value: Any, expected: Any) -> bool:
    """A database value against the plan's YAML value (3 == '3'; True == 1 as SQLite stores booleans)."""
    return value == expected or str(value) == str(expected)


class SqlAdapter:
    """A rollback script run in one transaction (all or nothing), inside the safety envelope."""

    kind: ClassVar[str] = "sql"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    async def describe(self, action: SqlAction, ctx: ActionContext) -> Description:
        db = dbutil.Database(dbutil.expand_url(action.url, ctx), action.url)
        safety, risks = _safety_lines(db, action.safety, ctx)
        text = _read_script(action.script)
        lines = text.splitlines()
        details = [f"{action.script} ({len(lines)} lines), in one transaction:", *lines[:_SQL_PREVIEW]]
        if len(lines) > _SQL_PREVIEW:
            details.append(f"... {len(lines) - _SQL_PREVIEW} more lines")
        if action.verify_query:
            details.append(f"verify: {action.verify_query} = {action.verify_equals!r}")
        risks += [f"destroys data: {line}" for line in dbutil.risky_lines(text)]
        return Description(f"run {action.script} on {action.url}", details + safety, risks)

    async def run(self, action: SqlAction, ctx: ActionContext) -> ActionResult:
        db = dbutil.Database(dbutil.expand_url(action.url, ctx), action.url)
        text = _read_script(action.script)
        details: dict[str, Any] = {"database": action.url, "script": action.script}
        await dbutil.before(db, action.safety, ctx, details)
        try:
            count = await dbutil.in_thread(lambda handle: dbutil.run_script(db, text, action.script, ctx.log, handle))
        except AdapterError as exc:
            where = f"; backup: {details['backup']}" if "backup" in details else ""
            return ActionResult("failed", error=f"{exc}{where}", details=details)
        details["statements"] = count
        problem = await dbutil.after(db, action.safety, ctx, details)
        status = "failed" if problem else "ok"
        return ActionResult(status, 0 if status == "ok" else None, problem, details=details)

    async def verify(self, action: SqlAction, ctx: ActionContext) -> list[CheckResult]:
        db = dbutil.Database(dbutil.expand_url(action.url, ctx), action.url)
        checks: list[CheckResult] = []
        if action.verify_query:
            value = await dbutil.in_thread(lambda handle: dbutil.query_first(db, action.verify_query or "", handle))
            checks.append(CheckResult(action.verify_query, repr(action.verify_equals), repr(value),
                                      _matches(value, action.verify_equals), category="data"))
        checks += await dbutil.data_checks(db, action.safety, ctx)
        if not action.verify_query:  # integrity and row counts hold whether or not the script ran: say so
            checks.append(CheckResult(f"{action.script} on {action.url}", "a verify_query in the plan",
                                      "unverified: no verify_query; the script's success is the only evidence", True,
                                      category="data", readback="none"))
        return checks


# ---------------------------------------------------------------- the Alembic child process


def _child(argv: list[str]) -> int:
    """`python -m rollback_tui.adapters.database downgrade|sql INI REVISION` with the URL in the environment."""
    import logging

    mode, ini, revision = argv
    url = os.environ.pop(_URL_ENV, "")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s [%(name)s] %(message)s")
    try:
        from alembic import command

        command.downgrade(_alembic_config(ini, url), revision, sql=(mode == "sql"))
    except Exception as exc:  # one readable line for the parent; the traceback helps no operator
        message = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
