"""The launch path: the cockpit's first frame does not wait for the plan; a bad plan still prints its positioned
problems and exits 2 before any session starts; the footer's keys work with the mouse; the compiled-in default
theme is the shipped file."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.cli import SessionOptions, main
from rollback_tui.ui import launch
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.keybar import KeyBar
from rollback_tui.ui.panes import HeaderBar
from rollback_tui.ui.themes import SHIPPED_DIR, default_theme, parse_theme

GOOD_PLAN = """\
version: 1
metadata: {name: launch-check, incident: INC-7, environment: staging}
rollback: {scope: [flags]}
steps:
  - id: flags
    actions: [{id: off, kind: shell, argv: ["true"]}]
"""

BAD_PLAN = """\
version: 1
metadata: {name: launch-check}
rollback: {scope: [flags]}
stepz: []
"""


@pytest.fixture(autouse=True)
def unfreeze() -> Iterator[None]:
    """CockpitApp.run freezes what start-up built (ui/startup.py): give this test process its objects back."""
    yield
    gc.unfreeze()


@pytest.fixture
def headless_run(monkeypatch: pytest.MonkeyPatch) -> list[CockpitApp]:
    """Make CockpitApp.run headless (the launch path calls it) and remember the apps it ran."""
    apps: list[CockpitApp] = []
    run = CockpitApp.run

    def headless(self: CockpitApp, *args: Any, **kwargs: Any) -> Any:
        apps.append(self)
        return run(self, *args, headless=True, size=(100, 30), **kwargs)

    monkeypatch.setattr(CockpitApp, "run", headless)
    return apps


def test_bad_plan_prints_positioned_problems_and_exits_2(tmp_path: Path, headless_run: list[CockpitApp],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text(BAD_PLAN)
    journal = tmp_path / "s.journal.jsonl"
    code = main(["run", str(plan), "--operator", "alice", "--no-sign", "--journal", str(journal)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{plan}:4:1: top level: unknown key 'stepz'" in err
    assert f"{plan}:1:1: top level: missing required key 'steps'" in err
    assert not journal.exists()  # no session started
    assert len(headless_run) == 1 and headless_run[0].plan_error is not None


def test_demo_path_reports_a_bad_plan_the_same_way(tmp_path: Path, headless_run: list[CockpitApp],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text(BAD_PLAN)
    opts = SessionOptions(plan=plan, operator="alice", no_sign=True, journal=tmp_path / "j.jsonl")
    assert launch.run_cockpit_on_plan(plan, {}, opts) == 2
    assert "unknown key 'stepz'" in capsys.readouterr().err


class Recording(CockpitApp):
    """Remembers the header's mode line as drawn on the first frame, and whether the driver had started."""

    first_header = ""
    driver_started_before_first_frame = False

    def first_frame(self) -> None:
        self.first_header = self.main_screen.query_one(HeaderBar).mode_line
        self.driver_started_before_first_frame = getattr(self.driver, "session", None) is not None
        super().first_frame()


async def test_first_frame_shows_loading_then_the_plan_arrives(tmp_path: Path) -> None:
    from rollback_tui.ui.drivers import LiveDriver
    from harness import settle

    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD_PLAN)
    opts = SessionOptions(plan=plan, operator="alice", no_sign=True, journal=tmp_path / "s.journal.jsonl",
                          report=tmp_path / "s.md")
    factory = launch.plan_session_factory(plan, {}, opts)
    app = Recording(LiveDriver(factory), operator="alice", loading=f"loading plan {plan.name} …")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: app.view.plan_name == "launch-check" and app._ask is not None, rounds=3000)
        assert "loading plan plan.yaml …" in app.first_header
        assert not app.driver_started_before_first_frame
        assert "loading plan" not in app.main_screen.query_one(HeaderBar).mode_line
        assert app.plan_error is None


async def test_footer_keys_are_clickable() -> None:
    app = CockpitApp()
    async with app.run_test(size=(100, 30)) as pilot:
        bar = app.main_screen.query_one(KeyBar)
        await pilot.pause()
        keys = [key for _start, _end, key, _enabled in bar.spans]
        assert "ctrl+q" in keys and "ctrl+p" in keys
        start, _end, _key, _enabled = next(span for span in bar.spans if span[2] == "ctrl+q")
        await pilot.click(KeyBar, offset=(start + 1, 0))
        await pilot.pause()
    assert app.return_code == 0  # quit with no session running: no confirmation


def test_compiled_in_default_theme_is_the_shipped_file() -> None:
    path = SHIPPED_DIR / "incident-dark.yaml"
    assert parse_theme(path.read_text(encoding="utf-8"), path) == default_theme()


def test_gc_is_held_only_until_the_first_frame(headless_run: list[CockpitApp]) -> None:
    states: list[bool] = []

    class Probe(CockpitApp):
        def main_ready(self) -> None:
            states.append(gc.isenabled())
            super().main_ready()

        def first_frame(self) -> None:
            super().first_frame()
            states.append(gc.isenabled())
            self.exit(0)

    assert gc.isenabled()
    Probe().run()
    assert states == [False, True] and gc.isenabled()
