"""The report's closing sections: validation, health, definition of done, signals, links, root cause analysis."""

from __future__ import annotations

from rollback_tui.report.facts import Facts
from rollback_tui.report.md import code, duration, inline, mark, table, tick, when

SIGNALS = ("Rollback complete", "System restored", "Root cause analysis initiated")


def validation(f: Facts) -> list[str]:
    step = f.steps.get("validate")
    checks = step.verifications if step else []
    out = [f"- {mark(v.ok)} {code(v.check)} ({inline(v.category)}): expected {code(v.expected)}, observed "
           f"{code(v.observed)} at {when(v.ts)}" for v in checks] or ["No validation checks recorded."]
    rows = [[code(probe), f"{mark(c.new == 'healthy')} {c.new}", when(c.ts), inline(c.reason)]
            for probe, c in sorted(f.health_now.items())]
    if rows:
        out += ["", "Health at the end of the session:", ""]
        out += table(["Probe", "State", "Since (UTC)", "Reason"], rows)
    return out


def health(f: Facts) -> list[str]:
    rows = [[when(c.ts), code(c.probe), f"{c.old} → {c.new}", inline(c.reason),
             f"{c.latency_ms:.0f} ms" if c.latency_ms is not None else ""] for c in f.health_changes]
    out = table(["When (UTC)", "Probe", "Change", "Reason", "Latency"], rows) or ["No health changes recorded."]
    if f.alerts:
        out += ["", "Alerts:", ""] + [f"- {when(a.ts)} {code(a.probe)}: {inline(a.reason)}" for a in f.alerts]
    if f.window_warnings:
        out += ["", "Rollback window:", ""]
        out += [f"- {when(w.ts)} {w.percent} % of the window used ({duration(w.elapsed)} of {duration(w.window)})"
                for w in f.window_warnings]
    return out


def _completed(f: Facts, step_id: str) -> bool:
    step = f.steps.get(step_id)
    return step is not None and step.completed_at is not None


def _applicable_item(f: Facts, step_id: str, label: str) -> str:
    step = f.steps.get(step_id)
    if step is None or (not step.outline.get("applicable", True) and not step.attempts):
        return f"- [x] {label} — not applicable"
    if step.status == "not_applicable" and step.completed_at is None:
        return f"- [x] {label} — marked not applicable"
    return f"- {tick(step.completed_at is not None)} {label} — step {step.status}"


def _health_verified(f: Facts) -> tuple[bool, str]:
    step = f.steps.get("validate")
    if step is None or step.completed_at is None:
        return False, "validation step not completed"
    failed = [v.check for v in step.verifications if not v.ok]
    unhealthy = [p for p, c in sorted(f.health_now.items()) if c.new != "healthy"]
    if failed:
        return False, f"failed checks: {', '.join(failed)}"
    if unhealthy:
        return False, f"probes not healthy at the end: {', '.join(unhealthy)}"
    return True, f"{len(step.verifications)} validation checks passed; {len(f.health_now)} probes healthy"


def done(f: Facts) -> list[str]:
    """Seed §9, each item ticked only from what the events show."""
    signalled = {s.name for s in f.signals}
    healthy, why = _health_verified(f)
    step = f.steps.get("assess")
    return [
        f"- {tick(_completed(f, 'assess'))} Rollback situation assessed — step {step.status if step else 'not recorded'}",
        f"- {tick(_completed(f, 'flags'))} Feature flags disabled — step {f.steps['flags'].status if 'flags' in f.steps else 'not in plan'}",
        f"- {tick(_completed(f, 'code'))} Code rolled back successfully — step {f.steps['code'].status if 'code' in f.steps else 'not in plan'}",
        _applicable_item(f, "configuration", "Configuration rolled back (if applicable)"),
        _applicable_item(f, "database", "Database migrations rolled back (if applicable)"),
        _applicable_item(f, "infrastructure", "Infrastructure rolled back (if applicable)"),
        f"- {tick(_completed(f, 'validate'))} Rollback validated",
        f"- {tick(healthy)} System health verified after rollback — {inline(why)}",
        f"- {tick(f.finished is not None)} Rollback execution documented — this report"
        + ("" if f.finished else " (the session did not finish)"),
        f"- {tick('Root cause analysis initiated' in signalled)} Root cause analysis initiated",
    ]


def signals(f: Facts) -> list[str]:
    emitted = {s.name: s for s in f.signals}
    return [f"- {mark(True)} \"{name}\" at {when(emitted[name].ts)}" if name in emitted
            else f"- {mark(None)} \"{name}\" — not emitted" for name in SIGNALS]


def links(f: Facts, journal: str) -> list[str]:
    meta = f.metadata
    out = [f"- Ticket: {inline(meta['ticket'])}" if meta.get("ticket") else "- Ticket: none recorded in the plan"]
    if meta.get("incident"):
        out.append(f"- Incident: {inline(meta['incident'])}")
    journal = journal or str(f.outline.get("journal_path") or "")
    out.append(f"- Journal (rollback logs): {code(journal)}" if journal else "- Journal (rollback logs): not recorded")
    if f.started:
        out.append(f"- Plan: {code(f.started.plan_path)} (sha256 {code(f.started.plan_sha256)})")
    out.append("- Rollback execution documentation: this report; its event log below is the full rollback log")
    return out


def root_cause(f: Facts) -> list[str]:
    meta = f.metadata
    rca = next((s for s in f.signals if s.name == "Root cause analysis initiated"), None)
    out = [f"Status: initiated at {when(rca.ts)}; to be completed by the team." if rca
           else "Status: not initiated by the session; to be started by the team.", "", "### Reasons for the rollback", ""]
    reasons = [f"- Trigger: {inline(meta['trigger'])}"] if meta.get("trigger") else ["- Trigger: not recorded in the plan"]
    for step in f.ordered_steps():
        for run in step.runs:
            if run.finished and run.finished.status not in ("ok", "skipped", "manual"):
                reasons.append(f"- Action {code(run.started.action)} (step {step.step}) {run.finished.status}"
                               + (f": {inline(run.finished.error)}" if run.finished.error else ""))
        reasons += [f"- Check {code(v.check)} (step {step.step}) failed: expected {code(v.expected)}, observed {code(v.observed)}"
                    for v in step.verifications if not v.ok]
    reasons += [f"- {inline(d.made.choice)} by {inline(d.made.by)} ({inline(d.made.kind)}{', step ' + d.made.step if d.made.step else ''}): "
                f"{inline(d.made.reason)}" for d in f.decisions if d.made.reason]
    out += reasons + ["", "### Lessons learned", "", "_To be completed._ Points the record raises:", ""]
    points = [f"- {inline(d.made.choice)} at {when(d.made.ts)} by {inline(d.made.by)}: {inline(d.made.reason)}"
              for d in f.decisions if d.made.choice in ("override", "abort", "manual", "reassess")]
    points += [f"- step {s.step} took {s.attempts} attempts" for s in f.ordered_steps() if s.attempts > 1]
    points += [f"- the rollback window reached {w.percent} %" for w in f.window_warnings]
    points += [f"- the session was interrupted ({inline(i.reason)})" for i in f.interruptions]
    out += points or ["- nothing unusual recorded"]
    return out + ["", "### Follow-up", "", "- [ ] Root cause identified", "- [ ] Lessons learned recorded",
                  "- [ ] Rollback execution review (procedure section Validation & Acceptance Criteria)"]
