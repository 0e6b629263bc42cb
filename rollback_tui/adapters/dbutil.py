"""Database helpers shared by the Alembic and SQL adapters: URLs, backups, integrity checks, row counts, scripts."""

from __future__ import annotations

import asyncio
import glob
import json
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from rollback_tui.adapters.base import ActionContext, CheckResult
from rollback_tui.adapters.proc import run_process
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import DbSafety
from rollback_tui.secrets import SECRET_REF

T = TypeVar("T")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_TXN = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|START\s+TRANSACTION)\b[^;]*;", re.IGNORECASE | re.MULTILINE)
_DANGER = re.compile(r"^\s*(DROP\s+(TABLE|COLUMN|INDEX|SCHEMA|DATABASE)|ALTER\s+TABLE\s+\S+\s+DROP|DELETE\s+FROM|"
                     r"TRUNCATE)\b", re.IGNORECASE)
POSTGRES_HINT = "pip install 'rollback-tui[postgres]'"


# ---------------------------------------------------------------- URLs


def expand_url(url: str, ctx: ActionContext) -> str:
    """Substitute `${secrets.NAME}` URL-encoded, so a password with `@`, `/` or `%` cannot break the URL."""
    return SECRET_REF.sub(lambda match: quote(ctx.secrets.get(match.group(1)), safe=""), url)


@dataclass
class Database:
    """A database named by a URL: `sqlite:///relative.db`, `sqlite:////abs.db` or `postgresql[+driver]://...`."""

    url: str
    """The expanded URL (may hold a password: never show it)."""
    label: str
    """The URL as the plan wrote it (secrets still as references): safe to show."""
    dialect: str = field(init=False)
    path: Path | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        scheme = self.url.split(":", 1)[0].lower()
        base = scheme.split("+", 1)[0]
        if base == "sqlite":
            raw = self.url.split(":", 1)[1]
            if not raw.startswith("///") or len(raw) <= 3:
                raise AdapterError(f"{self.label}: a SQLite URL is sqlite:///relative/path.db or "
                                   "sqlite:////absolute/path.db (in-memory databases cannot be rolled back)")
            self.dialect, self.path = "sqlite", Path(unquote(raw[3:].split("?", 1)[0]))
        elif base in {"postgresql", "postgres"}:
            self.dialect = "postgresql"
        else:
            raise AdapterError(f"{self.label}: unsupported database URL scheme {scheme!r}; "
                               "use sqlite:///path.db or postgresql://user@host:port/db")

    @property
    def absolute_url(self) -> str:
        """The URL with a SQLite path made absolute, so a child process in another directory finds the file."""
        if self.path is None:
            return self.url
        return f"sqlite:///{self.path.resolve()}"

    @property
    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy (Alembic): SQLite made absolute; a bare `postgresql://` pinned to psycopg2 when
        only psycopg2 is installed (SQLAlchemy 2.1 defaults to psycopg 3)."""
        if self.path is not None:
            return self.absolute_url
        scheme, rest = self.url.split(":", 1)
        if "+" in scheme:
            return self.url
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2:" + rest
        return "postgresql:" + rest

    @property
    def libpq_url(self) -> str:
        """The URL without a SQLAlchemy `+driver` suffix, as psycopg2 and libpq accept it."""
        return "postgresql:" + self.url.split(":", 1)[1]

    @property
    def name(self) -> str:
        """A short name for backup files."""
        if self.path is not None:
            return self.path.stem
        return (urlsplit(self.libpq_url).path.strip("/") or "postgres").replace("/", "_")

    def connect(self) -> Any:
        """A DB-API connection; SQLite opens read-write only (a typo must not create an empty database)."""
        if self.path is not None:
            if not self.path.is_file():
                raise AdapterError(f"SQLite database {self.path} does not exist", hint="fix the URL in the plan")
            return sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=30)
        psycopg2 = import_psycopg2()
        try:
            return psycopg2.connect(self.libpq_url, connect_timeout=10)
        except psycopg2.Error as exc:
            raise AdapterError(f"cannot connect to {self.label}: {str(exc).strip()}") from None


def import_psycopg2() -> Any:
    try:
        import psycopg2  # lazily: optional dependency
    except ImportError:
        raise AdapterError("PostgreSQL support needs psycopg2, which is not installed",
                           hint=POSTGRES_HINT) from None
    return psycopg2


def db_errors() -> tuple[type[BaseException], ...]:
    """The driver exceptions that mean 'the database said no' (turned into AdapterError messages)."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg2

        errors.append(psycopg2.Error)
    except ImportError:
        pass
    return tuple(errors)


