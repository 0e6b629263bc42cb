"""The report's human sections, each rendered from the folded events (facts) alone."""

from __future__ import annotations

from typing import Any

from rollback_tui.record import events as ev
from rollback_tui.report.facts import SCOPES, Decision, Facts, StepFacts
from rollback_tui.report.md import clock, code, duration, inline, mark, span, table, when

OUTCOME = {
    "completed": "✅ Completed successfully",
    "blocked": "⚠️ Blocked",
    "aborted": "❌ Aborted",
    "partial": "🔄 Partial rollback",
    "unfinished": "⏸ Unfinished (the event log has no session_finished event)",
}
#: Seed §11: what each exit state asks for next.
NEXT = {
    "completed": "System restored to its previous known-good state; root cause analysis follows.",
    "blocked": "Rollback incomplete, waiting for issue resolution. Required action: address the prerequisites "
               "or gather the rollback information. Notify: DevOps Lead, Technical Lead.",
    "aborted": "Rollback cannot proceed. Required action: document why it was aborted and initiate recovery "
               "procedures; record the lessons learned.",
    "partial": "System in a partially rolled back state. Next steps: complete the rollback or initiate recovery "
               "procedures.",
    "unfinished": "The session did not finish; `rollback-tui resume JOURNAL` continues it.",
}
SCOPE_OUTCOME = {"rolled_back": "✅ rolled back", "not_rolled_back": "❌ not rolled back",
                 "not_applicable": "➖ not applicable", "manual": "✋ rolled back by hand"}
AUDIT = [("flags", "Feature flags disabled"), ("code", "Code rolled back"),
         ("configuration", "Configuration rolled back"), ("database", "Database rolled back"),
         ("infrastructure", "Infrastructure rolled back"), ("validate", "Rollback validated")]


def summary(f: Facts) -> list[str]:
    meta, start = f.metadata, f.started
    rows = [["Outcome", OUTCOME.get(f.exit_state, f.exit_state)]]
    for key, label in (("incident", "Incident"), ("service", "Service"), ("environment", "Environment"),
                       ("owner", "Owner"), ("trigger", "Trigger")):
        if meta.get(key):
            rows.append([label, inline(meta[key])])
    if start:
        rows += [["Operator", inline(start.operator)], ["Plan", f"{code(start.plan_path)} (sha256 {code(start.plan_sha256[:16])})"],
                 ["Host", f"{inline(start.host)} (pid {start.pid})"], ["Tool", f"rollback-tui {inline(start.tool_version)}"]]
    rows += [["Started", when(f.first_ts)], ["Ended", when(f.finished.ts if f.finished else f.last_ts)],
             ["Duration", span(f.first_ts, f.finished.ts if f.finished else f.last_ts)]]
    window = f.outline.get("window")
    if isinstance(window, (int, float)) and window > 0:
        rows.append(["Rollback window", duration(window)])
    out = table(["", ""], rows) + ["", NEXT.get(f.exit_state, "")]
    if f.finished and f.finished.message:
        out += ["", f"Finish message: {inline(f.finished.message)}"]
    if f.problems:  # a move the procedure's table refuses: the record is reported as it is, the move named
        out += ["", "Record problems (moves the procedure does not allow):", ""]
        out += [f"- {inline(problem)}" for problem in f.problems[:20]]
    return out


def scopes(f: Facts) -> list[str]:
    outcomes = f.finished.scopes if f.finished else {}
    rows = []
    for scope in SCOPES:
        step = f.steps.get(scope)
        rows.append([scope, SCOPE_OUTCOME.get(outcomes.get(scope, ""), "— not recorded"),
                     step.status if step else "not in plan", when(step.completed_at) if step else "—"])
    rows += [[inline(s), SCOPE_OUTCOME.get(o, inline(o)), "", ""] for s, o in sorted(outcomes.items()) if s not in SCOPES]
    plan = f.outline.get("rollback")
    out = table(["Scope", "Outcome", "Step status", "Completed at (UTC)"], rows)
    if isinstance(plan, dict) and plan.get("approach"):
        out += ["", f"Approach: {inline(plan['approach'])}; order: {inline(', '.join(map(str, plan.get('order', []))))}."]
    if isinstance(plan, dict):
        for key, label in (("risks", "Risks and unknowns"), ("validation_points", "Validation points")):
            if plan.get(key):
                out += ["", f"{label}:", ""] + [f"- {inline(item)}" for item in plan[key]]
    return out


