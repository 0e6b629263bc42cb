"""Replay and follow: the same UI states as the live session; replay controls; tailing a growing journal."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.record.events import dump_event
from rollback_tui.report.load import load_events
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import FollowDriver, ReplayDriver
from rollback_tui.ui.launch import replay, replay_report_info, replay_status
from harness import settle
from scripted import Clock, finished
from test_cockpit_live import answer, approve_start, cockpit, finish, shell_plan


@pytest.fixture
def sign_key(tmp_path: Path) -> Path:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
    return key


async def test_replay_of_a_report_gives_the_same_ui_states_as_the_live_session(tmp_path: Path,
                                                                               sign_key: Path) -> None:
    live: list[dict[str, Any]] = []
    app = cockpit(shell_plan(tmp_path, code_verify_ok=False), tmp_path, states=live, sign_key=sign_key)
    async with app.run_test(size=(120, 36)) as pilot:
        await approve_start(pilot)
        await answer(pilot, "gate", "assess", "n")
        await answer(pilot, "no_go", "assess", "r")
        await answer(pilot, "gate", "assess", "g")
        await answer(pilot, "gate", "flags", "g")
        await answer(pilot, "gate", "code", "o", *"checked by hand", "enter")
        await answer(pilot, "gate", "validate", "g")
        await answer(pilot, "approval", "tech-lead", "y", *"alice", "enter")
        assert await finish(pilot) == 0
    report = Path(app.report_info["path"])
    assert app.report_info["signature"].startswith("✔ signed")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'alice namespaces="rollback-tui" {sign_key.with_suffix(".pub").read_text()}')
    loaded = load_events(report, allowed_signers=allowed)
    assert loaded.verify is not None and loaded.verify.ok, loaded.verify
    replayed: list[dict[str, Any]] = []
    replay_app = CockpitApp(ReplayDriver(loaded.events, speed=1e6), state_hook=replayed.append)
    replay_app.report_info.update(replay_report_info(report, loaded, *replay_status(loaded)))
    async with replay_app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, lambda: len(replayed) == len(loaded.events), rounds=2000)
        assert replay_app.phase == "summary"
        summary = replay_app.screen.body(replay_app.view, True).plain  # type: ignore[attr-defined]
        assert f"Report: {report}" in summary and "not written yet" not in summary
        assert "Signature: ✔ report verified" in summary
    assert len(live) == len(replayed) > 50
    assert replayed == live
    note, warning = replay_status(loaded)
    assert note.startswith("✔ report verified") and warning == ""


async def test_replay_controls_pause_step_back_and_jump() -> None:
    events = finished(Clock())
    driver = ReplayDriver(events, speed=1.0, start_paused=True)
    app = CockpitApp(driver)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: driver.app is not None)
        assert app.view.events == 0
        await pilot.press("full_stop", "full_stop", "full_stop")  # what a terminal sends for "."
        await settle(pilot)
        assert driver.position == 3 and app.view.events == 3
        await pilot.press("comma")
        await settle(pilot)
        assert driver.position == 2 and app.view.events == 2 and app.view.inputs[0].id == "deployment-snapshot"
        await pilot.press("3")  # jump to step 3
        await settle(pilot)
        assert app.view.current_step == "code" and app.view.step("flags").state == "done"
        assert "event" in app.mode_line and "paused" in app.mode_line
        await pilot.press("g")  # decisions are not possible in a replay
        assert app._ask is None
        driver.speed = 1e6
        await pilot.press("p")  # play to the end
        await settle(pilot, lambda: driver.position == len(events))
        assert app.view.exit_state == "partial"


def test_replay_refuses_an_altered_report_unless_unverified(tmp_path: Path, sign_key: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from rollback_tui.report.writer import write_report

    report = tmp_path / "r.md"
    write_report(finished(Clock()), report, sign_key=sign_key, no_sign=False, operator="alice")
    report.write_text(report.read_text().replace("web-2 will not start", "web-2 was fine"))
    assert replay(report, 1.0, False, None, None) == 6
    assert "FAILED verification" in capsys.readouterr().err
    loaded = load_events(report)
    note, warning = replay_status(loaded)
    assert warning.startswith("UNVERIFIED")
    app = CockpitApp(ReplayDriver(loaded.events), warning=warning)
    assert app.mode_line.startswith("⚠ UNVERIFIED")


async def test_follow_tails_a_growing_journal_and_waits_for_torn_lines(tmp_path: Path) -> None:
    events = finished(Clock())
    journal = tmp_path / "s.journal.jsonl"
    lines = [dump_event(event) + "\n" for event in events]
    journal.write_text("".join(lines[:10]))
    driver = FollowDriver(journal, poll=0.02)
    app = CockpitApp(driver)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, lambda: app.view.events == 10, rounds=2000)
        with journal.open("a") as handle:  # a writer mid-line: nothing is read until the newline lands
            handle.write(lines[10][:20])
        await settle(pilot, lambda: driver.offset == len("".join(lines[:10]).encode()), rounds=200)
        assert app.view.events == 10
        with journal.open("a") as handle:
            handle.write(lines[10][20:] + "".join(lines[11:]))
        await settle(pilot, lambda: app.view.exit_state == "partial", rounds=2000)
        assert app.view.events == len(events) and driver.dropped == 0
        assert "FOLLOW" in app.mode_line and app.read_only
