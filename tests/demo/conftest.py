"""Fixtures of the demo tests: a built sandbox (not started) and a started one, always stopped afterwards."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.demo.sandbox import Sandbox, build_sandbox

#: Tests ask for free ports so they never take a running demo's preferred ones.
ANY_PORTS = {"web_port": 0, "ssh_port": 0, "hook_port": 0}


def get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """GET a JSON answer: (status, body), a 503 included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = build_sandbox(tmp_path / "sandbox", operator="demo-operator")
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def sandbox(built: Sandbox) -> Sandbox:
    return built.start(ports=ANY_PORTS)
