"""Helpers for driving the cockpit in Pilot tests: wait for conditions rather than sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from textual.pilot import Pilot

from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import ScriptDriver
from rollback_tui.ui.logpane import LogPane
from scripted import T0

FIXED_NOW = T0 + timedelta(minutes=12, seconds=3)


def fixed_clock() -> object:
    return FIXED_NOW


async def settle(pilot: Pilot, until: Callable[[], bool] = lambda: True, rounds: int = 400) -> None:
    """Pause until the inbox is drained, the log flushed, and `until()` holds (bounded, never a sleep)."""
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    for _ in range(rounds):
        await pilot.pause()
        if app.inbox or app.wake_posted:
            continue
        log = app.main_screen.query_one(LogPane)
        if log.pending:
            log.flush()
            continue
        if until():
            app.redraw()
            await pilot.pause()
            return
    raise AssertionError("condition not reached")


async def wait_for_request(pilot: Pilot, kind: str, step: str = "") -> None:
    app: CockpitApp = pilot.app  # type: ignore[assignment]

    def asked() -> bool:
        ask = app._ask
        return ask is not None and ask[0].kind == kind and (not step or ask[0].step == step) \
            and app.view.pending is not None and app.view.pending.request_id == ask[0].request_id

    await settle(pilot, asked)


class LastAskDriver(ScriptDriver):
    """Feeds every event, but asks the cockpit only for the last DecisionRequested (a state to look at)."""

    async def run(self, app: CockpitApp) -> None:
        requests = [i for i, e in enumerate(self.events) if getattr(e, "type", "") == "decision_requested"]
        last = requests[-1] if requests else -1
        for index, event in enumerate(self.events):
            app.post_event(event)
            if index == last:
                self.decisions.append(await app.ask(event))
