"""Helpers shared by the data adapter tests: the canary secret and real git commands."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: A canary secret: it must never appear in output, errors, details or describe text. Its characters need
#: URL-encoding, so the adapters' URL handling is exercised too.
CANARY = "Canary-p@ss/w:rd%42!"
CANARY_ENV = "RBT_TEST_CANARY"


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(repo.parent), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


FIXTURE = Path(__file__).parent / "alembic_fixture"

_UPGRADE = """
import sys
from alembic import command
from alembic.config import Config
config = Config(sys.argv[1])
config.set_main_option("sqlalchemy.url", sys.argv[2].replace("%", "%%"))
command.upgrade(config, sys.argv[3])
"""


def alembic_upgrade(ini: Path, url: str, revision: str = "head") -> None:
    """Upgrade for real, in a child process (env.py's fileConfig would rewire pytest's logging)."""
    import sys

    subprocess.run([sys.executable, "-c", _UPGRADE, str(ini), url, revision], check=True, capture_output=True)
