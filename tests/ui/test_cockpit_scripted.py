"""Pilot tests of the cockpit against a scripted event source: keys become decisions, reasons and confirmations."""

from __future__ import annotations

from typing import Any

from rollback_tui.record import events as ev
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.decision import DecisionPane
from rollback_tui.ui.drivers import ScriptDriver
from rollback_tui.ui.modals import ConfirmPrompt, TextPrompt
from rollback_tui.ui.screens import ApprovalsScreen, InputsScreen, PlanReviewScreen
from harness import fixed_clock, settle, wait_for_request
from scripted import Clock, before_execution, gate


def made(request: Any, decision: Any) -> ev.DecisionMade:
    return ev.DecisionMade(request_id=request.request_id, kind=request.kind, step=request.step,
                           subject=request.subject, choice=decision.choice, reason=decision.reason, by=decision.by)


def interactive_session() -> list[Any]:
    c = Clock()
    out = before_execution(c)
    out += [
        ev.DecisionRequested(request_id=2, kind="plan_review", question="Approve the Rollback Plan?",
                             options=["approve", "reject"], needs_reason=["reject"],
                             evidence=ev.Evidence(detail="# Rollback Plan\n\n- scope: flags, code\n"), **c()),
        ev.PlanReviewed(approved=True, **c()),
        ev.DecisionRequested(request_id=3, kind="approval", subject="devops-lead",
                             question="DevOps Lead: approve execution?", options=["approve", "reject"],
                             needs_reason=["reject"], **c()),
        ev.ApprovalGiven(role="devops-lead", role_title="DevOps Lead", gate="execution", name="bob", **c()),
        ev.DecisionRequested(request_id=4, kind="approval", subject="tech-lead",
                             question="Technical Lead: approve?", options=["approve", "reject"],
                             needs_reason=["reject"], **c()),
        ev.StepStarted(step="assess", **c()),
        gate(c, 5, "assess"),
        ev.StepStarted(step="code", **c()),
        gate(c, 6, "code", ok=False),
        gate(c, 7, "code", ok=False),
    ]
    return out


async def test_keys_answer_every_kind_of_question() -> None:
    driver = ScriptDriver(interactive_session(), make_made=made)
    app = CockpitApp(driver, clock=fixed_clock, operator="alice")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_request(pilot, "input")
        assert isinstance(app.screen, InputsScreen)
        await pilot.press("h")  # halt needs a reason: a prompt opens
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("escape")  # cancelled: nothing decided
        await pilot.press("p", *"runbook 5", "enter")  # take the remediation path (why: recorded)
        await wait_for_request(pilot, "plan_review")
        assert isinstance(app.screen, PlanReviewScreen)
        await pilot.press("y")
        await wait_for_request(pilot, "approval")
        assert isinstance(app.screen, ApprovalsScreen)
        await pilot.press("y", *"bob", "enter")  # the approver's name
        await wait_for_request(pilot, "approval")
        await pilot.press("y", *"Bob", "enter")  # bob already holds devops-lead: refused
        assert app._ask is not None and app._ask[0].subject == "tech-lead"
        await pilot.press("y", *"carol", "enter")
        await wait_for_request(pilot, "gate", "assess")
        assert app.screen is app.main_screen
        await pilot.press("g")
        await wait_for_request(pilot, "gate", "code")
        await pilot.press("o")  # override a failed verification: reason + confirm in one prompt
        assert isinstance(app.screen, TextPrompt) and app.screen.destructive
        await pilot.press("enter")  # empty reason is refused
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"web-2 is drained", "enter")
        await wait_for_request(pilot, "gate", "code")
        await pilot.press("a", *"cannot restart web-2", "enter")
        await app.workers.wait_for_complete()
        await settle(pilot)
    got = [(d.choice, d.reason, d.by) for d in driver.decisions]
    assert got == [
        ("remediate", "runbook 5", "alice"),
        ("approve", "", "alice"),
        ("approve", "", "bob"),
        ("approve", "", "carol"),
        ("go", "", "alice"),
        ("override", "web-2 is drained", "alice"),
        ("abort", "cannot restart web-2", "alice"),
    ]


async def test_keys_not_offered_do_nothing_and_abort_asks_its_reason_as_a_confirmation() -> None:
    c = Clock()
    events = before_execution(c)[:1] + [ev.StepStarted(step="code", **c()), gate(c, 1, "code")]
    driver = ScriptDriver(events, make_made=made)
    app = CockpitApp(driver, clock=fixed_clock, operator="alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_request(pilot, "gate", "code")
        await pilot.press("r", "m", "s", "o")  # not among the options (no skip, no override when checks pass)
        assert app._ask is not None and not isinstance(app.screen, (TextPrompt, ConfirmPrompt))
        await pilot.press("a")
        assert isinstance(app.screen, TextPrompt) and app.screen.destructive
        await pilot.press("escape")  # not confirmed
        assert app._ask is not None
        await pilot.press("a", *"stop", "enter")
        await app.workers.wait_for_complete()
    assert [(d.choice, d.reason, d.by) for d in driver.decisions] == [("abort", "stop", "alice")]


async def test_footer_shows_only_the_choices_offered() -> None:
    c = Clock()
    events = before_execution(c)[:1] + [ev.StepStarted(step="code", **c()), gate(c, 1, "code")]
    app = CockpitApp(ScriptDriver(events, make_made=made), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_request(pilot, "gate", "code")
        shown = {binding.action for (_node, binding, enabled, _tip) in app.screen.active_bindings.values()
                 if enabled and binding.action.startswith("decide")}
        assert shown == {"decide('go')", "decide('no_go')", "decide('abort')"}
        app._ask[1].cancel()  # type: ignore[index]


async def test_a_check_that_reads_nothing_back_is_shown_unverified() -> None:
    c = Clock()
    checks = [{"check": "rollback.sql on sqlite:///app.db", "expected": "a verify_query in the plan", "ok": False,
               "observed": "unverified: no verify_query", "action": "fix", "category": "data", "readback": "none"},
              {"check": "integrity of sqlite:///app.db", "expected": "ok", "observed": "ok", "ok": True,
               "action": "fix", "category": "data", "readback": "safety"}]
    events = before_execution(c)[:1] + [
        ev.StepStarted(step="database", **c()),
        ev.DecisionRequested(request_id=1, kind="action_failed", step="database", action="fix",
                             question="database/fix failed: unverified: database/fix has no read-back",
                             options=["retry", "manual", "abort", "halt"], needs_reason=["manual", "abort", "halt"],
                             evidence=ev.Evidence(verifications=checks), **c())]
    app = CockpitApp(ScriptDriver(events, make_made=made), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_request(pilot, "action_failed", "database")
        await settle(pilot)
        shown = app.main_screen.query_one(DecisionPane).plain_text  # head, evidence and keys as drawn
        assert "✖ unverified rollback.sql on sqlite:///app.db" in shown
        assert "✔ pass integrity of sqlite:///app.db" in shown
        app._ask[1].cancel()  # type: ignore[index]