def audit(f: Facts) -> list[str]:
    decision = next((r for r in f.reviews if r.approved), None)
    execution = next((a for a in f.approvals if a.gate == "execution"), None)
    rows = []
    if decision:
        rows.append(["Rollback decision", when(decision.ts), f"plan review approved by {inline(decision.actor)}"])
    elif execution:
        rows.append(["Rollback decision", when(execution.ts), f"execution approved by {inline(execution.name)}"])
    else:
        rows.append(["Rollback decision", "—", "no approved plan review recorded"])
    for step_id, label in AUDIT:
        step = f.steps.get(step_id)
        if step is None or not step.outline.get("applicable", step.attempts > 0):
            rows.append([label, "—", "not applicable"])
        else:
            rows.append([label, when(step.completed_at), f"step {step.status}"])
    done = f.finished is not None and f.finished.exit_state == "completed"
    rows.append(["Rollback completion", when(f.finished.ts) if done else "—",
                 "completed" if done else f"session ended {f.exit_state}"])
    out = table(["What", "Date and time (UTC)", "Record"], rows) + ["", "Session:", ""]
    if f.started:
        out.append(f"- {when(f.started.ts)} started by {inline(f.started.operator)} on {inline(f.started.host)}")
    timeline: list[tuple[Any, str]] = [(i.ts, f"interrupted: {inline(i.reason)}") for i in f.interruptions]
    timeline += [(r.ts, f"resumed by {inline(r.operator)} on {inline(r.host)} after seq {r.last_seq}") for r in f.resumes]
    timeline += [(e.ts, f"finished: {e.exit_state}") for e in f.endings[:-1]]  # ends before a reopen
    timeline += [(r.ts, f"reopened by {inline(r.reopened_by)} after it ended {r.previous_exit_state}: "
                        f"{inline(r.reason)}") for r in f.reopens]
    out += [f"- {when(ts)} {text}" for ts, text in sorted(timeline, key=lambda item: item[0])]
    if f.finished:
        out.append(f"- {when(f.finished.ts)} finished: {f.finished.exit_state}")
    return out


def inputs(f: Facts) -> list[str]:
    latest: dict[str, ev.InputChecked] = {}
    checks: dict[str, int] = {}
    for check in f.inputs:  # an input confirmed after a first failed check shows its last state
        latest[check.input_id] = check
        checks[check.input_id] = checks.get(check.input_id, 0) + 1
    rows = [[code(i.input_id), i.category, mark(i.ok) + (f" ({checks[i.input_id]} checks)" if checks[i.input_id] > 1 else ""),
             inline(i.detail), inline(i.remediation)] for i in latest.values()]
    out = table(["Input", "Category", "Present", "Detail", "Remediation"], rows) or ["No input checks recorded."]
    out += [""]
    for review in f.reviews:
        verdict = "approved" if review.approved else "rejected"
        digest = f" (plan markdown sha256 {code(review.plan_markdown_sha256[:16])})" if review.plan_markdown_sha256 else ""
        out.append(f"Plan review: {verdict} by {inline(review.actor)} at {when(review.ts)}{digest}.")
    if not f.reviews:
        out.append("Plan review: not recorded.")
    return out


def _hosts(finished: ev.ActionFinished | None) -> str:
    if finished is None or not finished.hosts:
        return ""
    bad = [h for h in finished.hosts if h.status != "ok"]
    if len(finished.hosts) <= 4:
        return ", ".join(f"{inline(h.host)} {mark(h.status == 'ok')}" + ("" if h.status == "ok" else f" {h.status}")
                         for h in finished.hosts)
    head = f"{len(finished.hosts) - len(bad)} ok, {len(bad)} not ok"
    shown = ", ".join(f"{inline(h.host)} {h.status}" for h in bad[:5])
    return f"{head} ({shown}{', …' if len(bad) > 5 else ''})" if bad else head


def _step(number: int, step: StepFacts) -> list[str]:
    out = [f"### {number}. {inline(step.title)} — {step.status}", ""]
    if step.outline.get("question"):
        out.append(f"- Question: {inline(step.outline['question'])}")
    if not step.outline.get("applicable", True) and not step.attempts:
        return out + ["- Not applicable: the plan has no such step.", ""]
    out.append(f"- Attempts: {step.attempts}; completed: {when(step.completed_at)}")
    rows = []
    for run in step.runs:
        fin = run.finished
        status = f"{mark(fin.status == 'ok' if fin.status not in ('skipped', 'manual') else None)} {fin.status}" if fin else "⏸ unfinished"
        detail = inline(fin.error) if fin and fin.error else ""
        if fin and fin.exit_code is not None and fin.status != "ok":
            detail = f"exit {fin.exit_code}" + (f": {detail}" if detail else "")
        rows.append([code(run.started.action), inline(run.started.kind), str(run.started.attempt), clock(run.started.ts),
                     status, duration(fin.duration) if fin else "—", _hosts(fin), detail])
    if rows:
        out += [""] + table(["Action", "Kind", "Attempt", "Started", "Status", "Duration", "Hosts", "Detail"], rows)
    if step.verifications:
        out += ["", "Verifications:", ""]
        out += [f"- {mark(v.ok)}{' unverified' if v.readback == 'none' else ''} {code(v.check)} "
                f"({inline(v.category)}{', ' + code(v.action) if v.action else ''}): "
                f"expected {code(v.expected)}, observed {code(v.observed)}" for v in step.verifications]
    facts = [(run.started.action, run.finished.details) for run in step.runs if run.finished and run.finished.details]
    if facts:
        out += ["", "Recorded facts:", ""]
        out += [f"- {code(action)}: " + ", ".join(f"{inline(k)} = {code(v)}" for k, v in sorted(d.items()))
                for action, d in facts]
    if step.output_lines:
        plural = "line" if step.output_lines == 1 else "lines"
        out += ["", f"Output: {step.output_lines} {plural}, in the event log."]
    return out + [""]


