"""Step checks (a step's `verify:` entries, step 7's health, functionality and data checks) as evidence lines."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from rollback_tui.adapters.base import CheckResult
from rollback_tui.health.probes import ProbeOutcome, sample
from rollback_tui.plan.models import Plan
from rollback_tui.plan.probes import CommandProbe, HttpProbe, ProbeRef, PrometheusProbe, SqlProbe, SshProbe, TcpProbe
from rollback_tui.plan.promql import AnalysisCheck, condition_text
from rollback_tui.plan.types import format_duration
from rollback_tui.secrets import SecretStore

if TYPE_CHECKING:
    from rollback_tui.health.monitor import Monitor
    from rollback_tui.plan.probes import Probe, StepCheck


def probe_label(probe: Probe) -> str:
    """What a probe looks at, in one line (secret references stay as written, never their values)."""
    if probe.id:
        return probe.id
    if isinstance(probe, HttpProbe):
        return f"{probe.method} {probe.url}"
    if isinstance(probe, TcpProbe):
        return f"tcp {probe.host}:{probe.port}"
    if isinstance(probe, CommandProbe):
        return f"command {shlex.join(probe.argv)}"
    if isinstance(probe, SshProbe):
        return f"ssh {probe.group}: {probe.command}"
    if isinstance(probe, SqlProbe):
        return f"sql {probe.query}"
    if isinstance(probe, PrometheusProbe):
        return f"prometheus {probe.query}"
    return str(getattr(probe, "kind", "probe"))


def probe_expectation(probe: Probe) -> str:
    """What a pass looks like, in the operator's words."""
    parts: list[str] = []
    if isinstance(probe, HttpProbe):
        codes = [probe.expect_status] if isinstance(probe.expect_status, int) else probe.expect_status
        parts.append("status " + " or ".join(str(code) for code in codes))
        if probe.body_contains is not None:
            parts.append(f"body contains {probe.body_contains!r}")
        if probe.json_field is not None:
            parts.append(f"{probe.json_field} = {probe.json_equals!r}" if probe.json_equals is not None
                         else f"JSON field {probe.json_field} present")
        if probe.max_latency is not None:
            parts.append(f"within {probe.max_latency * 1000:.0f} ms")
    elif isinstance(probe, TcpProbe):
        parts.append(f"accepts connections on {probe.host}:{probe.port}")
    elif isinstance(probe, CommandProbe):
        parts.append(f"exit {probe.expect_exit}")
        if probe.output_contains is not None:
            parts.append(f"output contains {probe.output_contains!r}")
    elif isinstance(probe, SshProbe):
        need = "every host" if probe.min_ok is None else f"at least {probe.min_ok} hosts"
        parts.append(f"exit {probe.expect_exit} on {need} of {probe.group}")
    elif isinstance(probe, SqlProbe):
        parts.append("a row" if probe.expect is None else f"first value = {probe.expect!r}")
    elif isinstance(probe, PrometheusProbe):
        parts.append(f"one finite value {condition_text(probe.condition)}")
    parts.append(f"within {format_duration(probe.timeout)} timeout")
    return ", ".join(parts)


def _observed(outcome: ProbeOutcome) -> str:
    if outcome.unknown:
        return f"unknown: {outcome.reason}"
    if not outcome.ok:
        return f"failed: {outcome.reason}"
    return f"degraded: {outcome.reason}" if outcome.degraded else outcome.reason


async def _check_ref(check: ProbeRef, plan: Plan, secrets: SecretStore, monitor: Monitor | None) -> CheckResult:
    name = f"probe {check.probe}"
    expected = "healthy" if check.expect == "healthy" else "not down (healthy or degraded)"
    probe = plan.probe(check.probe)
    if probe is None:
        return CheckResult(name, expected, f"no probe named {check.probe!r} under health:", False, check.category)
    accepted = ("healthy",) if check.expect == "healthy" else ("healthy", "degraded")
    if monitor is not None and check.probe in monitor.probes:
        # the scheduled state may be up to one interval old (e.g. just before the step fixed it): the evidence
        # for a decision comes from a sample taken now, folded into the probe's state with its thresholds
        await monitor.sample_now(check.probe)
        entry = monitor.snapshot()[check.probe]
        state, reason = entry["state"], entry["reason"]
        return CheckResult(name, expected, f"{state}: {reason} (sampled now)", state in accepted, check.category)
    outcome = await sample(probe, plan=plan, secrets=secrets)
    # one sample cannot apply thresholds: a pass is healthy, a slow pass degraded, a failure counts as down
    state = ("unknown" if outcome.unknown else "degraded" if outcome.ok and outcome.degraded
             else "healthy" if outcome.ok else "down")
    return CheckResult(name, expected, f"{state} (sampled now): {outcome.reason}", state in accepted, check.category)


async def run_step_check(check: StepCheck, *, plan: Plan, secrets: SecretStore, monitor: Monitor | None
                         ) -> CheckResult:
    """Evaluate one step check now: an inline probe is sampled once; a ProbeRef reads the monitor's current state
    after taking a fresh sample into it (or samples the probe when there is no monitor). Never raises for a failing check: the result says why.
    A slow pass (over max_latency) of an inline probe is not a pass."""
    if isinstance(check, ProbeRef):
        result = await _check_ref(check, plan, secrets, monitor)
    elif isinstance(check, AnalysisCheck):
        from rollback_tui.health.analysis import run_analysis

        result = await run_analysis(check, secrets)
    else:
        outcome = await sample(check, plan=plan, secrets=secrets)
        result = CheckResult(probe_label(check), probe_expectation(check), _observed(outcome),
                             outcome.ok and not outcome.degraded, check.category)
    result.check = secrets.redactor(result.check)
    result.expected = secrets.redactor(result.expected)
    result.observed = secrets.redactor(result.observed)
    return result
