"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests, the demo and benchmarks (from the machine's packages)."""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

_SEARCH = "/usr/lib/postgresql/*/bin"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries are not installed, or the cluster would not start; the message says why."""


def find_binaries() -> tuple[str, str]:
    """(initdb, pg_ctl): from PATH, else the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for bindir in sorted(glob.glob(_SEARCH), key=lambda p: int(Path(p).parent.name or 0)
                         if Path(p).parent.name.isdigit() else 0, reverse=True):
        initdb, pg_ctl = os.path.join(bindir, "initdb"), os.path.join(bindir, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin);"
                              " install the apt package 'postgresql'")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and 'runuser' is missing: cannot start PostgreSQL as 'postgres'")
    return [runuser, "-u", "postgres", "--", *argv]


def _chown_tree(path: Path) -> None:
    import pwd  # POSIX only

    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no 'postgres' user to own the cluster") from None
    for root, dirs, files in os.walk(path):
        os.chown(root, owner.pw_uid, owner.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), owner.pw_uid, owner.pw_gid)


#: Stops the cluster when its owner dies without calling stop() (a killed pytest, a crashed demo): it blocks on a
#: pipe whose only writer is the owner, so the kernel wakes it when the owner goes, however it goes.
_REAPER = """
import json, shutil, subprocess, sys
word = sys.stdin.read()
if word != "stopped":
    subprocess.run(json.loads(sys.argv[1]), capture_output=True, timeout=60)
    shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


def _start_reaper(stop_argv: list[str], base: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _REAPER, json.dumps(stop_argv), str(base)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout)[-800:]}")


def start_postgres(tmpdir: str | os.PathLike[str], *, user: str = "rollback", password: str | None = None,
                   database: str = "postgres") -> tuple[str, Callable[[], None]]:
    """Create a cluster and start it on a free 127.0.0.1 port; returns (url with password, stop).

    The password authenticates TCP connections (scram-sha-256), so the URL really carries a secret. As root the
    cluster lives in a fresh directory under the system temp dir (pytest's tmp dirs are private to root) owned
    by `postgres`; `stop()` shuts the server down and removes that directory, and a small reaper process does
    the same if this process dies first.
    """
    initdb, pg_ctl = find_binaries()
    password = password or "pg-" + secrets.token_urlsafe(12)
    base = Path(tempfile.mkdtemp(prefix="rollback-tui-pg-", dir=None if os.geteuid() == 0 else tmpdir))
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    sockets.mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        _chown_tree(base)
    stopped = False
    stop_argv = _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"])
    reaper = _start_reaper(stop_argv, base)

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if (data / "postmaster.pid").exists():
            subprocess.run(stop_argv, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
        try:
            assert reaper.stdin is not None
            reaper.stdin.write("stopped")
            reaper.stdin.close()
            reaper.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            reaper.kill()

    try:
        _run([initdb, "-D", str(data), "-U", user, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
              "--auth-local=trust", "-E", "UTF8", "--no-sync", "--locale=C"], "initdb")
        pwfile.unlink()
        for attempt in range(3):
            port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            done = subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
                                             "start"]), capture_output=True, text=True, timeout=90)
            if done.returncode == 0:
                break
            if attempt == 2:  # another process may have taken the port between probe and bind
                tail = log.read_text()[-800:] if log.exists() else done.stderr
                raise PostgresUnavailable(f"pg_ctl start failed: {tail}")
    except BaseException:
        stop()
        raise
    return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{port}/{database}", stop