def steps(f: Facts) -> list[str]:
    out: list[str] = []
    for number, step in enumerate(f.ordered_steps(), 1):
        out += _step(number, step)
    return out[:-1] if out else ["No steps recorded."]


def _evidence(request: ev.DecisionRequested | None) -> list[str]:
    if request is None:
        return ["  - (no decision request recorded)"]
    e = request.evidence
    out = [f"  - verification {mark(bool(v.get('ok')))}{' unverified' if v.get('readback') == 'none' else ''} "
           f"{code(v.get('check', ''))}: expected {code(v.get('expected', ''))}, "
           f"observed {code(v.get('observed', ''))}" for v in e.verifications]
    out += [f"  - health {code(probe)}: {inline(h.get('state', '?'))}"
            + (f" ({inline(h['reason'])})" if h.get("reason") else "")
            + (f", {h['latency_ms']:.0f} ms" if isinstance(h.get("latency_ms"), (int, float)) else "")
            for probe, h in sorted(e.health.items())]
    if e.window:
        out.append(f"  - window: {duration(e.window_used)} used of {duration(e.window)} ({100 * e.window_used / e.window:.0f} %)")
    if e.failed_hosts:
        out.append(f"  - failed hosts: {inline(', '.join(e.failed_hosts))}")
    if e.detail:
        out.append(f"  - detail: {inline(e.detail)}")
    return out or ["  - nothing beyond the question"]


def _decision(number: int, d: Decision) -> list[str]:
    made, req = d.made, d.request
    where = ", ".join(p for p in (f"step {made.step}" if made.step else "", f"action {made.action}" if made.action else "",
                                  f"{made.subject}" if made.subject else "") if p)
    out = [f"### D{number}. {inline(made.kind)}{' (' + inline(where) + ')' if where else ''}: **{made.choice}**", "",
           f"- When: {when(made.ts)}" + (f" (asked {clock(req.ts)})" if req else ""),
           f"- Who: {inline(made.by)}"]
    if req:
        out += [f"- Question: {inline(req.question)}", f"- Options: {', '.join(req.options)}"]
    out.append(f"- Why: {inline(made.reason) if made.reason else '(no reason given)'}")
    return out + ["- Evidence on screen:"] + _evidence(req) + [""]


def decisions(f: Facts) -> list[str]:
    out: list[str] = []
    for number, d in enumerate(f.decisions, 1):
        out += _decision(number, d)
    return out[:-1] if out else ["No decisions recorded."]


def approvals(f: Facts) -> list[str]:
    roles = [r for r in f.outline.get("roles", []) if isinstance(r, dict)]
    rows, seen = [], set()
    for role in roles:
        for gate in role.get("approves", []) or [""]:
            given = [a for a in f.approvals if a.role == role.get("id") and (a.gate == gate or not gate)]
            seen.update(id(a) for a in given)
            names = ", ".join(_approver(a, roles) for a in given) or "— not given"
            rows.append([inline(role.get("title") or role.get("id")), inline(gate), names,
                         ", ".join(when(a.ts) for a in given) or "—"])
    rows += [[inline(a.role_title or a.role), a.gate, _approver(a, roles), when(a.ts)] for a in f.approvals
             if id(a) not in seen]
    return table(["Role", "Gate", "Approved by", "When (UTC)"], rows) or ["No approvals recorded."]


def _approver(approval: Any, roles: list[dict[str, Any]]) -> str:
    """The approver's name, and, when the plan let one person hold two roles, which other role they hold."""
    other = getattr(approval, "same_person_as", "")
    if not other:
        return inline(approval.name)
    title = next((r.get("title") or other for r in roles if r.get("id") == other), other)
    return f"{inline(approval.name)} (same person as the {inline(title)} approver; the plan allows it)"
