"""Strict theme and keymap files: positioned errors, one bad file skipped, the rest applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.keymap import parse_keymap
from rollback_tui.ui.themes import BUILTIN_NAMES, load_themes, parse_theme


def test_shipped_themes_all_load() -> None:
    loaded = load_themes()
    assert loaded.problems == []
    assert set(BUILTIN_NAMES) <= set(loaded.themes)
    for name in BUILTIN_NAMES:
        assert {"go", "no-go", "degraded"} <= set(loaded.themes[name].variables)


def test_typo_and_bad_colour_are_positioned() -> None:
    with pytest.raises(ValueError) as info:
        parse_theme("name: night\nprimray: red\nprimary: notacolour\n", Path("night.yaml"))
    lines = str(info.value).splitlines()
    assert any(line.startswith("night.yaml:2:1: primray: unknown key") for line in lines)
    assert any(line.startswith("night.yaml:3:10: primary:") and "not a colour" in line for line in lines)


def test_one_bad_user_theme_is_reported_and_skipped(empty_config: Path) -> None:
    themes = empty_config / "themes"
    themes.mkdir()
    (themes / "good.yaml").write_text("name: night-shift\nprimary: '#336699'\nvariables: {go: '#00ff00'}\n")
    (themes / "bad.yaml").write_text("name: broken\nprimary: [1, 2]\n")
    loaded = load_themes()
    assert "night-shift" in loaded.themes and "broken" not in loaded.themes
    assert len(loaded.problems) == 1 and "bad.yaml:2:10" in loaded.problems[0]


async def test_theme_switch_and_defaults_for_cockpit_variables(empty_config: Path) -> None:
    themes = empty_config / "themes"
    themes.mkdir()
    (themes / "plain.yaml").write_text("name: plain\nprimary: '#336699'\n")
    app = CockpitApp(theme="high-contrast")
    async with app.run_test() as pilot:
        assert app.theme == "high-contrast"
        assert app.get_css_variables()["go"].upper() == "#00FF00"
        app.theme = "plain"
        await pilot.pause()
        assert app.get_css_variables()["go"].upper() == "#2E9E44"  # default from get_theme_variable_defaults
        app.theme = "screen-share"
        await pilot.pause()
        assert app.has_class("-screen-share")


async def test_unknown_theme_falls_back_to_the_default() -> None:
    app = CockpitApp(theme="nope")
    async with app.run_test():
        assert app.theme == "incident-dark" and "unknown theme 'nope'" in app.theme_error


def test_keymap_unknown_ids_and_bad_values_are_problems() -> None:
    keymap = parse_keymap("decide.go: f5\ndecide.nope: x\ndecide.abort: 3\n", Path("keymap.yaml"),
                          {"decide.go", "decide.abort"})
    assert keymap.keys == {"decide.go": "f5"}
    assert keymap.problems[0].startswith("keymap.yaml:2:1: unknown binding id 'decide.nope'")
    assert keymap.problems[1].startswith("keymap.yaml:3:15: decide.abort:")


async def test_keymap_file_remaps_a_decision_key(empty_config: Path) -> None:
    from rollback_tui.record import events as ev
    from rollback_tui.ui.drivers import ScriptDriver
    from harness import fixed_clock, wait_for_request
    from scripted import Clock, before_execution, gate

    (empty_config / "keymap.yaml").write_text("decide.go: f9\n")
    c = Clock()
    driver = ScriptDriver(before_execution(c)[:1] + [ev.StepStarted(step="assess", **c()), gate(c, 1, "assess")])
    app = CockpitApp(driver, clock=fixed_clock)
    async with app.run_test() as pilot:
        await wait_for_request(pilot, "gate")
        await pilot.press("g")
        assert app._ask is not None
        await pilot.press("f9")
        await app.workers.wait_for_complete()
    assert [d.choice for d in driver.decisions] == ["go"]
