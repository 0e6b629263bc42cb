"""Where everything lives in a demo sandbox, and the facts of its two releases (shared by builder, services, ctl)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOOD_VERSION = "1.4.2"
BAD_VERSION = "1.5.0"
GOOD_TAG = f"v{GOOD_VERSION}"
BAD_TAG = f"v{BAD_VERSION}"
GOOD_REVISION = "0002"
BAD_REVISION = "0003"
FLAG = "new-checkout"
#: Rows seeded at the bad release that must all survive the downgrade.
SEEDED_ROWS = {"customers": 4, "orders": 6}
SERVICE = "checkout-service"
SSH_USER = "deploy"
#: Ports tried first (stable numbers read better on a shared screen); a busy one falls back to a free port.
PREFERRED_PORTS = {"web_port": 18080, "ssh_port": 18022, "hook_port": 18081, "prom_port": 18090}
#: The ports every sandbox has; `prom_port` only when the sandbox runs Prometheus (see demo/metrics.py).
SERVICE_PORTS = ("web_port", "ssh_port", "hook_port")


@dataclass(frozen=True)
class Layout:
    """Paths inside one sandbox directory."""

    root: Path

    @property
    def deploy(self) -> Path:
        """The git deploy checkout the web service runs from."""
        return self.root / "deploy"

    @property
    def app(self) -> Path:
        return self.deploy / "app.py"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def config(self) -> Path:
        return self.etc / "checkout.toml"

    @property
    def env_file(self) -> Path:
        return self.etc / "checkout.env"

    @property
    def flags(self) -> Path:
        return self.root / "flags" / "flags.json"

    @property
    def db_dir(self) -> Path:
        return self.root / "db"

    @property
    def db(self) -> Path:
        return self.db_dir / "checkout.db"

    @property
    def alembic_ini(self) -> Path:
        return self.db_dir / "alembic.ini"

    @property
    def migrations(self) -> Path:
        return self.db_dir / "migrations"

    @property
    def snapshot(self) -> Path:
        """The deployment snapshot: known-good config, .env and a manifest."""
        return self.root / "snapshot"

    @property
    def manifest(self) -> Path:
        return self.snapshot / "manifest.json"

    @property
    def ssh(self) -> Path:
        return self.root / "ssh"

    @property
    def user_key(self) -> Path:
        return self.ssh / "id_ed25519"

    @property
    def host_key(self) -> Path:
        return self.ssh / "host_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.ssh / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.ssh / "known_hosts"

    @property
    def sign_key(self) -> Path:
        return self.root / "keys" / "operator_ed25519"

    @property
    def allowed_signers(self) -> Path:
        return self.root / "keys" / "allowed_signers"

    @property
    def bin(self) -> Path:
        """Commands of the service's host (on PATH for SSH commands)."""
        return self.root / "bin"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def plan(self) -> Path:
        return self.root / "demo.yaml"

    @property
    def run(self) -> Path:
        """Runtime files: ready file, logs, received webhooks."""
        return self.root / "run"

    @property
    def ready(self) -> Path:
        return self.run / "services.json"

    @property
    def services_log(self) -> Path:
        return self.run / "services.log"

    @property
    def web_log(self) -> Path:
        return self.run / "web.log"

    @property
    def webhooks(self) -> Path:
        return self.run / "webhooks.jsonl"

    @property
    def metrics_choice(self) -> Path:
        """Whether this sandbox runs Prometheus (decided once, when it is built) and why not."""
        return self.root / "metrics.json"

    @property
    def prometheus(self) -> Path:
        """Prometheus's config and its data directory."""
        return self.root / "prometheus"

    @property
    def prometheus_log(self) -> Path:
        return self.run / "prometheus.log"

    def read_ready(self) -> dict[str, Any]:
        """The services process's ready file (ports, pids); raises OSError/ValueError when absent."""
        return json.loads(self.ready.read_text())