class Interruptible:
    """A connection opened in a worker thread that the event loop can interrupt when the action is cancelled."""

    def __init__(self) -> None:
        self.conn: Any = None
        self._lock = threading.Lock()

    def set(self, conn: Any) -> Any:
        with self._lock:
            self.conn = conn
        return conn

    def interrupt(self) -> None:
        with self._lock:
            conn = self.conn
        if conn is None:
            return
        try:
            conn.interrupt() if isinstance(conn, sqlite3.Connection) else conn.cancel()
        except Exception:  # the statement may just have finished
            pass


async def in_thread(fn: Callable[[Interruptible], T]) -> T:
    """Run blocking database work in a thread; on cancel interrupt the statement and wait for the rollback."""
    handle = Interruptible()
    future = asyncio.ensure_future(asyncio.to_thread(fn, handle))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        handle.interrupt()
        try:
            await asyncio.shield(future)
        except BaseException:
            pass
        raise


def _quote_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise AdapterError(f"{name!r} is not a plain table name (letters, digits, _ and an optional schema.)")
    return ".".join(f'"{part}"' for part in name.split("."))


# ---------------------------------------------------------------- checks (blocking: call through in_thread)


def integrity_check(db: Database, handle: Interruptible) -> str:
    """SQLite `PRAGMA integrity_check`: 'ok' or the problems found."""
    conn = handle.set(db.connect())
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    finally:
        conn.close()
    return "; ".join(rows[:10]) or "no answer"


def row_counts(db: Database, tables: list[str], handle: Interruptible) -> dict[str, int | None]:
    """`SELECT count(*)` of each table; None for a table that does not exist."""
    counts: dict[str, int | None] = {}
    conn = handle.set(db.connect())
    try:
        for table in tables:
            sql = f"SELECT count(*) FROM {_quote_ident(table)}"
            try:
                cursor = conn.cursor()
                cursor.execute(sql)
                counts[table] = int(cursor.fetchone()[0])
            except db_errors():
                counts[table] = None
                if db.dialect == "postgresql":
                    conn.rollback()
    finally:
        conn.close()
    return counts


def query_first(db: Database, query: str, handle: Interruptible) -> Any:
    """The first column of the first row of a read-only query (None when there is no row)."""
    conn = handle.set(db.connect())
    try:
        cursor = conn.cursor()
        cursor.execute(query)
        row = cursor.fetchone()
        return row[0] if row else None
    except db_errors() as exc:
        raise AdapterError(f"verify query failed on {db.label}: {str(exc).strip()}") from None
    finally:
        conn.close()


def _sqlite_statements(text: str) -> list[tuple[int, str]]:
    """Split a script into (first line number, statement) with SQLite's own completeness test."""
    statements: list[tuple[int, str]] = []
    buffer, start = "", 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not buffer.strip():
            start = number
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append((start, buffer.strip()))
            buffer = ""
    if buffer.strip() and not all(line.strip().startswith("--") for line in buffer.strip().splitlines()):
        statements.append((start, buffer.strip()))
    return statements


