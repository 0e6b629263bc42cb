"""Pilot tests on the real engine: keys only, from the required inputs to the summary; assertions on the journal.

The demo test drives `rollback_tui.demo.sandbox` (real git, SQLite/Alembic, flagd file, SSH host on loopback,
HTTP service) through all seven steps; the shell-plan tests cover override, retry of a failed action and abort."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot

from rollback_tui.cli import SessionOptions
from rollback_tui.record.journal import read_journal
from rollback_tui.plan.loader import load_plan
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import LiveDriver
from tests.adapters_web.flagd_peer import assert_served_off
from harness import settle

PY = sys.executable


def cockpit(plan_path: Path, tmp_path: Path, variables: dict[str, str] | None = None,
            states: list[dict[str, Any]] | None = None, sign_key: Path | None = None) -> CockpitApp:
    from rollback_tui.engine.session import Session

    loaded = load_plan(plan_path, variables or {})
    opts = SessionOptions(operator="alice", no_sign=True, journal=tmp_path / "s.journal.jsonl",
                          report=tmp_path / "s.md")

    def factory(decisions: Any, listeners: list[Any], passphrase: Any) -> Any:
        return Session.start(loaded, decisions=decisions, operator=opts.operator, journal_path=opts.journal,
                             report_path=opts.report, no_sign=sign_key is None, sign_key=sign_key,
                             listeners=listeners, passphrase=passphrase,
                             sample_every=0.3)

    hook = states.append if states is not None else None
    return CockpitApp(LiveDriver(factory), operator="alice", state_hook=hook)


async def answer(pilot: Pilot, kind: str, step: str, *keys: str) -> Any:
    """Wait until the engine asks this kind of question (for this step) and press keys; returns the request."""
    app: CockpitApp = pilot.app  # type: ignore[assignment]

    def asked() -> bool:
        ask = app._ask
        return ask is not None and ask[0].kind == kind and (not step or step in (ask[0].step, ask[0].subject))

    await settle(pilot, asked, rounds=1500)
    request = app._ask[0]  # type: ignore[index]
    await pilot.press(*keys)
    return request


async def finish(pilot: Pilot) -> int:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    await settle(pilot, lambda: app.result is not None, rounds=3000)
    assert app.phase == "summary"
    await pilot.press("q")
    await pilot.pause()
    return int(app.return_value)  # type: ignore[arg-type]


def decisions(journal: Path) -> list[tuple[str, str, str, str]]:
    return [(e.kind, e.step or e.subject, e.choice, e.reason) for e in read_journal(journal).events
            if e.type == "decision_made"]


def finished_state(journal: Path) -> str:
    return [e for e in read_journal(journal).events if e.type == "session_finished"][-1].exit_state


@pytest.mark.slow
async def test_demo_through_seven_steps_with_keys_only(tmp_path: Path) -> None:
    from rollback_tui.demo.sandbox import build_sandbox

    sandbox = build_sandbox(tmp_path / "sandbox", operator="alice")
    with sandbox.start():
        app = cockpit(sandbox.plan_path, tmp_path, sandbox.variables)
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(4):  # decisions already made and constraints: confirmed
                await answer(pilot, "input", "", "y")
            await answer(pilot, "plan_review", "", "y")
            await answer(pilot, "approval", "", "y", *"alice", "enter")
            await answer(pilot, "gate", "assess", "n")  # a no-go needs no reason: its follow-up asks what next
            await answer(pilot, "no_go", "assess", "r")
            for step in ("assess", "flags", "code", "configuration", "database"):
                request = await answer(pilot, "gate", step)
                if "go" in request.options:
                    await pilot.press("g")
                else:  # health can lag a restart by one sample: a reasoned override is the operator's call
                    await pilot.press("o", *"health lags the restart", "enter")
            await answer(pilot, "gate", "validate", "g")
            await answer(pilot, "approval", "tech-lead", "y", *"alice", "enter")  # the demo allows one person
            code = await finish(pilot)
    journal = tmp_path / "s.journal.jsonl"
    made = decisions(journal)
    assert ("gate", "assess", "no_go", "") in made
    assert ("no_go", "assess", "retry", "") in made
    assert [m[2] for m in made if m[0] == "approval"] == ["approve", "approve"]
    approvals = [(e.role, e.name) for e in read_journal(journal).events if e.type == "approval_given"]
    assert approvals == [("devops-lead", "alice"), ("tech-lead", "alice")]
    assert finished_state(journal) == "completed" and code == 0
    assert (tmp_path / "s.md").exists()
    assert_served_off(sandbox.layout.flags, ["new-checkout"])  # what SDKs get after the completed rollback


def shell_plan(tmp_path: Path, *, code_verify_ok: bool, validate_ok: bool = True) -> Path:
    def sh(code: str) -> dict[str, Any]:
        return {"kind": "shell", "argv": [PY, "-c", code]}

    code = {"id": "checkout", **sh("print('checked out v1.4.2')"),
            "verify_argv": [PY, "-c", f"raise SystemExit({0 if code_verify_ok else 1})"]}
    steps = [
        {"id": "assess", "actions": [{"id": "look", **sh("print('assessing')")}]},
        {"id": "flags", "actions": [{"id": "off", **sh("print('flag off')")}]},
        {"id": "code", "actions": [code]},
        {"id": "validate", "actions": [{"id": "smoke", **sh(f"print('smoke'); raise SystemExit({0 if validate_ok else 3})")}]},
    ]
    data = {"version": 1, "metadata": {"name": "ui test"}, "rollback": {"scope": ["flags", "code"]},
            "approvals": {"allow_same_person": True}, "steps": steps}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def approve_start(pilot: Pilot) -> None:
    await answer(pilot, "plan_review", "", "y")
    await answer(pilot, "approval", "devops-lead", "y", *"alice", "enter")


async def test_override_failed_verification_then_retry_and_abort_a_failed_action(tmp_path: Path) -> None:
    app = cockpit(shell_plan(tmp_path, code_verify_ok=False, validate_ok=False), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await approve_start(pilot)
        await answer(pilot, "gate", "assess", "g")
        await answer(pilot, "gate", "flags", "g")
        request = await answer(pilot, "gate", "code")
        assert "override" in request.options and "go" not in request.options
        await pilot.press("o", *"verified by hand on the host", "enter")
        await answer(pilot, "action_failed", "validate", "r")
        await answer(pilot, "action_failed", "validate", "a", *"smoke keeps failing", "enter")
        code = await finish(pilot)
    made = decisions(tmp_path / "s.journal.jsonl")
    assert ("gate", "code", "override", "verified by hand on the host") in made
    assert ("action_failed", "validate", "retry", "") in made
    assert ("action_failed", "validate", "abort", "smoke keeps failing") in made
    # both applicable scopes (flags, code) were rolled back before the abort at validation: aborted, not partial
    assert finished_state(tmp_path / "s.journal.jsonl") == "aborted" and code == 4


async def test_abort_before_anything_is_rolled_back_is_aborted(tmp_path: Path) -> None:
    app = cockpit(shell_plan(tmp_path, code_verify_ok=True), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await approve_start(pilot)
        await answer(pilot, "gate", "assess", "a")
        await pilot.press("enter")  # a reason is required: refused while empty
        await pilot.press(*"wrong incident", "enter")
        code = await finish(pilot)
    assert ("gate", "assess", "abort", "wrong incident") in decisions(tmp_path / "s.journal.jsonl")
    assert finished_state(tmp_path / "s.journal.jsonl") == "aborted" and code == 4


async def test_quit_leaves_the_session_resumable(tmp_path: Path) -> None:
    app = cockpit(shell_plan(tmp_path, code_verify_ok=True), tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await approve_start(pilot)
        await answer(pilot, "gate", "assess", "ctrl+q", "y")
        await pilot.pause()
    events = read_journal(tmp_path / "s.journal.jsonl").events
    assert events[-1].type == "session_interrupted"
    assert app.return_value == 130


async def test_resume_shows_the_journal_so_far_then_continues(tmp_path: Path) -> None:
    from rollback_tui.engine.session import Session

    app = cockpit(shell_plan(tmp_path, code_verify_ok=True), tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await approve_start(pilot)
        await answer(pilot, "gate", "assess", "g")
        await answer(pilot, "gate", "flags", "ctrl+q", "y")
        await pilot.pause()
    journal = tmp_path / "s.journal.jsonl"

    def factory(decisions: Any, listeners: list[Any], passphrase: Any) -> Any:
        return Session.resume(journal, decisions=decisions, operator="alice", no_sign=True, listeners=listeners,
                              passphrase=passphrase)

    resumed = CockpitApp(LiveDriver(factory), operator="alice")
    async with resumed.run_test(size=(100, 30)) as pilot:
        await answer(pilot, "gate", "flags")
        assert resumed.view.step("assess").state == "done" and resumed.view.resumes == 1
        assert resumed.view.started_at == read_journal(journal).events[0].ts
        await pilot.press("g")
        await answer(pilot, "gate", "code", "g")
        await answer(pilot, "gate", "validate", "g")
        await answer(pilot, "approval", "tech-lead", "y", *"alice", "enter")
        assert await finish(pilot) == 0
    assert finished_state(journal) == "completed"
