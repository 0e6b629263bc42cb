"""Build the files of a demo sandbox: deploy repo, database, flags, config, snapshot, keys, host commands, docs."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from importlib import resources
from pathlib import Path

from rollback_tui.demo import metrics
from rollback_tui.demo.layout import (
    BAD_REVISION,
    BAD_VERSION,
    FLAG,
    GOOD_REVISION,
    GOOD_TAG,
    GOOD_VERSION,
    SERVICE,
    Layout,
)
from rollback_tui.errors import RollbackError

SHIPPED_PLAN = Path(__file__).resolve().parent.parent / "sample_plans" / "demo.yaml"

_PRICE_141 = '''def price_order(order: dict) -> int:
    """Total in cents, VAT included."""
    vat = {"NL": 21, "DE": 19}.get(order["country"], 20)
    total = 0
    for item in order["items"]:
        line = item["cents"] * item["qty"]
        total += line + line * vat // 100
    return total'''

_PRICE_142 = '''def price_order(order: dict) -> int:
    """Total in cents, VAT included (rounded half up per line since 1.4.2)."""
    vat = {"NL": 21, "DE": 19}.get(order["country"], 20)
    total = 0
    for item in order["items"]:
        line = item["cents"] * item["qty"]
        total += line + (line * vat + 50) // 100
    return total'''

_PRICE_150 = '''TAX_REGIONS = {"EU-NL": 21, "EU-DE": 19, "EU": 20}


def price_order(order: dict) -> int:
    """Total in cents, VAT by tax region (new checkout, 1.5.0)."""
    vat = TAX_REGIONS[order["tax_region"]]
    total = 0
    for item in order["items"]:
        line = item["cents"] * item["qty"]
        total += line + (line * vat + 50) // 100
    return total'''

#: (version, pricing code, commit message, commit date)
_RELEASES = [
    ("1.4.1", _PRICE_141, "checkout-service 1.4.1", "2026-11-02T10:00:00+00:00"),
    (GOOD_VERSION, _PRICE_142, "Round VAT half up per order line (1.4.2)", "2026-11-12T14:30:00+00:00"),
    (BAD_VERSION, _PRICE_150, "New checkout flow: VAT by tax region, behind flag new-checkout (1.5.0)",
     "2026-11-25T16:45:00+00:00"),
]

GOOD_CONFIG = """# checkout-service configuration
[checkout]
engine = "v1"
currency = "EUR"

[payments]
gateway_timeout_ms = 2000
retries = 2
"""

BAD_CONFIG = """# checkout-service configuration
[checkout]
engine = "v2"
currency = "EUR"
tax_regions_url = "http://127.0.0.1:9/tax-regions"

