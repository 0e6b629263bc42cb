"""Check the procedure's required inputs (seed §3): artifacts by path, URL or command; the rest by the operator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rollback_tui.plan.models import Artifact, Plan
from rollback_tui.plan.types import format_duration

REMEDIATION_TEXT = {
    "halt": "halt: the rollback cannot start without it (exit state: blocked)",
    "use_backup": "use available backups or the previous version",
    "emergency_plan": "create an emergency rollback plan",
    "manual_procedure": "create rollback scripts or use manual rollback procedures",
    "proceed": "informational: proceed",
}


@dataclass
class InputResult:
    """One required input and what its check found; `ok` None means the operator must confirm it."""

    input_id: str
    category: Literal["artifact", "decision", "constraint"]
    ok: bool | None
    detail: str
    remediation: str
    description: str = ""

    @property
    def remediation_text(self) -> str:
        return REMEDIATION_TEXT.get(self.remediation, self.remediation)


async def _check_url(url: str, timeout: float) -> tuple[bool, str]:
    import httpx  # lazy: costs start-up time

    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return False, f"{url}: {type(exc).__name__}: {exc}".rstrip(": ")
    if response.status_code < 400:
        return True, f"{url} answered {response.status_code}"
    return False, f"{url} answered {response.status_code}"


async def _check_command(argv: list[str], timeout: float) -> tuple[bool, str]:
    from rollback_tui.adapters.proc import capture

    shown = " ".join(argv)
    try:
        result = await capture(argv, timeout=timeout)
    except FileNotFoundError:
        return False, f"{argv[0]}: command not found"
    except (asyncio.TimeoutError, TimeoutError):
        return False, f"`{shown}` timed out after {timeout:g}s"
    tail = (result.stderr_tail or result.stdout_tail or [""])[-1]
    if result.returncode == 0:
        return True, f"`{shown}` succeeded"
    return False, f"`{shown}` exited {result.returncode}" + (f": {tail}" if tail else "")


async def check_artifact(artifact: Artifact, *, timeout: float = 10.0) -> InputResult:
    check = artifact.check
    if check is None:
        ok, detail = None, "no automatic check: confirm it is available"
    elif check.path is not None:
        exists = Path(check.path).exists()
        ok, detail = exists, f"{check.path} {'exists' if exists else 'does not exist'}"
    elif check.url is not None:
        ok, detail = await _check_url(check.url, timeout)
    else:
        assert check.argv is not None
        ok, detail = await _check_command(check.argv, timeout)
    return InputResult(artifact.id, "artifact", ok, detail, artifact.remediation, artifact.description)


async def check_inputs(plan: Plan, *, timeout: float = 10.0) -> list[InputResult]:
    """Check every required input concurrently; results keep the plan's order."""
    artifacts = await asyncio.gather(*(check_artifact(a, timeout=timeout) for a in plan.inputs.artifacts))
    results = list(artifacts)
    for decision in plan.inputs.decisions:
        who = f" (by {decision.made_by})" if decision.made_by else ""
        results.append(InputResult(decision.id, "decision", None, f"confirm: {decision.description}{who}",
                                   decision.remediation, decision.description))
    constraints = plan.inputs.constraints
    results.append(InputResult("rollback-window", "constraint", True,
                               f"rollback window {format_duration(constraints.window)}", "proceed",
                               "Rollback must occur within the window"))
    if constraints.system_state:
        results.append(InputResult("system-state", "constraint", None, f"confirm: {constraints.system_state}",
                                   "halt", "System state must allow rollback"))
    if constraints.team:
        results.append(InputResult("rollback-team", "constraint", None,
                                   "confirm available: " + ", ".join(constraints.team), "halt",
                                   "Rollback team is available"))
    return results
