"""The cockpit compares approvers as people, and shows a same-person approval that the plan allows."""

from __future__ import annotations

from typing import Any

from rollback_tui.record import events as ev
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import ScriptDriver
from rollback_tui.ui.screens import ApprovalsScreen
from harness import LastAskDriver, fixed_clock, settle, wait_for_request
from scripted import Clock, before_execution


def made(request: Any, decision: Any) -> ev.DecisionMade:
    return ev.DecisionMade(request_id=request.request_id, kind=request.kind, step=request.step,
                           subject=request.subject, choice=decision.choice, reason=decision.reason, by=decision.by)


def approvals_asked(c: Clock) -> list[Any]:
    out = before_execution(c)[:1]
    return out + [
        ev.DecisionRequested(request_id=3, kind="approval", subject="devops-lead",
                             question="DevOps Lead: approve execution?", options=["approve", "reject"], **c()),
        ev.ApprovalGiven(role="devops-lead", role_title="DevOps Lead", gate="execution", name="bob", **c()),
        ev.DecisionRequested(request_id=4, kind="approval", subject="tech-lead",
                             question="Technical Lead: approve?", options=["approve", "reject"], **c()),
    ]


async def test_a_look_alike_name_is_refused_at_the_cockpit() -> None:
    c = Clock()
    events = approvals_asked(c)
    driver = ScriptDriver(events[:1] + events[2:], make_made=made)  # devops-lead already approved by bob
    app = CockpitApp(driver, clock=fixed_clock, operator="alice")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_request(pilot, "approval")
        assert isinstance(app.screen, ApprovalsScreen)
        await pilot.press("y", "b", "\u043e", "b", "enter")  # "bob" with a Cyrillic о: the same person
        await settle(pilot)
        assert app._ask is not None and app._ask[0].subject == "tech-lead"
        await pilot.press("y", *"carol", "enter")
        await app.workers.wait_for_complete()
    assert [(d.choice, d.by) for d in driver.decisions] == [("approve", "carol")]


async def test_an_allowed_same_person_approval_is_flagged_on_the_approvals_screen() -> None:
    c = Clock()
    events = approvals_asked(c)
    events.insert(-1, ev.ApprovalGiven(role="tech-lead", role_title="Technical Lead", gate="validation", name="Bob",
                                       same_person_as="devops-lead", **c()))
    app = CockpitApp(LastAskDriver(events), clock=fixed_clock, operator="alice")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_request(pilot, "approval")
        screen = app.screen
        assert isinstance(screen, ApprovalsScreen)
        text = screen.body(app.view, False).plain
        assert "Technical Lead (validation) by Bob  ⚠ same person as the DevOps Lead approver" in text
        assert "DevOps Lead (execution) by bob\n" in text
        app.exit()
