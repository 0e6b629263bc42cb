"""The headless layers never import Textual (CONVENTIONS.md rule 1)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import rollback_tui

HEADLESS = ("procedure", "record", "plan", "review", "engine", "adapters", "health", "report", "frontend")


def test_headless_layers_do_not_import_textual() -> None:
    names = ["rollback_tui.cli", "rollback_tui.secrets", "rollback_tui.errors"]
    for info in pkgutil.walk_packages(rollback_tui.__path__, "rollback_tui."):
        if info.name.split(".")[1] in HEADLESS:
            names.append(info.name)
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(names) > 10
