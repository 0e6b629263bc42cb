"""Render the Rollback Plan of seed §4 as markdown: what the operator reviews before anything runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rollback_tui.adapters.base import ActionContext, Description, describe_safely
from rollback_tui.review.inputs import REMEDIATION_TEXT
from rollback_tui.plan.models import Plan
from rollback_tui.plan.types import SCOPE_STEP, STEP_ORDER, STEP_TITLES, format_duration
from rollback_tui.secrets import SecretStore

_APPROACH = {
    "automated": "Automated: every action runs through its adapter; the operator decides go/no-go at each step.",
    "manual": "Manual: the operator performs each action by hand and confirms it; the tool records and verifies.",
    "partial": "Partial: only the listed scope is rolled back; the rest stays as deployed.",
}


def _md(text: str) -> str:
    """One line of plan text, safe inside a markdown table cell or list item."""
    return " ".join(text.split()).replace("|", "\\|")


async def describe_plan(plan: Plan, secrets: SecretStore, workdir: Path) -> dict[tuple[str, str], Description]:
    """Describe every action of every step concurrently (adapters read, never change)."""
    keys: list[tuple[str, str]] = []
    jobs = []
    for step in plan.steps:
        for action in step.actions:
            ctx = ActionContext(plan=plan, step=step.id.value, action_id=action.id, secrets=secrets, workdir=workdir)
            keys.append((step.id.value, action.id))
            jobs.append(describe_safely(action, ctx))
    return dict(zip(keys, await asyncio.gather(*jobs)))


def _plan_risks(plan: Plan) -> list[str]:
    """Risks that follow from the plan itself, whatever the adapters say."""
    risks: list[str] = []
    for name, group in plan.host_groups.items():
        if not group.strict_host_key_checking:
            risks.append(f"Host key checking is OFF for host group `{name}`: a man-in-the-middle would not be noticed.")
    for step in plan.steps:
        for action in step.actions:
            if getattr(action, "shell", False):
                risks.append(f"`{step.id.value}/{action.id}` runs through `sh -c`: plan variables reach a shell.")
            if action.manual:
                risks.append(f"`{step.id.value}/{action.id}` is a manual procedure: the tool cannot undo or verify "
                             "what is done by hand beyond its checks.")
    missing = [step_id.value for step_id in STEP_ORDER if plan.step(step_id) is None]
    if missing:
        risks.append("Not applicable in this plan: " + ", ".join(missing) + ".")
    return risks


def _waves_lines(plan: Plan, action: Any) -> list[str]:
    """The wave layout of a waved action and its failure budget (the hosts of at most 10 waves shown)."""
    from rollback_tui.plan.waves import group_of, plan_waves

    group = plan.host_groups.get(group_of(action) or "")
    hosts = list(group.hosts) if group is not None else []
    waves = action.waves
    lines = [f"  - waves: {_md(waves.describe(len(hosts)))}"]
    layout = plan_waves(hosts, waves)
    for number, wave in enumerate(layout[:10], start=1):
        shown = ", ".join(wave[:5]) + (f", and {len(wave) - 5} more" if len(wave) > 5 else "")
        lines.append(f"    - wave {number} ({len(wave)} host(s)): {_md(shown)}")
    if len(layout) > 10:
        lines.append(f"    - and {len(layout) - 10} more waves")
    if waves.pause is not None:
        lines.append("    - between the waves no one is asked: the next wave starts after the pause unless the "
                     "failure budget is exceeded or a health probe is down")
    return lines


async def render_plan(plan: Plan, secrets: SecretStore, workdir: Path,
                      descriptions: dict[tuple[str, str], Description] | None = None) -> str:
    """The Rollback Plan document (markdown); `descriptions` when the caller already described the plan."""
    if descriptions is None:
        descriptions = await describe_plan(plan, secrets, workdir)
    meta = plan.metadata
    out: list[str] = [f"# Rollback Plan: {_md(meta.name)}", ""]
    facts = [("Incident", meta.incident), ("Service", meta.service), ("Environment", meta.environment),
             ("Owner", meta.owner), ("Ticket", meta.ticket), ("Trigger", meta.trigger),
             ("Rollback window", format_duration(plan.inputs.constraints.window))]
    out += [f"- **{label}:** {_md(value)}" for label, value in facts if value]
    out += ["", "## Rollback scope", ""]
    for scope in plan.rollback.scope:
        out.append(f"- {scope.value} (step: {STEP_TITLES[SCOPE_STEP[scope]]})")
    out += ["", "## Rollback approach", "", _APPROACH[plan.rollback.approach], "",
            "## Rollback order", ""]
    out += [f"{index}. {scope.value}" for index, scope in enumerate(plan.rollback.order, start=1)
            if scope in plan.rollback.scope]

    out += ["", "## Required inputs", ""]
    for artifact in plan.inputs.artifacts:
        how = "confirmed by the operator"
        if artifact.check is not None:
            how = (f"path `{artifact.check.path}` exists" if artifact.check.path else
                   f"URL {artifact.check.url} answers" if artifact.check.url else
                   f"`{' '.join(artifact.check.argv or [])}` succeeds")
        out.append(f"- **{artifact.id}**: {_md(artifact.description)} — check: {how}; if missing: "
                   f"{REMEDIATION_TEXT[artifact.remediation]}"
                   + (f" ({_md(artifact.remediation_note)})" if artifact.remediation_note else ""))
    for decision in plan.inputs.decisions:
        out.append(f"- **{decision.id}** (decision): {_md(decision.description)}; if not confirmed: "
                   f"{REMEDIATION_TEXT[decision.remediation]}")
    constraints = plan.inputs.constraints
    if constraints.system_state:
        out.append(f"- **system state**: {_md(constraints.system_state)}")
    if constraints.team:
        out.append(f"- **rollback team**: {', '.join(constraints.team)}")

    out += ["", "## Steps to be executed", ""]
    risks = list(plan.rollback.risks)
    for number, step_id in enumerate(STEP_ORDER, start=1):
        step = plan.step(step_id)
        if step is None:
            out += [f"### {number}. {STEP_TITLES[step_id]} — not applicable", ""]
            continue
        out += [f"### {number}. {step.display_title}", ""]
        if step.notes:
            out += [_md(step.notes), ""]
        for action in step.actions:
            description = descriptions[(step_id.value, action.id)]
            label = f"`{action.id}` ({action.kind}"
            label += f", timeout {format_duration(action.timeout)}"
            label += f", {action.retry.attempts} attempts" if action.retry.attempts > 1 else ""
            label += ", manual" if action.manual else ""
            label += ", after the go/no-go" if action.after_decision else ""
            out.append(f"- {label}): {_md(action.description or description.summary)}")
            if action.description and description.summary:
                out.append(f"  - does: {_md(description.summary)}")
            if getattr(action, "waves", None) is not None:
                out += _waves_lines(plan, action)
            if description.details:
                out += ["", "  ```text"] + [f"  {line}" for line in description.details[:60]] + ["  ```", ""]
                if len(description.details) > 60:
                    out.append(f"  ({len(description.details) - 60} more lines)")
            risks += [f"`{step_id.value}/{action.id}`: {_md(risk)}" for risk in description.risks]
        if not step.actions:
            out.append("- no automated actions: the operator works from the guidance above and confirms")
        for check in step.verify:
            label = check.probe if check.kind == "probe" else (check.id or check.kind)
            out.append(f"- verify ({check.category}): {label}"
                       + (f" — {_md(check.description)}" if getattr(check, "description", "") else ""))
        out += ["", f"**Go/no-go:** {_md(step.display_question)}", ""]

    out += ["## Risks and unknowns", ""]
    out += [f"- {_md(risk)}" for risk in risks + _plan_risks(plan)] or ["- none recorded"]
    out += ["", "## Validation points", ""]
    points = list(plan.rollback.validation_points)
    points += [f"step {step.id.value}: {len(step.verify)} check(s) before its go/no-go"
               for step in plan.steps if step.verify]
    points += [f"live health probe `{probe.id}` ({probe.kind}, every {format_duration(probe.interval)})"
               + (" — rollback trigger" if probe.trigger else "") for probe in plan.health]
    out += [f"- {_md(point)}" for point in points] or ["- none recorded"]
    out += ["", "## Approvals", ""]
    for role in plan.approvals.roles:
        out.append(f"- {role.title} (`{role.id}`) approves: {', '.join(role.approves)}")
    out.append("- one person may hold two roles" if plan.approvals.allow_same_person
               else "- one person may not hold two roles")
    return "\n".join(out).rstrip() + "\n"
