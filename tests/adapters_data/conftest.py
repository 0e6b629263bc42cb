"""Fixtures for the code, database and infrastructure adapter tests: contexts with a canary secret, git repos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

from .util import CANARY, CANARY_ENV, commit, git


class Collected:
    """Everything an adapter printed through the context."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def __call__(self, host: str, stream: str, lines: list[str]) -> None:
        self.lines.extend((host, stream, line) for line in lines)

    @property
    def text(self) -> str:
        return "\n".join(line for _, _, line in self.lines)


def make_plan() -> Plan:
    return Plan.model_validate({
        "metadata": {"name": "adapters-data-test"},
        "rollback": {"scope": ["code", "database", "infrastructure"]},
        "secrets": {"PGPASS": {"env": CANARY_ENV}},
        "steps": [{"id": "code"}, {"id": "database"}, {"id": "infrastructure"}],
    })


@pytest.fixture
def collected() -> Collected:
    return Collected()


@pytest.fixture
def ctx(tmp_path: Path, collected: Collected) -> ActionContext:
    workdir = tmp_path / "session"
    workdir.mkdir()
    store = SecretStore(make_plan().secrets, environ={CANARY_ENV: CANARY})
    store.load_all()
    return ActionContext(plan=make_plan(), step="database", action_id="act", secrets=store, output=collected,
                         workdir=workdir)


@pytest.fixture
def deploy_repo(tmp_path: Path) -> dict[str, Any]:
    """A deploy checkout with releases v2.3.1 (good) and v2.4.0 (bad, 3 commits later), checked out at v2.4.0."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"VERSION": "2.3.0\n", "app.py": "print('hi')\n"}, "initial")
    good = commit(repo, {"VERSION": "2.3.1\n"}, "release 2.3.1")
    git(repo, "tag", "v2.3.1")
    commit(repo, {"feature.py": "x = 1\n"}, "feature")
    commit(repo, {"feature.py": "x = 2\n"}, "feature tweak")
    bad = commit(repo, {"VERSION": "2.4.0\n"}, "release 2.4.0")
    git(repo, "tag", "v2.4.0")
    return {"path": repo, "good": good, "bad": bad}


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """Put a fake executable first on PATH: it appends its argv (one JSON list a line) to NAME.argv and runs
    `body` (shell) for its output."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")

    def make(name: str, body: str = "") -> Path:
        record = tmp_path / f"{name}.argv"
        script = bindir / name
        script.write_text(
            "#!/bin/sh\n"
            f"python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \"$@\" >> {record}\n"
            f"{body}\n"
        )
        script.chmod(0o755)
        return record

    return make
