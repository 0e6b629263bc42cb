"""Determinism for cockpit tests: no cursor blink, an empty config dir (no user themes/keymap), scripted events."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "_toggle_cursor", lambda _self: None)


@pytest.fixture(autouse=True)
def empty_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("ROLLBACK_TUI_CONFIG_DIR", str(config))
    yield config
