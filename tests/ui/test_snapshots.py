"""Snapshots of every screen at 80x24 and 160x48, and of the main screen in every shipped theme.

Deterministic: fixed clock, scripted events with fixed times, no cursor blink, empty user config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from rollback_tui.record import events as ev
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import ReplayDriver, ScriptDriver
from rollback_tui.ui.themes import BUILTIN_NAMES
from harness import LastAskDriver, fixed_clock, settle, wait_for_request
from scripted import Clock, before_execution, code_step_running, finished

SIZES = [(80, 24), (160, 48)]
REPORT_INFO = {"path": "/srv/rollback/checkout-v2-rollback-20261126T093000.md",
               "signature": "✔ signed by ED25519 SHA256:q1w2e3r4t5 alice@cockpit",
               "journal": "/srv/rollback/checkout-v2-rollback-20261126T093000.journal.jsonl"}


def plan_review_events() -> list[Any]:
    c = Clock()
    out = before_execution(c)
    out += [ev.DecisionMade(request_id=1, kind="input", subject="migration-scripts", choice="remediate", by="alice",
                            **c()),
            ev.DecisionRequested(request_id=2, kind="plan_review", question="Approve this Rollback Plan?",
                                 options=["approve", "reject"], needs_reason=["reject"],
                                 evidence=ev.Evidence(detail=(
                                     "# Rollback Plan: checkout-v2-rollback\n\n"
                                     "## Scope\n\n- flags\n- code\n- configuration\n- database\n\n"
                                     "## Order\n\n1. flags\n2. code\n3. configuration\n4. database\n\n"
                                     "## Risks\n\n- web-2 restarts slowly\n- the migration drops a column\n")),
                                 **c())]
    return out


def approval_events() -> list[Any]:
    c = Clock()
    out = plan_review_events()
    c.now, c.seq = out[-1].ts, out[-1].seq
    out += [ev.DecisionMade(request_id=2, kind="plan_review", choice="approve", by="alice", **c()),
            ev.PlanReviewed(approved=True, **c()),
            ev.DecisionRequested(request_id=3, kind="approval", subject="devops-lead",
                                 question="DevOps Lead: approve the execution of this rollback?",
                                 options=["approve", "reject"], needs_reason=["reject"], **c())]
    return out


def app_for(events: list[Any], theme: str = "incident-dark") -> CockpitApp:
    return CockpitApp(LastAskDriver(events), clock=fixed_clock, operator="alice", theme=theme)


def until_kind(kind: str, step: str = "") -> Callable[[Pilot], Awaitable[None]]:
    async def run_before(pilot: Pilot) -> None:
        await wait_for_request(pilot, kind, step)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_awaiting_decision(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(code_step_running(Clock())), run_before=until_kind("action_failed", "code"),
                        terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_required_inputs_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(before_execution(Clock())), run_before=until_kind("input"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_plan_review_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(plan_review_events()), run_before=until_kind("plan_review"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_approvals_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(approval_events()), run_before=until_kind("approval"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_summary_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    app = CockpitApp(ScriptDriver(finished(Clock()), answer=False), clock=fixed_clock, operator="alice")
    app.report_info.update(REPORT_INFO)

    async def run_before(pilot: Pilot) -> None:
        await app.workers.wait_for_complete()
        await settle(pilot, lambda: app.phase == "summary")

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_reason_prompt_for_abort(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await wait_for_request(pilot, "action_failed", "code")
        await pilot.press("a", *"web-2 will not start")

    assert snap_compare(app_for(code_step_running(Clock())), run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_paused_at_step_3(snap_compare: Any, size: tuple[int, int]) -> None:
    app = CockpitApp(ReplayDriver(finished(Clock()), speed=1.0, start_paused=True),
                     mode_note="✔ report verified: signed by alice")

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, lambda: app.driver.app is not None)
        await pilot.press("3")
        await settle(pilot, lambda: app.view.current_step == "code")

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("theme", BUILTIN_NAMES)
def test_main_screen_in_every_theme(snap_compare: Any, theme: str) -> None:
    assert snap_compare(app_for(code_step_running(Clock()), theme=theme), run_before=until_kind("action_failed", "code"),
                        terminal_size=(160, 48))
