"""The real flagd evaluator (@openfeature/flagd-core via Node.js) as a test oracle for the flagd adapter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.flagd_eval import Outcome
from rollback_tui.adapters.flagd_verify import Verdict, check_flag, context_spread, same_value
from rollback_tui.adapters.flags import load_flagd

PEER_DIR = Path(__file__).resolve().parents[1] / "peers" / "flagd"
SCRIPT = PEER_DIR / "evaluate.cjs"


def peer_missing() -> str | None:
    """Why the real evaluator cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEER_DIR / "node_modules" / "@openfeature" / "flagd-core" / "package.json").is_file():
        return f"@openfeature/flagd-core is not installed: run `npm ci --prefix {PEER_DIR}`"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_peer() -> None:
    """Fail in CI, skip elsewhere, when the real evaluator is not installed."""
    reason = peer_missing()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"the real flagd evaluator is required in CI: {reason}")
    pytest.skip(f"real flagd evaluator unavailable: {reason}")


def peer_version() -> str:
    return json.loads((PEER_DIR / "node_modules/@openfeature/flagd-core/package.json").read_text())["version"]


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "object"


def real_evaluate(path: Path, flags: dict[str, tuple[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    """{flag: [{reason, variant, value}]} from flagd-core, one node run (flags maps key -> (type, contexts))."""
    request = {"file": str(path), "flags": [{"key": k, "type": t, "contexts": c} for k, (t, c) in flags.items()]}
    done = subprocess.run(["node", str(SCRIPT)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"flagd-core failed on {path}: {done.stderr[-2000:]}"
    answer = json.loads(done.stdout)
    assert answer["version"] == peer_version()
    return answer["results"]


class FlagdPeer:
    """Compares rollback-tui's flagd evaluation with the real flagd-core, context by context."""

    def __init__(self) -> None:
        self.checked: list[tuple[Path, str]] = []

    def agree(self, path: Path, off_variant: str = "off", app_default: Any = None,
              has_app_default: bool = False) -> dict[str, tuple[Verdict, list[dict[str, Any]]]]:
        """Every flag of the file: our verdict and outcomes must match what flagd-core serves."""
        require_peer()
        doc = load_flagd(path)
        verdicts: dict[str, Verdict] = {}
        types: dict[str, str] = {}
        for key, flag in doc["flags"].items():
            variants = flag.get("variants") or {}
            off_value = variants.get(off_variant, next(iter(variants.values()), False))
            verdicts[key] = check_flag(doc, key, flag, off_value, app_default, has_app_default)
            types[key] = _type(off_value)
        everything = real_evaluate(path, {key: (types[key], v.contexts or context_spread({}))
                                          for key, v in verdicts.items()})
        results: dict[str, tuple[Verdict, list[dict[str, Any]]]] = {}
        for key, verdict in verdicts.items():
            real = everything[key]
            variants = doc["flags"][key].get("variants") or {}
            off_value = variants.get(off_variant, next(iter(variants.values()), False))
            if verdict.status != "unverified" or verdict.outcomes:
                for context, ours, theirs in zip(verdict.contexts, verdict.outcomes, real):
                    if ours is None:
                        continue  # undecidable for this context: verify does not claim anything
                    assert _pair(ours) == (theirs["reason"], theirs["variant"]), (
                        f"{path} flag {key}: rollback-tui says {_pair(ours)}, flagd-core says "
                        f"{theirs['reason']}/{theirs['variant']} for context {context}")
            real_on = [r for r in real if not _served_off(r, off_value, app_default, has_app_default, variants)]
            if verdict.status == "off":
                assert not real_on, f"{path} flag {key}: verify says off, flagd-core serves {real_on[0]}"
            self.checked.append((path, key))
            results[key] = (verdict, real)
        return results

    def assert_off(self, path: Path, keys: list[str], off_variant: str = "off", app_default: Any = None,
                   has_app_default: bool = False) -> None:
        """After a completed rollback: flagd-core serves the off value to every context tried."""
        results = self.agree(path, off_variant, app_default, has_app_default)
        doc = load_flagd(path)
        for key in keys:
            verdict, real = results[key]
            variants = doc["flags"][key].get("variants") or {}
            off_value = variants.get(off_variant)
            on = [r for r in real if not _served_off(r, off_value, app_default, has_app_default, variants)]
            assert not on, f"{path} flag {key}: flagd-core still serves {on[0]} after the rollback"
            assert verdict.status == "off", verdict.detail


def assert_served_off(path: Path, keys: list[str]) -> None:
    """For tests whose main subject is not flagd: check with the real evaluator, or warn (never skip) outside CI."""
    reason = peer_missing()
    if reason is not None and not in_ci():
        warnings.warn(f"{path}: not checked by the real flagd evaluator: {reason}", stacklevel=2)
        return
    FlagdPeer().assert_off(path, keys)


def _pair(outcome: Outcome) -> tuple[str, str | None]:
    return outcome.reason, outcome.variant


def _served_off(real: dict[str, Any], off_value: Any, app_default: Any, has_app_default: bool,
                variants: dict[str, Any]) -> bool:
    if real["variant"] is None:
        return has_app_default and same_value(app_default, off_value)
    return same_value(variants.get(real["variant"]), off_value)


def flag_files(root: Path) -> list[Path]:
    """Flag files a test left under its tmp_path (the session's backups excluded)."""
    found = []
    for path in sorted(root.iterdir()):
        if path.suffix in (".json", ".yaml", ".yml") and path.is_file() and not path.is_symlink():
            try:
                load_flagd(path)
            except Exception:  # a deliberately broken file: nothing to evaluate
                continue
            found.append(path)
    return found


@pytest.fixture(autouse=True)
def peer(tmp_path: Path) -> Iterator[FlagdPeer]:
    """The real flagd-core: every flag file a test leaves behind is evaluated by it and by verify, and they agree."""
    require_peer()
    checker = FlagdPeer()
    yield checker
    for path in flag_files(tmp_path):
        checker.agree(path)