def run_script(db: Database, text: str, name: str, log: Callable[[str], None], handle: Interruptible) -> int:
    """Run a script in one transaction (all or nothing); returns the number of statements (SQLite) or 1."""
    match = _TXN.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        raise AdapterError(f"{name}:{line}: remove {match.group(1).upper()}: the adapter runs the whole script "
                           "in one transaction")
    conn = handle.set(db.connect())
    try:
        if db.dialect == "sqlite":
            statements = _sqlite_statements(text)
            conn.execute("BEGIN IMMEDIATE")
            for line, statement in statements:
                try:
                    conn.execute(statement)
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise AdapterError(f"{name}:{line}: {exc}; the script was rolled back, nothing changed") from None
                log(f"{name}:{line}: {statement.splitlines()[0][:120]}")
            conn.execute("COMMIT")
            return len(statements)
        psycopg2 = import_psycopg2()
        try:
            with conn.cursor() as cursor:
                cursor.execute(text)
            conn.commit()
        except psycopg2.Error as exc:
            conn.rollback()
            detail = " ".join(str(exc).split())
            raise AdapterError(f"{name}: {detail}; the script was rolled back, nothing changed") from None
        log(f"{name}: committed")
        return 1
    finally:
        conn.close()


def risky_lines(text: str) -> list[str]:
    """Statements that destroy data (DROP, DELETE, TRUNCATE), for the plan review's risks."""
    return [line.strip()[:120] for line in text.splitlines() if _DANGER.match(line)]


# ---------------------------------------------------------------- backups


def backup_dir(safety: DbSafety, ctx: ActionContext) -> Path:
    path = Path(safety.backup_dir) if safety.backup_dir else ctx.workdir
    path.mkdir(parents=True, exist_ok=True)
    return path


def _backup_sqlite(db: Database, dest: Path, handle: Interruptible) -> None:
    source = handle.set(db.connect())
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)  # SQLite's online backup API: consistent while others write
        finally:
            target.close()
    finally:
        source.close()


def find_pg_dump() -> str:
    found = shutil.which("pg_dump")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)
    if candidates:
        return candidates[0]
    raise AdapterError("pg_dump not found on PATH: install it (apt postgresql-client) or set 'safety: {backup: false}'")


