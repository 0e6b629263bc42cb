"""Fixtures for the flag, webhook and configuration adapter tests: contexts with a canary secret, loopback servers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext
from rollback_tui.plan.models import Plan
from rollback_tui.secrets import SecretStore

from .util import CANARY, CANARY_ENV, Handler, Loopback


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
        "metadata": {"name": "adapters-web-test"},
        "rollback": {"scope": ["flags", "configuration"]},
        "secrets": {"canary": {"env": CANARY_ENV}},
        "steps": [{"id": "flags"}, {"id": "configuration"}, {"id": "validate"}],
    })


def assert_no_canary(*texts: Any) -> None:
    """The canary secret appears in none of the texts, raw or base64- or URL-encoded."""
    b64 = base64.b64encode(CANARY.encode()).decode().rstrip("=")[:-2]
    for text in texts:
        blob = str(text)
        assert CANARY not in blob
        assert b64 not in blob
        assert CANARY.replace("-", "%2D") not in blob


@pytest.fixture
def collected() -> Collected:
    return Collected()


@pytest.fixture
def ctx(tmp_path: Path, collected: Collected) -> ActionContext:
    workdir = tmp_path / "session"
    workdir.mkdir()
    store = SecretStore(make_plan().secrets, environ={CANARY_ENV: CANARY})
    return ActionContext(plan=make_plan(), step="flags", action_id="act", secrets=store, output=collected,
                         workdir=workdir, extra={"base_dir": str(tmp_path)})


@pytest.fixture
def serve() -> Iterator[Callable[..., Loopback]]:
    """Start loopback servers; all are shut down after the test."""
    servers: list[Loopback] = []

    def start(handler: Handler, **kwargs: Any) -> Loopback:
        server = Loopback(handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
