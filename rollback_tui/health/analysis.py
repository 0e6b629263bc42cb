"""Timed analyses as step checks: a PromQL query sampled `count` times; passed, failed early, or inconclusive."""

from __future__ import annotations

import asyncio
import time

from rollback_tui.adapters.base import CheckResult
from rollback_tui.health.http11 import HttpPool
from rollback_tui.health.probes import error_reason
from rollback_tui.health.prometheus import PromAnswer, ask, graph_link, stamp
from rollback_tui.plan.promql import AnalysisCheck, condition_text, holds
from rollback_tui.plan.types import format_duration
from rollback_tui.secrets import SecretStore

#: Samples written into the evidence one by one; beyond, the middle ones are counted, not listed.
_LISTED = 120
_NO_VALUE = {"no_data": "no series", "several": "several series", "unreachable": "unreachable",
             "wrong_type": "not a number", "rejected": "rejected", "error": "query failed"}
#: Answers that mean "no data yet" while an analysis waits for its first data (`wait_for_data`).
_NOT_YET = ("no_data", "unreachable")


def analysis_label(check: AnalysisCheck) -> str:
    return check.id or f"analysis {check.query}"


def analysis_expectation(check: AnalysisCheck) -> str:
    parts = [f"{check.query} {condition_text(check.condition)} in {check.count} samples every "
             f"{format_duration(check.interval)}", f"fails at {check.failure_limit} miss"
             + ("es" if check.failure_limit > 1 else "")]
    if check.inconclusive is not None:
        parts.append(f"inconclusive {condition_text(check.inconclusive)}")
    if check.wait_for_data:
        parts.append(f"first waiting up to {format_duration(check.wait_for_data)} for data")
    return ", ".join(parts)


def _mark(check: AnalysisCheck, answer: PromAnswer) -> tuple[str, str]:
    """(pass | fail | inconclusive | error, the sample as written in the evidence)."""
    if answer.kind != "value" or answer.value is None:
        shown = answer.message.split()[2] if answer.kind == "not_finite" else _NO_VALUE.get(answer.kind, answer.kind)
        return "error", shown
    if check.inconclusive is not None and holds(check.inconclusive, answer.value):
        return "inconclusive", f"{answer.value:g}"
    return ("pass" if holds(check.condition, answer.value) else "fail"), f"{answer.value:g}"


def _listed(rows: list[str]) -> str:
    if len(rows) <= _LISTED:
        return ", ".join(rows)
    half = _LISTED // 2
    return ", ".join(rows[:half] + [f"... {len(rows) - 2 * half} more ..."] + rows[-half:])


async def _ask(check: AnalysisCheck, secrets: SecretStore, pool: HttpPool) -> PromAnswer:
    try:
        return await ask(check, secrets, timeout=check.timeout, pool=pool)
    except Exception as exc:  # e.g. a secret that cannot be read: a sample without a value, never a crash
        return PromAnswer("error", error_reason(exc))


async def _wait_for_data(check: AnalysisCheck, secrets: SecretStore, pool: HttpPool
                         ) -> tuple[PromAnswer | None, str]:
    """Ask until the query has data or `wait_for_data` runs out: (the first answer with data or None, a note)."""
    loop = asyncio.get_running_loop()
    budget = check.wait_for_data or 0.0
    start = loop.time()
    period = min(check.interval, 0.5)
    tries = 0
    while True:
        answer = await _ask(check, secrets, pool)
        tries += 1
        if answer.kind not in _NOT_YET:
            waited = loop.time() - start
            return answer, (f"first data after {waited:.1f} s ({tries} tries); " if tries > 1 else "")
        left = start + budget - loop.time()
        if left <= 0:
            return None, (f"no data within wait_for_data {format_duration(budget)} ({tries} tries, last: "
                          f"{answer.message}); ")
        await asyncio.sleep(min(period, left))


async def run_analysis(check: AnalysisCheck, secrets: SecretStore) -> CheckResult:
    """Sample the query on a fixed schedule; the evidence holds every sample's time and value and a graph link."""
    loop = asyncio.get_running_loop()
    rows: list[str] = []
    counts = {"pass": 0, "fail": 0, "inconclusive": 0, "error": 0}
    first_problem = ""
    verdict = ""
    waited = ""
    pool = HttpPool(max_idle_per_origin=1, idle_expiry=min(120.0, check.interval + 5.0))
    try:
        first: PromAnswer | None = None
        if check.wait_for_data is not None:
            first, waited = await _wait_for_data(check, secrets, pool)
        start = loop.time()
        for index in range(check.count):
            delay = start + index * check.interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if index == 0 and first is not None:
                answer = first
            else:
                answer = await _ask(check, secrets, pool)
            mark, shown = _mark(check, answer)
            counts[mark] += 1
            rows.append(f"{stamp(answer.at or time.time())} {shown}" + ("" if mark == "pass" else f" ({mark})"))
            if mark == "error" and not first_problem:
                first_problem = answer.message
            if counts["fail"] >= check.failure_limit:
                verdict = f"failed: failure limit {check.failure_limit} reached at sample {index + 1} of {check.count}"
                break
            if answer.kind == "rejected":  # the query will never run: waiting longer proves nothing
                verdict = f"failed: query rejected at sample {index + 1}"
                break
    finally:
        await pool.aclose()
    taken = len(rows)
    if not verdict:
        verdict = "passed" if counts["pass"] == taken else "inconclusive"
    summary = f"{counts['pass']} passed, {counts['fail']} failed, {counts['inconclusive']} inconclusive, " \
              f"{counts['error']} without a value of {taken}"
    problem = f"; first problem: {first_problem}" if first_problem else ""
    link = graph_link(secrets.expand(check.url), check.query, span=check.interval * check.count)
    observed = (f"{verdict} ({summary}){problem}; {waited}query {check.query} {condition_text(check.condition)}; "
                f"samples (UTC): {_listed(rows)}; graph: {link}")
    return CheckResult(analysis_label(check), analysis_expectation(check), observed, verdict == "passed",
                       check.category)
