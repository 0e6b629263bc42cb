"""Hand-built, realistic event sequences for report tests (the engine is written in parallel)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from rollback_tui.record import events as ev
from rollback_tui.record.events import Event

START = datetime(2026, 11, 26, 9, 30, 0, tzinfo=timezone.utc)

STEPS = [
    ("assess", "Assess rollback situation", "Is the rollback scope determined and the plan created?", []),
    ("flags", "Disable feature flags", "Are the feature flags disabled successfully?",
     [{"id": "flag-off", "kind": "flag_file", "summary": "set new-checkout to false in flags.json", "hosts": []}]),
    ("code", "Roll back code changes", "Is the code rolled back successfully?",
     [{"id": "git-revert", "kind": "git", "summary": "reset app repo to v1.41.0", "hosts": []},
      {"id": "restart", "kind": "ssh", "summary": "systemctl restart checkout", "hosts": ["web1", "web2", "web3"]}]),
    ("configuration", "Roll back configuration changes", "Is the configuration rolled back successfully?",
     [{"id": "config-restore", "kind": "config_file", "summary": "restore app.yaml from snapshot", "hosts": []}]),
    ("database", "Roll back database migrations", "Are the database migrations rolled back successfully?",
     [{"id": "alembic-down", "kind": "alembic", "summary": "downgrade to 7f3a2c", "hosts": []}]),
    ("infrastructure", "Roll back infrastructure changes", "Is the infrastructure rolled back successfully?", []),
    ("validate", "Validate rollback and document", "Is the rollback validated and documented successfully?",
     [{"id": "smoke", "kind": "http", "summary": "GET /health on the service", "hosts": []}]),
]


def outline() -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout-v1.42-rollback", "incident": "INC-4211", "service": "checkout",
                     "environment": "production", "owner": "Payments Team",
                     "ticket": "https://jira.example.com/browse/OPS-981",
                     "trigger": "Post-deploy validation failed: 5xx rate 12 % on /pay"},
        "window": 3600.0,
        "roles": [{"id": "devops-lead", "title": "DevOps Lead", "approves": ["execution"]},
                  {"id": "tech-lead", "title": "Technical Lead", "approves": ["validation"]}],
        "rollback": {"scope": ["flags", "code", "configuration", "database"], "approach": "automated",
                     "order": ["flags", "code", "configuration", "database", "infrastructure"],
                     "risks": ["orders written by v1.42 use the new column; the downgrade drops it"],
                     "validation_points": ["after code: /health 200 on every host", "after database: schema at 7f3a2c"]},
        "steps": [{"id": sid, "title": title, "question": q, "applicable": sid != "infrastructure", "actions": acts}
                  for sid, title, q, acts in STEPS],
        "probes": [{"id": "api", "kind": "http", "target": "http://127.0.0.1:8080/health"}],
    }


class Recorder:
    """Numbers events from 1 and advances a fixed clock, as the runner would."""

    def __init__(self, operator: str = "alice") -> None:
        self.events: list[Event] = []
        self.now = START
        self.operator = operator
        self.request_id = 0

    def add(self, cls: type, seconds: float = 1.0, **fields: Any) -> Event:
        self.now += timedelta(seconds=seconds)
        event = cls(seq=len(self.events) + 1, ts=self.now, **fields)
        self.events.append(event)
        return event

    def decide(self, kind: str, question: str, options: list[str], choice: str, *, step: str = "", action: str = "",
               subject: str = "", reason: str = "", by: str | None = None, evidence: dict[str, Any] | None = None) -> None:
        self.request_id += 1
        self.add(ev.DecisionRequested, 0.5, request_id=self.request_id, kind=kind, step=step, action=action,
                 subject=subject, question=question, options=options, evidence=ev.Evidence(**(evidence or {})))
        self.add(ev.DecisionMade, 4.0, actor=by or self.operator, request_id=self.request_id, kind=kind, step=step,
                 action=action, subject=subject, choice=choice, reason=reason, by=by or self.operator)

    def action(self, step: str, action: str, kind: str, *, status: str = "ok", lines: list[str] | None = None,
               hosts: list[str] | None = None, failed: dict[str, str] | None = None, attempt: int = 1,
               details: dict[str, Any] | None = None, error: str = "") -> None:
        self.add(ev.ActionStarted, step=step, action=action, kind=kind, attempt=attempt, hosts=hosts or [],
                 description=f"{kind} {action}")
        for host in hosts or [""]:
            self.add(ev.ActionOutput, 0.2, step=step, action=action, host=host, lines=lines or [f"{action}: done"])
        results = [ev.HostResult(host=h, status=(failed or {}).get(h, "ok"), exit_code=0 if h not in (failed or {}) else 255,
                                 duration=1.5, error="connection refused" if h in (failed or {}) else "")
                   for h in hosts or []]
        self.add(ev.ActionFinished, 2.0, step=step, action=action, attempt=attempt, status=status,
                 exit_code=0 if status == "ok" else 1, duration=2.3, error=error, hosts=results, details=details or {})

    def verify(self, step: str, check: str, expected: str, observed: str, ok: bool = True, action: str = "",
               category: str = "state") -> dict[str, Any]:
        self.add(ev.Verification, step=step, action=action, check=check, category=category, expected=expected,
                 observed=observed, ok=ok)
        return {"check": check, "expected": expected, "observed": observed, "ok": ok, "action": action,
                "category": category}

    def gate(self, step: str, question: str, checks: list[dict[str, Any]], choice: str = "go", reason: str = "",
             health: str = "healthy") -> None:
        self.decide("gate", question, ["go", "no_go"], choice, step=step, reason=reason,
                    evidence={"verifications": checks, "health": {"api": {"state": health, "reason": "", "latency_ms": 42.0}},
                              "window_used": (self.now - START).total_seconds(), "window": 3600.0})


def realistic_session(exit_state: str = "completed") -> list[Event]:
    """A full seven-step rollback with a no-go and retry, an override, host failures, health changes and signals."""
    r = Recorder()
    r.add(ev.SessionStarted, 0, operator="alice", plan_path="plans/checkout.yaml", plan_sha256="ab" * 32,
          plan_name="checkout-v1.42-rollback", host="ops-bastion", pid=4242, tool_version="0.1.0", outline=outline())
    r.add(ev.HealthChanged, probe="api", old="unknown", new="degraded", reason="HTTP 503 on /health", latency_ms=812.0)
    for input_id, category, ok, detail, remediation in [
            ("deployment-snapshot", "artifact", True, "snapshots/v1.41.0.tar present", ""),
            ("rollback-plan", "artifact", True, "plans/checkout.yaml", ""),
            ("migration-scripts", "artifact", False, "migrations/down/ missing", "use_backup: backups/2026-11-25.sql"),
            ("rollback-approved", "decision", True, "approved by bob (DevOps Lead) on the bridge call", ""),
            ("rollback-window", "constraint", True, "1h", "")]:
        r.add(ev.InputChecked, input_id=input_id, category=category, ok=ok, detail=detail, remediation=remediation)
    r.decide("input", "Migration scripts are missing: take the remediation path?", ["remediate", "halt"], "remediate",
             subject="migration-scripts", reason="Backup from 2026-11-25 is verified and recent")
    r.decide("plan_review", "Approve the rollback plan?", ["approve", "reject"], "approve")
    r.add(ev.PlanReviewed, actor="alice", approved=True, plan_markdown_sha256="cd" * 32)
    r.decide("approval", "DevOps Lead: approve execution?", ["approve", "reject"], "approve", subject="devops-lead",
             by="bob")
    r.add(ev.ApprovalGiven, actor="bob", role="devops-lead", role_title="DevOps Lead", gate="execution", name="bob")

    r.add(ev.StepStarted, step="assess")
    checks = [r.verify("assess", "scope-determined", "flags, code, configuration, database", "flags, code, configuration, database")]
    r.gate("assess", "Is the rollback scope determined and the plan created?", checks)
    r.add(ev.StepFinished, step="assess", status="done")

    r.add(ev.StepStarted, step="flags")
    r.action("flags", "flag-off", "flag_file", details={"previous": "true", "flag": "new-checkout"})
    checks = [r.verify("flags", "new-checkout-off", "false", "false", action="flag-off")]
    r.gate("flags", "Are the feature flags disabled successfully?", checks)
    r.add(ev.StepFinished, step="flags", status="done")
    r.add(ev.WindowWarning, percent=50, elapsed=1800.0, window=3600.0)

    r.add(ev.StepStarted, step="code")
    r.action("code", "git-revert", "git", lines=["HEAD is now at 3e1f9a2 v1.41.0"], details={"previous_head": "9c0ffee"})
    r.action("code", "restart", "ssh", status="failed", hosts=["web1", "web2", "web3"], failed={"web3": "unreachable"},
             error="1 of 3 hosts failed")
    checks = [r.verify("code", "head-is-target", "3e1f9a2", "3e1f9a2", action="git-revert"),
              r.verify("code", "service-restarted", "3/3 hosts", "2/3 hosts", ok=False, action="restart")]
    r.decide("no_go", "Is the code rolled back successfully?", ["go", "no_go"], "no_go", step="code",
             reason="web3 did not restart | sshd refused <connection>\nretrying after the network fix",
             evidence={"verifications": checks, "failed_hosts": ["web3"], "window_used": 1900.0, "window": 3600.0,
                       "health": {"api": {"state": "degraded", "reason": "HTTP 503", "latency_ms": 790.0}}})
    r.decide("action_failed", "restart failed on web3: what now?", ["retry_failed", "manual", "abort"], "retry_failed",
             step="code", action="restart")
    r.add(ev.StepStarted, step="code", attempt=2)
    r.action("code", "restart", "ssh", hosts=["web3"], attempt=2)
    checks = [r.verify("code", "service-restarted", "3/3 hosts", "3/3 hosts", action="restart")]
    r.gate("code", "Is the code rolled back successfully?", checks)
    r.add(ev.StepFinished, step="code", status="done")
    r.add(ev.HealthChanged, probe="api", old="degraded", new="healthy", reason="HTTP 200", latency_ms=48.0)

    r.add(ev.StepStarted, step="configuration")
    r.action("configuration", "config-restore", "config_file", details={"backup": "/var/backups/app.yaml.1732612345"})
    checks = [r.verify("configuration", "config-digest", "sha256:aa11", "sha256:aa12", ok=False, action="config-restore")]
    r.decide("gate", "Is the configuration rolled back successfully?", ["go", "no_go", "override"], "override",
             step="configuration", reason="digest differs only by the injected build id; values checked by hand",
             evidence={"verifications": checks, "window_used": 2500.0, "window": 3600.0})
    r.add(ev.StepFinished, step="configuration", status="done")
    r.add(ev.WindowWarning, percent=80, elapsed=2880.0, window=3600.0)

    if exit_state == "aborted":
        r.add(ev.StepStarted, step="database")
        r.action("database", "alembic-down", "alembic", status="failed", error="relation \"orders_v2\" is locked")
        r.decide("action_failed", "alembic-down failed: what now?", ["retry", "manual", "abort"], "abort",
                 step="database", reason="data recovery needed; DBA paged")
        r.add(ev.StepFinished, step="database", status="aborted")
        r.add(ev.SessionFinished, exit_state="aborted", message="aborted at step database",
              scopes={"flags": "rolled_back", "code": "rolled_back", "configuration": "rolled_back",
                      "database": "not_rolled_back", "infrastructure": "not_applicable"})
        return r.events

    r.add(ev.StepStarted, step="database")
    r.action("database", "alembic-down", "alembic", lines=[f"INFO  [alembic] Running downgrade {i}" for i in range(3)],
             details={"from": "9b1d00", "to": "7f3a2c"})
    checks = [r.verify("database", "schema-revision", "7f3a2c", "7f3a2c", action="alembic-down")]
    r.gate("database", "Are the database migrations rolled back successfully?", checks)
    r.add(ev.StepFinished, step="database", status="done")
    r.add(ev.StepFinished, step="infrastructure", status="not_applicable")

    r.add(ev.StepStarted, step="validate")
    r.action("validate", "smoke", "http")
    checks = [r.verify("validate", "health-200", "200", "200", category="health"),
              r.verify("validate", "checkout-smoke", "order placed", "order placed", category="functional")]
    r.decide("approval", "Technical Lead: approve validation?", ["approve", "reject"], "approve", subject="tech-lead",
             by="carol")
    r.add(ev.ApprovalGiven, actor="carol", role="tech-lead", role_title="Technical Lead", gate="validation", name="carol")
    r.gate("validate", "Is the rollback validated and documented successfully?", checks)
    r.add(ev.StepFinished, step="validate", status="done")
    for name in ("Rollback complete", "System restored", "Root cause analysis initiated"):
        r.add(ev.Signal, name=name)
    r.add(ev.SessionFinished, exit_state="completed", message="all steps done",
          scopes={"flags": "rolled_back", "code": "rolled_back", "configuration": "rolled_back",
                  "database": "rolled_back", "infrastructure": "not_applicable"})
    return r.events


def big_session(count: int) -> list[Event]:
    """A realistic session padded with output batches and health samples up to `count` events."""
    base = realistic_session()
    finish = base[-1]
    body = base[:-1]
    filler: list[Event] = []
    ts = body[-1].ts
    i = 0
    while len(body) + len(filler) + 1 < count:
        i += 1
        if i % 10 == 0:
            filler.append(ev.HealthSample(ts=ts, samples={"api": [[i * 0.5, "healthy", 41.5]]}))
        else:
            filler.append(ev.ActionOutput(ts=ts, step="validate", action="smoke", host="web1",
                                          lines=[f"2026-11-26T10:31:{i % 60:02d}Z GET /health 200 12ms req={i}"]))
    events = body + filler + [finish]
    return [e.model_copy(update={"seq": n}) for n, e in enumerate(events, 1)]