[payments]
gateway_timeout_ms = 800
retries = 0
"""

GOOD_ENV = "LOG_LEVEL=info\nWORKERS=4\nORDER_LIMIT=50\n"
BAD_ENV = "LOG_LEVEL=debug\nWORKERS=8\nORDER_LIMIT=50\nCHECKOUT_V2_TIMEOUT_MS=300\n"

_CUSTOMERS = [
    (1, "ada@example.com", "Ada Lovelace"),
    (2, "grace@example.com", "Grace Hopper"),
    (3, "edsger@example.com", "Edsger Dijkstra"),
    (4, "barbara@example.com", "Barbara Liskov"),
]
_ORDERS = [
    (1, 1, 3025, "2026-11-20T09:12:00Z", "paid", "v1"),
    (2, 2, 1815, "2026-11-21T11:40:00Z", "paid", "v1"),
    (3, 3, 9680, "2026-11-23T17:03:00Z", "refunded", "v1"),
    (4, 1, 605, "2026-11-25T16:58:00Z", "paid", "v2"),
    (5, 4, 2420, "2026-11-25T17:05:00Z", "paid", "v2"),
    (6, 2, 12100, "2026-11-25T17:21:00Z", "paid", "v2"),
]
_SESSIONS = [(1, 4, "EU-NL", "completed"), (2, None, None, "failed"), (3, 6, "EU-NL", "completed")]


def _file(name: str) -> str:
    return resources.files("rollback_tui.demo.files").joinpath(name).read_text()


def _write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)


def _git(repo: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Release Bot", "GIT_AUTHOR_EMAIL": "release-bot@example.com",
           "GIT_COMMITTER_NAME": "Release Bot", "GIT_COMMITTER_EMAIL": "release-bot@example.com"}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    # the user's global settings (signing, hooks) must not change or break the sandbox's history
    argv = ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null",
            "-C", str(repo), *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RollbackError(f"demo: git {' '.join(args)} failed: {done.stderr.strip()}")


def build_repo(layout: Layout) -> None:
    """The deploy repository: tags v1.4.1, v1.4.2 (known good) and v1.5.0 (bad), checked out at the bad one."""
    repo = layout.deploy
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    app = _file("app.py.txt")
    _write(repo / "README.md", _file("deploy_readme.md"))
    _write(repo / ".gitignore", "__pycache__/\n")
    for version, pricing, message, date in _RELEASES:
        _write(repo / "VERSION", version + "\n")
        _write(repo / "app.py", app.replace("@@PRICE_ORDER@@", pricing))
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", message, date=date)
        _git(repo, "tag", f"v{version}")


def build_config(layout: Layout) -> None:
    """Live config and .env at the bad release; the deployment snapshot holds the known-good ones."""
    _write(layout.config, BAD_CONFIG)
    _write(layout.env_file, BAD_ENV)
    _write(layout.snapshot / "etc" / layout.config.name, GOOD_CONFIG)
    _write(layout.snapshot / "etc" / layout.env_file.name, GOOD_ENV)
    manifest = {
        "service": SERVICE,
        "taken_before_deploying": BAD_VERSION,
        "release": {"version": GOOD_VERSION, "git_tag": GOOD_TAG, "db_revision": GOOD_REVISION},
        "files": {str(layout.config): f"etc/{layout.config.name}", str(layout.env_file): f"etc/{layout.env_file.name}"},
        "flags": {FLAG: "off"},
    }
    _write(layout.manifest, json.dumps(manifest, indent=2) + "\n")


def build_flags(layout: Layout) -> None:
    """flagd flag definitions with the new checkout on for 100 % of users."""
    flags = {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            FLAG: {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
                "targeting": {"fractional": [["on", 100], ["off", 0]]},
            },
            "dark-mode": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"},
        },
    }
    _write(layout.flags, json.dumps(flags, indent=2) + "\n")


def build_database(layout: Layout) -> None:
    """SQLite migrated by the shipped Alembic migrations to the bad release's revision, with seeded rows."""
    from alembic import command
    from alembic.config import Config

    _write(layout.alembic_ini, _file("alembic.ini"))
    _write(layout.migrations / "env.py", _file("env.py.txt"))
    _write(layout.migrations / "script.py.mako", _file("script.py.mako"))
    for name in ("0001_initial", "0002_order_status", "0003_new_checkout"):
        _write(layout.migrations / "versions" / f"{name}.py", _file(f"{name}.py.txt"))
    config = Config(str(layout.alembic_ini))
    command.upgrade(config, GOOD_REVISION)
    with closing(sqlite3.connect(layout.db)) as db, db:
        db.executemany("INSERT INTO customers (id, email, name) VALUES (?, ?, ?)", _CUSTOMERS)
        db.executemany("INSERT INTO orders (id, customer_id, total_cents, created_at, status) VALUES (?, ?, ?, ?, ?)",
                       [row[:5] for row in _ORDERS[:3]])
    command.upgrade(config, BAD_REVISION)
    with closing(sqlite3.connect(layout.db)) as db, db:
        db.executemany(
            "INSERT INTO orders (id, customer_id, total_cents, created_at, status, checkout_engine)"
            " VALUES (?, ?, ?, ?, ?, ?)", _ORDERS[3:])
        db.executemany("INSERT INTO checkout_sessions (id, order_id, tax_region, state) VALUES (?, ?, ?, ?)",
                       _SESSIONS)


def _principal(operator: str) -> str:
    return f'"{operator}"' if any(ch.isspace() or ch == "," for ch in operator) else operator


def build_keys(layout: Layout, operator: str) -> None:
    """SSH host key, the operator's SSH key for the host, and a report-signing key with its allowed_signers."""
    import asyncssh

    layout.ssh.mkdir(parents=True, exist_ok=True)
    layout.sign_key.parent.mkdir(parents=True, exist_ok=True)
    for path in (layout.host_key, layout.user_key, layout.sign_key):
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"rollback-demo {path.name}")
        key.write_private_key(str(path))
        path.chmod(0o600)
        key.write_public_key(str(path) + ".pub")
    user_pub = Path(str(layout.user_key) + ".pub").read_text().strip()
    layout.authorized_keys.write_text(user_pub + "\n")
    sign_pub = Path(str(layout.sign_key) + ".pub").read_text().split()
    layout.allowed_signers.write_text(f'{_principal(operator)} namespaces="rollback-tui" {sign_pub[0]} {sign_pub[1]}\n')


def build_host_commands(layout: Layout) -> None:
    """`checkout-service restart|status|situation` on the service's host (what SSH commands call)."""
    script = (
        "#!/bin/sh\n"
        f"# {SERVICE} control on this host (demo sandbox): restart | status | situation | watch-health\n"
        f"exec {shlex.quote(sys.executable)} -m rollback_tui.demo.ctl --sandbox {shlex.quote(str(layout.root))} \"$@\"\n"
    )
    _write(layout.bin / SERVICE, script, 0o755)


def build_docs(layout: Layout) -> None:
    _write(layout.docs / "runbook.md", _file("runbook.md"))


def build_plan(layout: Layout) -> None:
    """A copy of the shipped demo plan, so the operator can read (and edit) what runs: with its metrics parts
    (a prometheus probe, step 7's analysis) when Prometheus can run here, else without them and a note why."""
    enabled, note = metrics.choose()
    metrics.record_choice(layout, enabled, note)
    layout.plan.write_text(metrics.plan_text(SHIPPED_PLAN.read_text(), enabled, note))


def build_all(layout: Layout, operator: str) -> None:
    if shutil.which("git") is None:
        raise RollbackError("demo: git is not installed; install git (e.g. `apt-get install git`, "
                            "`brew install git`) and run `rollback-tui demo` again")
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(exist_ok=True)
    build_repo(layout)
    build_config(layout)
    build_flags(layout)
    build_database(layout)
    build_keys(layout, operator)
    build_host_commands(layout)
    build_docs(layout)
    build_plan(layout)
