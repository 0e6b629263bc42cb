"""Replay on a recorded real demo journal: stepping (`.`/`,`), seeking and jumping (`3`) show exactly the state
after event N (the procedure's fold re-folded to N), including which screen is current; follow agrees at every event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.record.journal import read_journal
from rollback_tui.procedure.fold import SessionState, fold
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import FollowDriver, ReplayDriver
from harness import settle

ROOT = Path(__file__).resolve().parents[2]
#: What a screen alone adds to the fold's snapshot.
SCREEN_ONLY = {"probes", "output_lines", "outcome"}


@pytest.fixture(scope="module")
def demo_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = tmp_path_factory.mktemp("demo") / "sandbox"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "rollback_tui", "demo", "--headless", "--answers", "auto",
                           "--no-sign", "--operator", "demo-operator", "--keep", str(keep)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(keep.rglob("*.journal.jsonl"))


def fold_part(view: Any) -> dict[str, Any]:
    return {key: value for key, value in view.snapshot().items() if key not in SCREEN_ONLY}


def screen_of(state: SessionState) -> str:
    return "" if state.screen == "main" else state.screen


@pytest.mark.slow
async def test_replay_seeks_step_and_jump_show_the_fold_at_event_n(demo_journal: Path) -> None:
    events = read_journal(demo_journal).events
    app = CockpitApp(ReplayDriver(events, speed=1.0, start_paused=True))
    async with app.run_test(size=(120, 36)) as pilot:
        driver: ReplayDriver = app.driver  # type: ignore[assignment]
        await settle(pilot, lambda: driver.app is not None)
        screens = set()
        asked = [i + 1 for i, e in enumerate(events) if e.type == "decision_requested"]
        for n in sorted({*range(0, len(events) + 1, 7), *asked, len(events)}) + [40, 12, 3, 0]:  # forward, back
            driver.seek(n)
            await settle(pilot)
            expected = fold(events, upto=n)
            assert fold_part(app.view) == expected.snapshot(), n
            assert app.phase == screen_of(expected), n
            screens.add(app.phase)
        assert {"input", "plan_review", "approval", "", "summary"} <= screens
        for _ in range(5):
            await pilot.press("full_stop")  # `.`: one event forward
        await settle(pilot)
        assert driver.position == 5 and fold_part(app.view) == fold(events, upto=5).snapshot()
        await pilot.press("comma", "comma")  # `,`: one back
        await settle(pilot)
        assert driver.position == 3 and fold_part(app.view) == fold(events, upto=3).snapshot()
        await pilot.press("3")  # jump to step 3 (code) started
        await settle(pilot)
        started = next(i for i, e in enumerate(events) if e.type == "step_started" and e.step == "code") + 1
        assert driver.position == started and app.view.current_step == "code" and app.phase == ""
        assert fold_part(app.view) == fold(events, upto=started).snapshot()
        driver.seek(len(events))
        await settle(pilot, lambda: app.phase == "summary")
        summary = app.screen.body(app.view, True).plain  # type: ignore[attr-defined]
        assert "Outcome: ✔ completed" in summary and "Rollback complete" in summary


@pytest.mark.slow
async def test_follow_shows_the_fold_at_every_event_of_the_demo(demo_journal: Path, tmp_path: Path) -> None:
    events = read_journal(demo_journal).events
    copy = tmp_path / "follow.journal.jsonl"
    copy.write_bytes(demo_journal.read_bytes())
    followed: list[dict[str, Any]] = []
    app = CockpitApp(FollowDriver(copy, poll=0.02), state_hook=followed.append)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, lambda: app.view.events == len(events), rounds=3000)
    state = SessionState()
    assert len(followed) == len(events)
    for event, seen in zip(events, followed):
        state.apply(event)
        assert {k: v for k, v in seen.items() if k not in SCREEN_ONLY} == state.snapshot(), event.seq
