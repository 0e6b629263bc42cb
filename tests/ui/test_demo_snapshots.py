"""Snapshots of the real demo's gates (a journal recorded from a headless demo run, folded by a live cockpit) at
80x24 and 160x48 in every shipped theme: the question, the whole evidence or its scroll, the health summary and
the keys must all be on screen. The assertions next to each snapshot check the same in text, so a snapshot
update cannot hide a cut key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.keybar import KeyBar
from rollback_tui.ui.themes import BUILTIN_NAMES
from rollback_tui.ui.drivers import ScriptDriver
from demo_gates import demo_app, demo_events, until_question
from harness import settle, wait_for_request

SIZES = [(80, 24), (160, 48)]
GATES = {  # name -> (kind, step, subject)
    "inputs": ("input", "", "rollback-team"),
    "plan-review": ("plan_review", "", ""),
    "code-gate": ("gate", "code", ""),
    "configuration-gate": ("gate", "configuration", ""),
}


def size_id(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def screen_text(app: CockpitApp) -> str:
    """What the terminal shows, as plain text (one line per row)."""
    from rich.console import Console

    console = Console(width=app.size.width, height=app.size.height, record=True, color_system=None,
                      file=open("/dev/null", "w"))
    console.print(app.screen._compositor.render_update(full=True))  # noqa: SLF001 (the frame, as drawn)
    return console.export_text()


def at_gate(kind: str, step: str, checks: Callable[[Pilot], None] | None = None) -> Callable[[Pilot], Awaitable[None]]:
    async def run_before(pilot: Pilot) -> None:
        await wait_for_request(pilot, kind, step)
        await pilot.pause()
        if checks is not None:
            checks(pilot)

    return run_before


def keys_and_health_visible(pilot: Pilot) -> None:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    shown = screen_text(app).replace("\u00a0", " ")
    request = app.view.pending
    assert request is not None and "Health:" in shown
    for choice in request.options:
        from rollback_tui.ui.decision import CHOICES, FOOTER_WORDS

        key, words = CHOICES[choice]
        short = FOOTER_WORDS.get(choice, words).replace(" ", "-")
        assert f"{key}:{short}" in shown or f"{key}  {words}" in shown, (choice, shown)
    bar = app.screen.query_one(KeyBar)
    shown_keys = [key for key, *_ in bar.keys()[0]]
    assert all(0 <= end <= app.size.width for _s, end, _k, _ok in bar.spans) and len(bar.spans) == len(shown_keys) + 1


@pytest.mark.parametrize("theme", BUILTIN_NAMES)
@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("gate", list(GATES))
def test_demo_gate(snap_compare: Any, gate: str, size: tuple[int, int], theme: str) -> None:
    kind, step, subject = GATES[gate]
    checks = keys_and_health_visible if kind == "gate" else None
    assert snap_compare(demo_app(until_question(kind, step, subject), theme=theme),
                        run_before=at_gate(kind, step, checks), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_demo_validation_gate(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(demo_app(until_question("gate", "validate"), theme="screen-share"),
                        run_before=at_gate("gate", "validate", keys_and_health_visible), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_demo_summary_marks_the_same_person_approval(snap_compare: Any, size: tuple[int, int]) -> None:
    """The demo's plan lets one person approve for both roles and the recorded run did (alice): the end says so."""
    events = demo_events()
    app = CockpitApp(ScriptDriver(events, answer=False), clock=lambda: events[-1].ts, operator="alice")
    app.report_info.update({"path": "demo.md", "signature": "✖ NOT signed: --no-sign", "journal": "demo.journal.jsonl"})

    async def run_before(pilot: Pilot) -> None:
        await app.workers.wait_for_complete()
        await settle(pilot, lambda: app.phase == "summary")
        shown = " ".join(app.screen.body(app.view, False).plain.split())  # (the body scrolls at 80x24)
        assert "Technical Lead by alice ⚠ same person as for DevOps Lead (allowed by this plan)" in shown, shown

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_demo_evidence_full_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await wait_for_request(pilot, "gate", "configuration")
        await pilot.pause()
        await pilot.press("i")
        await pilot.pause()
        shown = screen_text(pilot.app)  # type: ignore[arg-type]
        assert "item 1 of 6" in shown and "5ba2f7973a6a1c77 (snapshot" in shown

    assert snap_compare(demo_app(until_question("gate", "configuration"), theme="screen-share"),
                        run_before=run_before, terminal_size=size)
