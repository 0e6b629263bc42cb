"""A realistic, fixed session of events (fixed clock) for snapshots and UI tests that need no engine.

Every sequence is one the engine can produce: it folds without an illegal move, and every question offers the
options of one of the procedure's gates (tests/ui/test_viewmodel.py checks both)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from rollback_tui.record import events as ev
from rollback_tui.procedure.choices import GATES

T0 = datetime(2026, 11, 26, 9, 30, 0, tzinfo=timezone.utc)

OUTLINE: dict[str, Any] = {
    "metadata": {"name": "checkout-v2-rollback", "incident": "INC-4211", "environment": "production",
                 "service": "checkout"},
    "window": 2700.0,
    "roles": [{"id": "devops-lead", "title": "DevOps Lead", "approves": ["execution"]},
              {"id": "tech-lead", "title": "Technical Lead", "approves": ["validation"]}],
    "steps": [
        {"id": "assess", "title": "Assess rollback situation", "question": "Is the rollback scope determined?",
         "applicable": True, "actions": [{"id": "record-state", "kind": "shell", "summary": "git log", "hosts": []}]},
        {"id": "flags", "title": "Disable feature flags", "question": "Are the feature flags disabled?",
         "applicable": True, "actions": [{"id": "flag-off", "kind": "flagd", "summary": "new-checkout off", "hosts": []}]},
        {"id": "code", "title": "Roll back code changes", "question": "Is the code rolled back successfully?",
         "applicable": True, "actions": [
             {"id": "checkout-good", "kind": "git", "summary": "checkout v1.4.2", "hosts": []},
             {"id": "restart-web", "kind": "ssh", "summary": "restart the service", "hosts": ["web-1", "web-2"]}]},
        {"id": "configuration", "title": "Roll back configuration changes", "question": "Is the configuration rolled back?",
         "applicable": True, "actions": [{"id": "restore-config", "kind": "config_files", "summary": "", "hosts": []}]},
        {"id": "database", "title": "Roll back database migrations", "question": "Are migrations rolled back?",
         "applicable": True, "actions": [{"id": "downgrade", "kind": "alembic", "summary": "", "hosts": []}]},
        {"id": "validate", "title": "Validate rollback and document", "question": "Is the rollback validated?",
         "applicable": True, "actions": []},
    ],
    "probes": [{"id": "web-health", "kind": "http", "category": "health", "trigger": True},
               {"id": "web-version", "kind": "http", "category": "functionality", "trigger": False}],
}


class Clock:
    """Hands out increasing timestamps, 1 s apart unless told otherwise."""

    def __init__(self) -> None:
        self.now = T0
        self.seq = 0

    def __call__(self, seconds: float = 1.0) -> dict[str, Any]:
        self.now += timedelta(seconds=seconds)
        self.seq += 1
        return {"ts": self.now, "seq": self.seq}


def before_execution(c: Clock) -> list[Any]:
    return [
        ev.SessionStarted(operator="alice", plan_path="/plans/demo.yaml", plan_sha256="0" * 64,
                          plan_name="checkout-v2-rollback", host="cockpit", pid=42, tool_version="0.1.0",
                          outline=OUTLINE, **c(0)),
        ev.InputChecked(input_id="deployment-snapshot", category="artifact", ok=True, detail="/srv/snap present", **c()),
        ev.InputChecked(input_id="migration-scripts", category="artifact", ok=False, detail="not found",
                        remediation="manual_procedure: runbook §5", **c()),
        ev.InputChecked(input_id="rollback-approved", category="decision", ok=False, needs_confirmation=True,
                        detail="Rollback decision made and approved", **c()),
        ev.DecisionRequested(request_id=1, kind="input", subject="migration-scripts",
                             question="Input migration-scripts is missing: take its remediation path or halt?",
                             options=["remediate", "halt"], needs_reason=["remediate", "halt"], **c()),
    ]


def gate(c: Clock, request_id: int, step: str, ok: bool = True) -> Any:
    """The go/no-go of a step; with a failed verification, `override` is offered instead of `go`."""
    options = GATES["step" if ok else "step_failed_check"].offer()
    return ev.DecisionRequested(
        request_id=request_id, kind="gate", step=step, question=f"Is step {step} done?",
        options=options, needs_reason=GATES["step"].reasons(options),
        evidence=ev.Evidence(
            verifications=[{"check": "HEAD is v1.4.2", "expected": "v1.4.2", "observed": "v1.4.2", "ok": True,
                            "action": "checkout-good", "category": "state"},
                           {"check": "GET /health", "expected": "200", "observed": "200" if ok else "503",
                            "ok": ok, "action": "", "category": "health"}],
            health={"web-health": {"state": "healthy" if ok else "down", "reason": "", "latency_ms": 12.0}},
            window_used=600.0, window=2700.0),
        **c())


def code_step_running(c: Clock) -> list[Any]:
    """Inputs done, plan approved, approvals given, steps 1-2 done, step 3 asking go/no-go after a failure."""
    out = before_execution(c)
    out += [
        ev.DecisionMade(request_id=1, kind="input", subject="migration-scripts", choice="remediate", by="alice", **c()),
        ev.PlanReviewed(approved=True, **c()),
        ev.ApprovalGiven(role="devops-lead", role_title="DevOps Lead", gate="execution", name="bob", **c()),
        ev.HealthSample(samples={"web-health": [[0, "down", None], [10, "down", None]],
                                 "web-version": [[0, "healthy", 8.0], [10, "healthy", 9.5]]}, **c()),
        ev.HealthChanged(probe="web-health", old="unknown", new="down", reason="HTTP 503 bad release", **c()),
    ]
    for request_id, step in ((2, "assess"), (3, "flags")):
        action = {"assess": "record-state", "flags": "flag-off"}[step]
        out += [
            ev.StepStarted(step=step, **c()),
            ev.ActionStarted(step=step, action=action, kind="shell", **c()),
            ev.ActionOutput(step=step, action=action, lines=[f"{step}: line {n}" for n in range(3)], **c()),
            ev.ActionFinished(step=step, action=action, status="ok", exit_code=0, duration=0.4, **c()),
            gate(c, request_id, step),
            ev.DecisionMade(request_id=request_id, kind="gate", step=step, choice="go", by="alice", **c()),
            ev.StepFinished(step=step, status="done", **c()),
        ]
    out += [
        ev.StepStarted(step="code", **c()),
        ev.ActionStarted(step="code", action="checkout-good", kind="git", **c()),
        ev.ActionFinished(step="code", action="checkout-good", status="ok", duration=0.2, **c()),
        ev.ActionStarted(step="code", action="restart-web", kind="ssh", hosts=["web-1", "web-2"], **c()),
        ev.ActionOutput(step="code", action="restart-web", host="web-1", lines=["restarting", "ok"], **c()),
        ev.ActionOutput(step="code", action="restart-web", host="web-2", stream="stderr",
                        lines=["systemctl: unit failed"], **c()),
        ev.ActionFinished(step="code", action="restart-web", status="failed", duration=1.5, error="1 of 2 hosts failed",
                          hosts=[ev.HostResult(host="web-1", status="ok", exit_code=0),
                                 ev.HostResult(host="web-2", status="failed", exit_code=1, error="exit 1")], **c()),
        ev.WindowWarning(percent=50, elapsed=1350, window=2700, **c()),
        action_failed(c, 4),
    ]
    return out


def action_failed(c: Clock, request_id: int) -> Any:
    """restart-web failed on web-2: retry all, retry the failed host, complete by hand, abort or halt."""
    options = GATES["action_failed"].offer(["retry_failed"])
    return ev.DecisionRequested(
        request_id=request_id, kind="action_failed", step="code", action="restart-web",
        question="code/restart-web failed: 1 of 2 hosts failed. Retry it, complete it by hand, abort, or halt?",
        options=options, needs_reason=GATES["action_failed"].reasons(options),
        evidence=ev.Evidence(health={"web-health": {"state": "down", "reason": "HTTP 503", "latency_ms": 12.0}},
                             window_used=1350.0, window=2700.0, failed_hosts=["web-2"],
                             detail="1 of 2 hosts failed"),
        **c())


def finished(c: Clock) -> list[Any]:
    out = code_step_running(c)
    out += [
        ev.DecisionMade(request_id=4, kind="action_failed", step="code", action="restart-web", choice="abort",
                        reason="web-2 will not start", by="alice", **c()),
        ev.StepFinished(step="code", status="aborted", **c()),
        ev.Signal(name="Root cause analysis initiated", **c()),
        ev.SessionFinished(exit_state="partial", scopes={"flags": "rolled_back", "code": "not_rolled_back",
                                                         "configuration": "not_rolled_back",
                                                         "database": "not_rolled_back",
                                                         "infrastructure": "not_applicable"},
                           message="flags rolled back; code, configuration, database not rolled back", **c()),
    ]
    return out
