"""A waved host-group action: its waves in order, the check between them, the failure budget, exclusions, resume.

The runner hands an action with `waves:` to `WavedAction.run`. Each wave is one run of the action with
`ActionContext.only_hosts` set to the wave's hosts (any host-group adapter that honours it gets waves); every host
that finishes is journaled at once (HostFinished), so a resume after a crash mid-wave knows which hosts are done.
After each wave: the failure budget (failed, unreachable, timed-out or cancelled hosts over the whole action,
excluded hosts left out) exceeded asks `action_failed` and launches no further wave; else, but after the last,
`between: decision` asks the `wave` gate (a fresh health sample and the wave's per-host results as evidence), and
`between: pause DURATION` waits (journaled: WavePaused) and goes on, unless a probe is down: then the gate is asked.
A host runs again only when the operator asks for it (retry failed hosts, retry the action, a re-run after an
interruption of the hosts that had not finished); an excluded host never runs again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rollback_tui.plan.types import format_duration
from rollback_tui.plan.waves import plan_waves
from rollback_tui.procedure.choices import ENDS_PROCEDURE
from rollback_tui.procedure.states import HOST_FAILS, HostState, host_transition
from rollback_tui.record.events import DecisionMade, HostsExcluded, WavePaused, WavesPlanned

if TYPE_CHECKING:
    from rollback_tui.engine.runner import Runner
    from rollback_tui.plan.models import Step

H = HostState


class WaveNoGo(Exception):
    """A no-go at a wave gate: the waves stop; the runner asks the step's no-go follow-up."""

    def __init__(self, made: DecisionMade, occurrence: int, subject: str, why: str, failed_hosts: list[str]) -> None:
        super().__init__(why)
        self.made, self.occurrence, self.subject, self.why = made, occurrence, subject, why
        self.failed_hosts = failed_hosts


def wave_subject(index: int) -> str:
    """The `subject` of a wave's questions: the answers file keys them `step/action/wave-N`."""
    return f"wave-{index}"


