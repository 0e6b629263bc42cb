"""Regenerate docs/cockpit-demo.svg: the real demo in the cockpit, stopped at the code step's go/no-go.

Usage: python docs/make_screenshot.py  (builds and removes its own sandbox; takes ~20 s)
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from rollback_tui.demo.sandbox import build_sandbox
from rollback_tui.engine.session import Session
from rollback_tui.plan.loader import load_plan
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import LiveDriver

OUT = Path(__file__).resolve().parent / "cockpit-demo.svg"


async def wait_for(pilot: Pilot, kind: str, step: str = "", rounds: int = 3000) -> Any:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    for _ in range(rounds):
        ask = app._ask
        if ask is not None and ask[0].kind == kind and (not step or step in (ask[0].step, ask[0].subject)):
            return ask[0]
        await pilot.pause(0.02)
    raise TimeoutError(f"the cockpit never asked {kind} {step}")


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rollback-shot-") as tmp:
        sandbox = build_sandbox(Path(tmp) / "sandbox", operator="alice")
        with sandbox.start():
            loaded = load_plan(sandbox.plan_path, sandbox.variables)

            def factory(decisions: Any, listeners: list[Any], passphrase: Any) -> Any:
                return Session.start(loaded, decisions=decisions, operator="alice", no_sign=True, sign_key=None,
                                     journal_path=Path(tmp) / "s.journal.jsonl", report_path=Path(tmp) / "s.md",
                                     listeners=listeners, passphrase=passphrase, sample_every=0.5)

            app = CockpitApp(LiveDriver(factory), operator="alice")
            async with app.run_test(size=(160, 48)) as pilot:
                for _ in range(4):
                    await wait_for(pilot, "input")
                    await pilot.press("y")
                await wait_for(pilot, "plan_review")
                await pilot.press("y")
                await wait_for(pilot, "approval")
                await pilot.press("y", *"alice", "enter")
                for step in ("assess", "flags"):
                    await wait_for(pilot, "gate", step)
                    await pilot.press("g")
                await wait_for(pilot, "gate", "code")
                await pilot.pause(1.5)  # let a health sample and the log settle
                OUT.write_text(app.export_screenshot(title="rollback-tui demo: step 3, go/no-go"))
                await pilot.press("a", *"screenshot taken", "enter")
                await pilot.press("y")
                await pilot.pause(1.0)
    print(f"written: {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