async def backup(db: Database, safety: DbSafety, ctx: ActionContext) -> Path:
    """Back the database up into safety.backup_dir (default: the session directory); returns the file."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    folder = backup_dir(safety, ctx)
    if db.dialect == "sqlite":
        dest = folder / f"{db.name}-{ctx.step}-{ctx.action_id}-{stamp}.db"
        await in_thread(lambda handle: _backup_sqlite(db, dest, handle))
        return dest
    dest = folder / f"{db.name}-{ctx.step}-{ctx.action_id}-{stamp}.dump"
    parts = urlsplit(db.libpq_url)
    argv = [find_pg_dump(), "--format=custom", "--no-password", f"--file={dest}"]
    if parts.hostname:
        argv.append(f"--host={parts.hostname}")
    if parts.port:
        argv.append(f"--port={parts.port}")
    if parts.username:
        argv.append(f"--username={unquote(parts.username)}")
    argv.append(f"--dbname={unquote(parts.path.lstrip('/')) or 'postgres'}")
    env = {"PGPASSWORD": unquote(parts.password)} if parts.password else {}  # never on argv: ps would show it
    ctx.log("$ " + " ".join(argv))
    result = await run_process(argv, lambda stream, lines: ctx.log_lines(lines, stream=stream), env=env)
    if result.returncode != 0:
        raise AdapterError(f"pg_dump of {db.label} failed: {' | '.join(result.stderr_tail[-3:])}; "
                           "nothing was rolled back", hint="fix the backup, or set 'safety: {backup: false}'")
    return dest


# ---------------------------------------------------------------- the safety envelope


def _counts_file(ctx: ActionContext) -> Path:
    return ctx.workdir / f"{ctx.step}.{ctx.action_id}.rowcounts.json"


def _format_counts(counts: dict[str, int | None]) -> str:
    return ", ".join(f"{table}={'missing' if n is None else n}" for table, n in counts.items())


async def before(db: Database, safety: DbSafety, ctx: ActionContext, details: dict[str, Any]) -> None:
    """Backup, integrity check and row counts before a change; raises (nothing changed) when one fails."""
    if safety.integrity_check and db.dialect == "sqlite":
        result = await in_thread(lambda handle: integrity_check(db, handle))
        ctx.log(f"integrity check before: {result}")
        details["integrity_before"] = result
        if result != "ok":
            raise AdapterError(f"{db.label} fails its integrity check before the rollback: {result}",
                               hint="restore from a backup first; nothing was changed")
    if safety.row_count_tables:
        counts = await in_thread(lambda handle: row_counts(db, safety.row_count_tables, handle))
        missing = [table for table, n in counts.items() if n is None]
        if missing:
            raise AdapterError(f"row_count_tables {', '.join(missing)} do not exist in {db.label}",
                               hint="fix safety.row_count_tables in the plan; nothing was changed")
        ctx.log(f"row counts before: {_format_counts(counts)}")
        details["row_counts_before"] = counts
        try:
            with _counts_file(ctx).open("x") as baseline:  # a retry keeps the counts from before the first try
                baseline.write(json.dumps(counts))
        except OSError:
            pass  # exists already, or verify reports the counts without a comparison
    if safety.backup:
        path = await backup(db, safety, ctx)
        details["backup"] = str(path)
        ctx.log(f"backup written: {path} ({path.stat().st_size} bytes)")
    else:
        ctx.log("no backup taken (safety.backup is false)", stream="stderr")


async def after(db: Database, safety: DbSafety, ctx: ActionContext, details: dict[str, Any]) -> str:
    """Integrity check and row counts after the change; returns a failure message ('' when all is well)."""
    problems: list[str] = []
    if safety.integrity_check and db.dialect == "sqlite":
        result = await in_thread(lambda handle: integrity_check(db, handle))
        ctx.log(f"integrity check after: {result}")
        details["integrity_after"] = result
        if result != "ok":
            problems.append(f"integrity check after the rollback: {result}")
    if safety.row_count_tables:
        counts = await in_thread(lambda handle: row_counts(db, safety.row_count_tables, handle))
        ctx.log(f"row counts after: {_format_counts(counts)}")
        details["row_counts_after"] = counts
        old = details.get("row_counts_before", {})
        changed = [f"{table} {old.get(table)} -> {'missing' if n is None else n}"
                   for table, n in counts.items() if old.get(table) != n]
        if changed:
            problems.append("row counts changed: " + ", ".join(changed))
    if problems:
        where = f"; backup: {details['backup']}" if "backup" in details else ""
        return "; ".join(problems) + where
    return ""


async def data_checks(db: Database, safety: DbSafety, ctx: ActionContext) -> list[CheckResult]:
    """Integrity and row counts as read-back evidence (category data), compared with the counts taken before."""
    checks: list[CheckResult] = []
    if safety.integrity_check and db.dialect == "sqlite":
        result = await in_thread(lambda handle: integrity_check(db, handle))
        checks.append(CheckResult(f"integrity of {db.label}", "ok", result, result == "ok", category="data",
                                  readback="safety"))
    if safety.row_count_tables:
        counts = await in_thread(lambda handle: row_counts(db, safety.row_count_tables, handle))
        try:
            old = json.loads(_counts_file(ctx).read_text())
        except (OSError, ValueError):
            old = None
        for table, n in counts.items():
            observed = "missing" if n is None else str(n)
            if old is None or table not in old:
                checks.append(CheckResult(f"rows in {table}", "present (no count from before in this session)",
                                          observed, n is not None, category="data", readback="safety"))
            else:
                checks.append(CheckResult(f"rows in {table}", f"{old[table]} (as before the rollback)", observed,
                                          n == old[table], category="data", readback="safety"))
    return checks


def redact_details(value: Any, ctx: ActionContext) -> Any:
    """Details masked early (kept for callers that still do it): the session's record path masks every event."""
    return ctx.redactor.value(value)