class WavedAction:
    """One waved action of one step attempt; the runner's replay, questions and budgets do the rest."""

    def __init__(self, runner: Runner, step: Step, action: Any) -> None:
        self.r = runner
        self.step = step
        self.action = action
        self.step_id = step.id.value
        self.waves = action.waves
        self.group = runner._hosts(action, None)
        self.excluded = runner.excluded.setdefault((self.step_id, action.id), {})
        self.state: dict[str, HostState] = {}
        self.errors: dict[str, str] = {}
        self.layout: list[list[str]] = []
        self.budget = self.waves.budget(len(self.group))
        self.manual = False
        self.down: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.step_id}/{self.action.id}"

    def _move(self, host: str, new: HostState) -> None:
        self.state[host] = host_transition(self.state.get(host, H.pending), new, f"host {host} of {self.name}")

    def failing(self, hosts: list[str] | None = None) -> list[str]:
        return [host for host in (self.group if hosts is None else hosts) if self.state.get(host) in HOST_FAILS]

    # ------------------------------------------------------------ the waves

    async def run(self) -> str:
        """'ok' when every wave ran within the budget, 'manual' when the operator completed the action by hand."""
        while True:
            verdict = await self._once()
            if verdict != "restart":
                return "manual" if self.manual and verdict == "ok" else verdict

    async def _once(self) -> str:
        r = self.r
        r._check_action_budget(self.step, self.action, "another run")
        hosts = [host for host in self.group if host not in self.excluded]
        self.layout = plan_waves(hosts, self.waves)
        self.state = {host: H.pending for host in hosts}
        r._emit(WavesPlanned(step=self.step_id, action=self.action.id, waves=self.layout, failure_budget=self.budget))
        spend = True  # the action's first wave is its run; later waves are not loops
        for index, wave in enumerate(self.layout, 1):
            await self._run(index, [host for host in wave if host not in self.excluded], spend=spend)
            spend = False
            verdict = await self._after(index, wave)
            if verdict != "next":
                return verdict
        return "ok"

    def _judge(self, result: Any) -> str:
        """The error of a run after which the budget is exceeded (said on the run's ActionFinished)."""
        ran = {outcome.host: outcome.status for outcome in result.hosts}
        failing = [host for host in self.state if (ran[host] in HOST_FAILS if host in ran
                                                    else self.state[host] in HOST_FAILS)]
        if len(failing) > self.budget:
            return f"{self.exceeded(len(failing))}; {result.error}" if result.error else self.exceeded(len(failing))
        return ""

    def exceeded(self, count: int) -> str:
        return f"failure budget exceeded: {count} hosts failed, budget {self.budget}"

    async def _run(self, index: int, hosts: list[str], *, spend: bool) -> None:
        """Run these hosts of wave `index` (automatic retries of its failed hosts included) until each has a result
        or the operator settled an interruption."""
        r, action = self.r, self.action
        tries_left = action.retry.attempts
        todo = hosts
        while todo:
            for host in todo:
                self._move(host, H.running)
            finished = await r._attempt(self.step_id, action, todo, wave=index, spend=spend, judge=self._judge)
            spend = True  # anything run again in this wave is a retry
            for result in finished.hosts:
                self._move(result.host, H(result.status))
                self.errors[result.host] = result.error
            unknown = [host for host in todo if self.state[host] == H.running]
            if finished.status in ("interrupted", "cancelled") and unknown:
                todo = await self._interrupted(index, unknown, finished.error)
                tries_left = action.retry.attempts
                continue
            failed = self.failing(todo)
            tries_left -= 1
            if failed and tries_left > 0 and not r._over_budget(self.step, r._action_spent[(self.step_id, action.id)],
                                                                "an automatic retry", action.id):
                if not r.replaying:
                    await asyncio.sleep(action.retry.delay)
                todo = failed
                continue
            return

    async def _interrupted(self, index: int, unknown: list[str], error: str) -> list[str]:
        """A run stopped with hosts not done: run those again, read their state back, or mark them done by hand."""
        r = self.r
        done = [host for host in self.layout[index - 1] if self.state.get(host) == H.ok]
        detail = (f"wave {index} of {len(self.layout)} of {self.name} was running when the session stopped: "
                  f"{len(unknown)} host(s) have no recorded result ({', '.join(unknown[:10])}"
                  f"{', ...' if len(unknown) > 10 else ''}); {len(done)} host(s) of the wave finished ok and do not "
                  f"run again. {error}")
        made = await r._ask(
            "interrupted", step=self.step_id, action=self.action.id, subject=wave_subject(index),
            question=f"{self.name} wave {index} was running when the session stopped; {len(unknown)} host(s) have "
                     "no recorded result. Run those hosts again, only read back their state, or mark them done by "
                     "hand?",
            evidence=lambda: r._async_evidence(failed_hosts=unknown, detail=detail))
        if made.choice == "rerun":
            r._check_action_budget(self.step, self.action, "a re-run after the interruption")
            return unknown
        if made.choice in ENDS_PROCEDURE:
            r._stop_step(self.step_id, made)
        if made.choice == "mark_done":
            self.manual = True
            for host in unknown:
                self._move(host, H.ok)
            return []
        checks = await r._verify(self.step, only=self.action, only_hosts=unknown)
        proven = all(check.ok for check in checks) and any(check.readback == "target" for check in checks)
        for host in unknown:
            self._move(host, H.ok if proven else H.failed)
            if not proven:
                self.errors[host] = "the read-back after the interruption does not show the target state"
        return []

    async def _after(self, index: int, wave: list[str]) -> str:
        """The check after wave `index`: 'next' (launch the next wave), 'ok' (it was the last), 'manual' or
        'restart' (the operator chose to run the whole action again)."""
        r = self.r
        last = index == len(self.layout)
        while True:
            failing = self.failing()
            wave_failing = self.failing(wave)
            if len(failing) > self.budget:
                verdict = await self._budget_exceeded(index, failing)
                if verdict:
                    return verdict
                continue
            if last:
                return "ok"
            if self.waves.pause is not None and await self._pause(index, self.waves.pause):
                return "next"
            subject = wave_subject(index)
            made = await r._ask(
                "wave", step=self.step_id, action=self.action.id, subject=subject,
                question=f"{self.name}: wave {index} of {len(self.layout)} finished. Launch wave {index + 1}?",
                allow=["retry_failed", "exclude_failed"] if wave_failing else [],
                evidence=lambda: r._async_evidence(failed_hosts=wave_failing, detail=self.summary(index)))
            if made.choice == "go":
                return "next"
            if made.choice == "no_go":
                occurrence = r._asked[("wave", self.step_id, self.action.id, subject)]
                raise WaveNoGo(made, occurrence, subject, f"No-go after wave {index} of {len(self.layout)} of "
                               f"{self.name} ({made.by}{': ' + made.reason if made.reason else ''})", wave_failing)
            if made.choice in ENDS_PROCEDURE:
                r._stop_step(self.step_id, made)
            if made.choice == "exclude_failed":
                self._exclude(index, wave_failing, made)
                return "next"
            r._check_action_budget(self.step, self.action, "a retry of its failed hosts")
            await self._run(index, wave_failing, spend=True)

    async def _budget_exceeded(self, index: int, failing: list[str]) -> str:
        """Ask `action_failed`; '' when the waves go on (the failed hosts retried or excluded)."""
        r = self.r
        error = self.exceeded(len(failing))
        made = await r._ask(
            "action_failed", step=self.step_id, action=self.action.id, allow=["retry_failed", "exclude_failed"],
            question=f"{self.name} failed: {error} (no further wave is launched). Retry the action, retry the "
                     "failed hosts, exclude them, complete it by hand, abort, or halt?",
            evidence=lambda: r._async_evidence(failed_hosts=failing, detail=f"{error}\n{self.summary(index)}"))
        if made.choice == "manual":
            return "manual"
        if made.choice in ENDS_PROCEDURE:
            r._stop_step(self.step_id, made)
        if made.choice == "exclude_failed":
            self._exclude(index, failing, made)
            return ""
        what = "a retry of its failed hosts" if made.choice == "retry_failed" else "a retry of the action"
        r._check_action_budget(self.step, self.action, what)
        if made.choice == "retry":
            return "restart"
        await self._run(index, failing, spend=True)
        return ""

    def _exclude(self, index: int, hosts: list[str], made: DecisionMade) -> None:
        for host in hosts:
            self._move(host, H.excluded)
            self.excluded[host] = made.reason
        self.r._emit(HostsExcluded(step=self.step_id, action=self.action.id, wave=index, hosts=hosts,
                                   reason=made.reason, by=made.by, actor=made.by))

    async def _pause(self, index: int, seconds: float) -> bool:
        """`between: pause`: True when it waited (health not down), False when the wave gate must be asked."""
        r = self.r
        paused = WavePaused(step=self.step_id, action=self.action.id, wave=index, seconds=seconds)
        if r.replaying:  # the recorded run says which way it went
            recorded = r._replay.peek()
            if not (isinstance(recorded, WavePaused) and recorded.step == self.step_id
                    and recorded.action == self.action.id and recorded.wave == index):
                return False
            event = r._emit(paused)[0]
            if not r.replaying:  # the session stopped during the pause: wait what was left of it
                left = seconds - (datetime.now(timezone.utc) - event.ts).total_seconds()
                await asyncio.sleep(min(max(left, 0.0), seconds))
            return True
        await r._fresh_health()
        try:
            snapshot = r.monitor.snapshot() if r.monitor is not None else {}
        except Exception:  # a broken monitor shows no probe down; the budget still holds
            snapshot = {}
        self.down = sorted(probe for probe, item in snapshot.items() if item.get("state") == "down")
        if self.down:
            return False
        r._emit(paused)
        await asyncio.sleep(seconds)
        return True

    def summary(self, index: int) -> str:
        """'wave 2 of 5: 18 ok, 1 failed, 1 unreachable; failure budget 1 of 2 used' (and what is down)."""
        wave = self.layout[index - 1]
        counts = Counter(self.state[host].value for host in wave if host in self.state)
        order = [state.value for state in HostState]
        shown = ", ".join(f"{counts[state]} {state}" for state in order if counts[state])
        used = len(self.failing())
        text = f"wave {index} of {len(self.layout)}: {shown}; failure budget {used} of {self.budget} used"
        if self.excluded:
            text += f"; {len(self.excluded)} host(s) excluded"
        bad = [f"{host}: {self.errors.get(host) or self.state[host].value}" for host in self.failing(wave)]
        if bad:
            text += "\n" + "\n".join(bad[:20]) + (f"\nand {len(bad) - 20} more" if len(bad) > 20 else "")
        if self.down:
            text += (f"\nhealth is down ({', '.join(self.down)}): the pause of {format_duration(self.waves.pause or 0)}"
                     " does not go on by itself")
        return text
