"""The throwaway PostgreSQL helper: a password-protected cluster that is gone after stop() or its owner's death."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollback_tui.loopback.postgres import PostgresUnavailable, find_binaries, start_postgres

try:
    find_binaries()
    _REASON = ""
except PostgresUnavailable as exc:
    _REASON = str(exc)

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(bool(_REASON), reason=_REASON)]

_OWNER = """
import os
from rollback_tui.loopback.postgres import start_postgres
url, stop = start_postgres("/tmp")
print(url, flush=True)
os.kill(os.getpid(), 9)
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_closed(port: int) -> bool:
    for _ in range(300):  # the reaper needs a moment to run pg_ctl stop
        if not _accepts(port):
            return True
        time.sleep(0.1)
    return False


def test_password_is_required_and_stop_cleans_up(tmp_path: Path) -> None:
    import psycopg2

    url, stop = start_postgres(tmp_path, password="s3cret-pw")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        assert ":s3cret-pw@127.0.0.1:" in url
        conn = psycopg2.connect(url)
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(url.replace("s3cret-pw", "wrong-pw"))
    finally:
        stop()
    assert _wait_closed(port)
    stop()  # a second stop is harmless


def test_cluster_dies_with_a_killed_owner() -> None:
    done = subprocess.run([sys.executable, "-c", _OWNER], capture_output=True, text=True, timeout=120)
    url = done.stdout.strip()
    assert url.startswith("postgresql://"), done.stderr
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert _wait_closed(port)
