"""The procedure runner: required inputs -> plan review -> execution approval -> steps 1 to 7 -> exit state.

Exit states (seed §11), decided here and nowhere else:
- completed: every applicable step finished done (or completed by hand) and the validation role approved.
- blocked: a required input halted, the plan review or an approval was rejected, a decision was `halt` (what
  `auto` answers at the first failed verification or action), the decision source failed, or the journal's disk
  is full (the session records that). Blocked is the one exit state that is not final (seed §11: "waiting for
  issue resolution"): `rollback-tui resume` reopens it (SessionReopened) and the procedure continues from what
  blocked it, everything before it staying memoised: the halting answer (a `halt` after a no-go, a failed action
  or a manual procedure; a rejected plan review or approval; an answer refused too often) is asked again, as a new
  request marked `reopened`; a halted required input is checked again (then, if still missing, asked again); a
  question the decision source failed to answer is asked again; a disk-full block never journaled its end and
  resumes like an interruption. The blocked ending stays in the journal and the report; the replay skips it.
- aborted: the operator aborted while no scope had been rolled back, or when every applicable scope was (an abort
  at validation): the per-scope record says which.
- partial: the operator aborted after some applicable scopes were rolled back and others were not.
Every outcome records, per scope (flags, code, configuration, database, infrastructure): rolled_back (its step
finished done), manual (done, with work completed by hand), not_applicable (outside the plan's scope, or its step is
not in the plan), not_rolled_back otherwise. A scope rolled back before a reassess stays rolled back.
Signals: completed emits "Rollback complete", "System restored" and "Root cause analysis initiated"; partial and
aborted emit "Root cause analysis initiated" (the seed asks to document why); blocked emits it only if step 7 was
reached. Each signal is emitted once per session: a reopened session does not repeat a signal of its blocked ending.

Resume is replay ("durable execution"): the procedure below is deterministic given the results of its external
calls (input checks, action runs, read-backs, decisions). A resumed runner gets the journal's procedure events as
`history` and runs the same code; every event it would emit is matched against the next recorded one (and not
written again), and every external call takes its recorded result. When the history runs out the runner is live:
new events continue at the journal's last seq + 1. An action started and never finished comes back as
`interrupted` and the operator chooses rerun, verify only or mark done. Batches of results (input checks, the
read-backs of a step) are journaled with one write, so a crash keeps all of a batch or none of it.

Every loop has a budget (plan `budget: {attempts: N}`, default 5): a retry after a no-go, a reassess, a retry of a
failed action (automatic retries included) or a re-run after an interruption that would run a step, or one of its
actions, more than N times ends the session blocked, naming the step and the setting. The check comes right after
the answer that asked for the loop, so a reopen asks that question again, and a reopen gives every step a fresh
budget (the counts restart at the reopen; before it they come from the replayed journal, so a resume after a crash
goes on counting). An interrupted action resumed with verify only is done only when a `target` read-back passed
(adapters/base.py CheckResult.readback); with none it comes back unverified, as a failed action.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollback_tui.adapters.base import ActionContext, CheckResult, run_safely, verify_safely
from rollback_tui.engine.clock import WindowClock
from rollback_tui.engine.decisions import DecisionSource
from rollback_tui.record.events import (
    ActionFinished,
    ActionStarted,
    ApprovalGiven,
    DecisionMade,
    DecisionRequested,
    Event,
    EventBase,
    Evidence,
    ExitState,
    HostFinished,
    HostResult,
    InputChecked,
    PlanReviewed,
    ScopeOutcome,
    SessionFinished,
    Signal,
    StepFinished,
    StepStarted,
    Verification,
)
from rollback_tui.engine.output import OutputBatcher
from rollback_tui.engine.replay import Record, Replay
from rollback_tui.engine.waves import WavedAction, WaveNoGo
from rollback_tui.plan.waves import group_of
from rollback_tui.errors import JournalError, RollbackError
from rollback_tui.people import person_key, same_person_as
from rollback_tui.plan.models import Plan, Step
from rollback_tui.plan.types import NAME_MAX, SCOPE_STEP, STEP_ORDER, Scope, StepId
from rollback_tui.procedure.choices import ENDS_PROCEDURE, GATES
from rollback_tui.procedure.exits import abort_state, signals_for
from rollback_tui.procedure.states import HOST_STATUSES
from rollback_tui.secrets import SecretStore

_MAX_REFUSALS = 3


class _Stop(Exception):
    """Ends the procedure: kind is 'blocked' or 'abort' (aborted or partial, decided by the scopes)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Reopened(Exception):
    """A question whose answer blocked the session, reached again after a reopen (see Runner._ask)."""


@dataclass
class Outcome:
    exit_state: ExitState
    scopes: dict[str, ScopeOutcome]
    message: str


def _default_check_inputs() -> Callable[[Plan], Awaitable[list[Any]]]:
    from rollback_tui.review.inputs import check_inputs

    return check_inputs


async def _default_render(plan: Plan, secrets: SecretStore, workdir: Path) -> str:
    from rollback_tui.review.render import render_plan

    return await render_plan(plan, secrets, workdir)


async def _default_step_check(check: Any, plan: Plan, secrets: SecretStore, monitor: Any) -> CheckResult:
    try:
        from rollback_tui.health.checks import run_step_check
    except ImportError:  # health checks not installed: the check fails visibly rather than silently passing
        return CheckResult(str(getattr(check, "id", None) or check.kind), "check runs", "health checks unavailable",
                           False, getattr(check, "category", "health"))
    return await run_step_check(check, plan=plan, secrets=secrets, monitor=monitor)


#: The plan setting that would give an action kind a read-back (for the message of an unverified action).
_READBACK_SETTING = {"sql": "verify_query and verify_equals", "shell": "verify_argv", "ssh": "verify_command",
                     "kubectl": "target image"}


def _after_interruption(action: Any, items: list[CheckResult]) -> list[CheckResult]:
    """The read-back of an action whose run never finished: a check that reads nothing back (`none`) is no
    evidence now (nothing showed the run succeeded), so it fails; without a `target` read-back one explicit
    *unverified* check says so."""
    out = [CheckResult(item.check, item.expected,
                       item.observed if item.observed.startswith("unverified") else f"unverified: {item.observed}",
                       False, item.category, "none") if item.readback == "none" else item for item in items]
    if not any(item.readback == "target" for item in out):
        setting = _READBACK_SETTING.get(action.kind)
        how = f"the plan gives it no {setting}" if setting else f"a {action.kind} action cannot be read back"
        out.append(CheckResult(f"read-back of {action.id} after the interruption", "the target state read back",
                               f"unverified: {how}; only a finished run would have shown it took effect", False,
                               "state", "none"))
    return out


def _host_result(outcome: Any) -> HostResult:
    status = outcome.status if outcome.status in HOST_STATUSES else "failed"
    return HostResult(host=outcome.host, status=status, exit_code=outcome.exit_code,
                      duration=round(outcome.duration, 3), error=outcome.error)


class Runner:
    """Runs one plan as the seed's procedure. The only owner of procedure state; talks only through events."""

    def __init__(self, plan: Plan, *, decisions: DecisionSource, operator: str, secrets: SecretStore,
                 record: Record, clock: WindowClock, history: Sequence[Event] = (), workdir: Path | None = None,
                 monitor: Any = None, summaries: dict[tuple[str, str], str] | None = None,
                 check_inputs: Callable[[Plan], Awaitable[list[Any]]] | None = None,
                 render_plan: Callable[[Plan, SecretStore, Path], Awaitable[str]] | None = None,
                 before_finish: Callable[[], Awaitable[None]] | None = None) -> None:
        self.plan = plan
        self.decisions = decisions
        self.operator = operator
        self.secrets = secrets
        self._record = record
        self.clock = clock
        self._replay = Replay(history, record)
        self._emit = self._replay.emit
        self._take = self._replay.take
        self._batch = self._replay.batch
        self.workdir = workdir or Path.cwd()
        self.monitor = monitor
        self.summaries = summaries or {}
        self._check_inputs = check_inputs
        self._render_plan = render_plan or _default_render
        self._before_finish = before_finish
        self.interrupt_reason = "cancelled"
        self._request_id = 0
        self._asked: Counter[tuple[str, str, str, str]] = Counter()
        self._step_attempts: Counter[str] = Counter()
        self._action_attempts: Counter[tuple[str, str]] = Counter()
        self._spent: Counter[str] = Counter()
        """Runs of each step since the session started or was last reopened (its budget counts these)."""
        self._action_spent: Counter[tuple[str, str]] = Counter()
        """Runs of each action since the session started or was last reopened."""
        self._results: dict[str, str] = {}
        self._approvers: dict[str, str] = {}
        self._reached_validation = False
        self._learned: list[str] = []
        """What each reassess said was learned: shown again at step 1."""
        self._last_request: DecisionRequested | None = None
        self._hosts_done: dict[tuple[str, str, int], dict[str, HostResult]] = {}
        """(step, action, attempt) -> the hosts of a waved run journaled done (HostFinished), for a resume mid-wave."""
        for event in history:
            if isinstance(event, HostFinished):
                self._hosts_done.setdefault((event.step, event.action, event.attempt), {})[event.result.host] = \
                    event.result
        self.excluded: dict[tuple[str, str], dict[str, str]] = {}
        """(step, action) -> host -> why it was excluded: never run again (engine/waves.py)."""

    # ------------------------------------------------------------ replay machinery

    @property
    def replaying(self) -> bool:
        return self._replay.replaying

    # ------------------------------------------------------------ the procedure

    async def run(self) -> Outcome:
        """Run (or, with history, resume) the procedure to its exit state."""
        try:
            await self._inputs()
            await self._plan_review()
            await self._approvals("execution")
            await self._steps()
            return await self._finish("completed", "Rollback complete: every applicable step is done and validated.")
        except _Stop as stop:
            return await self._finish(stop.kind, stop.message)

    def _scopes(self) -> dict[str, ScopeOutcome]:
        scopes: dict[str, ScopeOutcome] = {}
        for scope in Scope:
            step_id = SCOPE_STEP[scope].value
            if scope not in self.plan.rollback.scope or self.plan.step(SCOPE_STEP[scope]) is None:
                scopes[scope.value] = "not_applicable"
            else:
                result = self._results.get(step_id)
                scopes[scope.value] = ("rolled_back" if result == "done" else "manual" if result == "manual"
                                       else "not_rolled_back")
        return scopes

    async def _finish(self, kind: str, message: str) -> Outcome:
        if self._before_finish is not None:  # health monitor and window clock end before the session does
            await self._before_finish()
        scopes = self._scopes()
        if kind == "abort":
            rolled = sorted(scope for scope, outcome in scopes.items() if outcome in ("rolled_back", "manual"))
            pending = sorted(scope for scope, outcome in scopes.items() if outcome == "not_rolled_back")
            state: ExitState = abort_state(scopes).value  # type: ignore[assignment]
            if rolled:
                message = f"{message} (rolled back: {', '.join(rolled)}"
                message += f"; not rolled back: {', '.join(pending)})" if pending else ")"
        else:
            state = kind  # type: ignore[assignment]
        signals = signals_for(state, reached_validation=self._reached_validation,
                              already=set(self._replay.cut_signals))  # once per session, across a reopen
        self._emit(*[Signal(name=name) for name in signals],  # type: ignore[arg-type]
                   SessionFinished(exit_state=state, scopes=scopes, message=message))
        return Outcome(state, scopes, message)

    # ------------------------------------------------------------ decisions

    async def _fresh_health(self, limit: float = 5.0) -> None:
        """Sample every probe now, so the evidence shows health at the decision, not up to one interval old."""
        monitor = self.monitor
        sample_now = getattr(monitor, "sample_now", None)
        if sample_now is None:
            return
        try:
            async with asyncio.timeout(limit):  # a slow probe must not hold the question back
                await asyncio.gather(*(sample_now(probe) for probe in getattr(monitor, "probes", {})),
                                     return_exceptions=True)
        except TimeoutError:
            pass

    def _evidence(self, *, checks: Sequence[Any] = (), failed_hosts: Sequence[str] = (), detail: str = "") -> Evidence:
        health: dict[str, dict[str, Any]] = {}
        if self.monitor is not None:
            try:
                health = self.monitor.snapshot()
            except Exception:  # evidence is best effort; a broken monitor must not stop a decision
                health = {}
        return Evidence(
            verifications=[{"check": c.check, "expected": c.expected, "observed": c.observed, "ok": c.ok,
                            "action": c.action, "category": c.category}
                           | ({"readback": c.readback} if getattr(c, "readback", "target") != "target" else {})
                           for c in checks],
            health=health, window_used=round(self.clock.elapsed(), 3), window=self.clock.window,
            failed_hosts=list(failed_hosts), detail=detail)

    async def _ask(self, gate: str, *, question: str, allow: Sequence[str] = (), step: str = "", action: str = "",
                   subject: str = "", evidence: Callable[[], Awaitable[Evidence]] | None = None,
                   occurrence: int | None = None, check: Callable[[DecisionMade], str] | None = None,
                   reopenable: bool = True) -> DecisionMade:
        """Ask one of the procedure's gates (procedure/choices.py GATES: its kind, its options, those of them in
        `allow` that are conditional, and which need a reason) of the decision source, or take the recorded answer;
        refuse and ask again an answer that is not allowed. An answer that blocked the session is asked again when
        the session was reopened (with `reopenable` False, _Reopened is raised instead: the caller checks again what
        the question was about)."""
        table = GATES[gate]
        kind, options = table.kind, table.offer(allow)
        needs = table.reasons(options)
        refusal, note, refusals = "", "", 0
        while refusals < _MAX_REFUSALS:
            key = (kind, step, action, subject)
            self._asked[key] += 1
            self._request_id += 1
            if self.replaying:
                shown = Evidence()  # the recorded request (with what was shown then) is what counts
            else:
                if kind not in ("input", "plan_review"):
                    await self._fresh_health()
                shown = await evidence() if evidence is not None else self._evidence()
                if refusal or note:
                    why = note or f"Previous answer refused: {refusal}"
                    shown = shown.model_copy(update={"detail": f"{why}\n\n{shown.detail}"})
            request = self._emit(DecisionRequested(
                request_id=self._request_id, kind=kind, step=step, action=action, subject=subject,  # type: ignore[arg-type]
                question=question, options=options, needs_reason=needs, evidence=shown,  # type: ignore[arg-type]
                occurrence=occurrence or self._asked[key], reopened=bool(note)))[0]
            self._last_request = request
            made = await self._answer(request)
            reopen = self._replay.claim_reopen()
            if reopen is not None and not reopenable:
                raise _Reopened
            if reopen is not None:  # this answer blocked the session; it was reopened: ask again, afresh
                refusal, refusals = "", 0
                self._spent.clear()  # the reopen gives every step a fresh budget (Budget in plan/models.py)
                self._action_spent.clear()
                note = (f"The session was reopened by {reopen.reopened_by} ({reopen.reason}) after it ended "
                        f"{reopen.previous_exit_state} on the answer {made.choice!r}: this question is asked again.")
                continue
            refusal, note = self._refuse(request, made) or (check(made) if check else ""), ""
            if not refusal:
                return made
            refusals += 1
        raise _Stop("blocked", f"{kind} decision{f' for step {step}' if step else ''} refused "
                               f"{_MAX_REFUSALS} times: {refusal}")

    async def _answer(self, request: DecisionRequested) -> DecisionMade:
        recorded = self._take(DecisionMade, f"the answer to request {request.request_id}", request_id=request.request_id)
        if recorded is not None:
            return recorded
        try:
            decision = await self.decisions.decide(request)
        except RollbackError as exc:
            raise _Stop("blocked", f"no decision for {request.kind} {request.step or request.subject}: {exc}") from None
        made = DecisionMade(request_id=request.request_id, kind=request.kind, step=request.step, action=request.action,
                            subject=request.subject, choice=decision.choice, reason=(decision.reason or "").strip(),
                            by=(decision.by or self.operator).strip(), actor=self.operator)
        return self._emit(made)[0]

    @staticmethod
    def _refuse(request: DecisionRequested, made: DecisionMade) -> str:
        if made.choice not in request.options:
            return f"{made.choice!r} is not one of {', '.join(request.options)}"
        if made.choice in request.needs_reason and not made.reason:
            return f"{made.choice!r} needs a reason" + (" (a note of what was done by hand)"
                                                        if made.choice in ("manual", "mark_done") else "")
        return ""

    # ------------------------------------------------------------ before execution

    async def _inputs(self) -> None:
        async def compute() -> list[EventBase]:
            check = self._check_inputs or _default_check_inputs()
            results = await check(self.plan)
            return [InputChecked(input_id=r.input_id, category=r.category, ok=bool(r.ok), detail=r.detail,
                                 remediation=r.remediation, needs_confirmation=r.ok is None) for r in results]

        checked = await self._batch(lambda e: isinstance(e, InputChecked), compute)
        for item in checked:
            while True:
                try:
                    halted = await self._input(item)
                except _Reopened:  # its answer blocked the session
                    pass
                else:
                    if not halted:
                        break
                    if self._replay.claim_reopen() is None:
                        raise _Stop("blocked", halted)
                item = await self._recheck(item)  # reopened after the prerequisite was addressed: check it again

    async def _input(self, item: InputChecked) -> str:
        """Settle one checked input: '' when the procedure may go on, else why it halts."""
        if item.ok or (not item.needs_confirmation and item.remediation == "proceed"):
            return ""
        remedy = item.remediation not in ("halt", "proceed")
        if item.needs_confirmation:
            gate, allow = "input_confirm", ["remediate"] if remedy else []
            question = f"Required input {item.input_id}: {item.detail}. Confirm it?"
        elif remedy:
            gate, allow = "input_missing", []
            question = (f"Required input {item.input_id} is missing ({item.detail}). Take its remediation path "
                        f"({item.remediation}) or halt?")
        else:
            return (f"required input {item.input_id} is missing: {item.detail}; address the prerequisite, then "
                    "`rollback-tui resume JOURNAL` checks it again")
        made = await self._ask(gate, allow=allow, subject=item.input_id, question=question, reopenable=False,
                               evidence=lambda: self._async_evidence(detail=item.detail))
        if made.choice == "approve":
            self._emit(InputChecked(input_id=item.input_id, category=item.category, ok=True,
                                    detail=f"confirmed by {made.by}" + (f": {made.reason}" if made.reason else ""),
                                    remediation=item.remediation, actor=made.by))
        elif made.choice == "halt":
            return f"required input {item.input_id}: halted by {made.by}: {made.reason}"
        return ""

    async def _recheck(self, item: InputChecked) -> InputChecked:
        """Check one input again (recorded: a batch of one)."""
        async def compute() -> list[EventBase]:
            check = self._check_inputs or _default_check_inputs()
            found = [r for r in await check(self.plan) if r.input_id == item.input_id]
            if not found:  # a plan given explicitly on resume may have dropped it
                return [InputChecked(input_id=item.input_id, category=item.category, ok=True,
                                     detail="no longer a required input of the plan", remediation="proceed")]
            r = found[0]
            return [InputChecked(input_id=r.input_id, category=r.category, ok=bool(r.ok), detail=r.detail,
                                 remediation=r.remediation, needs_confirmation=r.ok is None)]

        checked = await self._batch(lambda e: isinstance(e, InputChecked) and e.input_id == item.input_id, compute)
        if not checked:
            raise self._replay.mismatch(self._replay.peek(), f"a new check of input {item.input_id}")
        return checked[0]

    async def _async_evidence(self, **kwargs: Any) -> Evidence:
        return self._evidence(**kwargs)

    async def _plan_review(self) -> None:
        async def evidence() -> Evidence:
            try:
                markdown = await self._render_plan(self.plan, self.secrets, self.workdir)
            except Exception as exc:  # a plan that cannot be shown cannot be reviewed: say so on screen
                markdown = f"The plan could not be rendered: {type(exc).__name__}: {exc}"
            return self._evidence(detail=markdown)

        made = await self._ask("plan_review", question="Approve the Rollback Plan? Nothing runs before it is approved.",
                               evidence=evidence)
        request = self._last_request
        approved = made.choice == "approve"
        sha = hashlib.sha256(request.evidence.detail.encode()).hexdigest() if request else ""
        self._emit(PlanReviewed(approved=approved, plan_markdown_sha256=sha, actor=made.by))
        if not approved:
            raise _Stop("blocked", f"the plan review was rejected by {made.by}: {made.reason}")

    async def _approvals(self, gate: str, step: str = "") -> DecisionMade | None:
        """Ask every role that approves this gate; returns the rejection, or None when all approved."""
        for role in self.plan.approvals.roles:
            if gate not in role.approves:
                continue

            def same_person(made: DecisionMade, role_id: str = role.id) -> str:
                if made.choice != "approve":
                    return ""
                if not person_key(made.by):
                    return "an approval needs the approver's name"
                if len(made.by) > NAME_MAX:
                    return f"an approver's name has at most {NAME_MAX} characters"
                other = same_person_as(made.by, self._approvers, role_id)
                if other and not self.plan.approvals.allow_same_person:
                    name = self._approvers[other]
                    who = made.by if name == made.by else f"{made.by!r} is the same person as {name!r}, who"
                    return f"{who} already approved as {other}; the plan requires a different person for {role_id}"
                return ""

            made = await self._ask("approval", step=step, subject=role.id,
                                   question=f"{role.title}: approve the rollback {gate}?",
                                   check=same_person)
            if made.choice == "reject":
                if gate == "execution":
                    raise _Stop("blocked", f"{role.title} rejected the rollback execution: {made.reason}")
                return made
            also = same_person_as(made.by, self._approvers, role.id)  # allowed by the plan: shown, not hidden
            self._approvers[role.id] = made.by
            self._emit(ApprovalGiven(role=role.id, role_title=role.title, gate=gate, name=made.by,  # type: ignore[arg-type]
                                     same_person_as=also, actor=self.operator))
        return None

    # ------------------------------------------------------------ steps

    async def _steps(self) -> None:
        index = 0
        not_applicable: set[str] = set()
        while index < len(STEP_ORDER):
            step_id = STEP_ORDER[index]
            step = self.plan.step(step_id)
            if step is None:
                if step_id.value not in not_applicable:
                    not_applicable.add(step_id.value)
                    self._emit(StepFinished(step=step_id.value, status="not_applicable"))
                    self._results[step_id.value] = "not_applicable"
                index += 1
                continue
            verdict = await self._run_step(step)
            if verdict == "next":
                index += 1
            elif verdict == "reassess":
                index = 0
        if self.plan.step(StepId.validate) is None:  # the validation role still signs the end of the rollback
            self._reached_validation = True
            rejected = await self._approvals("validation")
            if rejected is not None:
                raise _Stop("blocked", f"{rejected.subject} did not approve the validation: {rejected.reason}")

    def _over_budget(self, step: Step, used: int, what: str, action: str = "") -> str:
        """'' while `used` runs leave room for one more under the step's budget, else the blocked message."""
        budget, setting = self.plan.budget_of(step)
        if used < budget:
            return ""
        where = f"step {step.id.value}" + (f", action {action}" if action else "")
        return (f"{where}: {used} of {budget} attempts used ({setting}); {what} would go past the budget. "
                "Fix the cause, then `rollback-tui resume` this session's journal (a reopen gives every step a fresh "
                "budget), or raise the budget in the plan")

    def _check_budget(self, step: Step, what: str, asked_at: str = "") -> None:
        """Stop as blocked when running this step (and so each of its actions) once more would go past its budget."""
        message = self._over_budget(step, self._spent[step.id.value], what)
        for action in step.actions:
            if not message and not action.manual:
                message = self._over_budget(step, self._action_spent[(step.id.value, action.id)], what, action.id)
        if message:
            self._budget_stop(asked_at or step.id.value, message)

    def _check_action_budget(self, step: Step, action: Any, what: str) -> None:
        message = self._over_budget(step, self._action_spent[(step.id.value, action.id)], what, action.id)
        if message:
            self._budget_stop(step.id.value, message)

    def _budget_stop(self, step_id: str, message: str) -> None:
        """The step whose answer asked for one loop too many stops failed; the session ends blocked."""
        self._emit(StepFinished(step=step_id, status="failed"))
        self._results[step_id] = "failed"
        raise _Stop("blocked", message)

    async def _run_step(self, step: Step) -> str:
        """One attempt at a step: its actions, its read-backs, its go/no-go. Returns next, retry or reassess."""
        step_id = step.id.value
        self._check_budget(step, "another run of the step")  # the retry and reassess answers checked it already
        self._spent[step_id] += 1
        self._step_attempts[step_id] += 1
        self._emit(StepStarted(step=step_id, attempt=self._step_attempts[step_id]))
        if step.id == StepId.validate:
            self._reached_validation = True
        manual = False
        for action in step.actions:
            if not action.after_decision:  # a notice of the decision waits for it (_gate)
                try:
                    manual = await self._action(step, action) == "manual" or manual
                except WaveNoGo as stop:  # a no-go at a wave gate stops the waves: then what a step's no-go asks
                    return await self._follow_up(step, stop.made, stop.occurrence, [], stop.why, action=action.id,
                                                 subject=stop.subject, failed_hosts=stop.failed_hosts)
        checks = await self._verify(step)
        return await self._gate(step, checks, manual)

    def _stop_step(self, step_id: str, made: DecisionMade) -> None:
        aborting = made.choice == "abort"
        status = "aborted" if aborting else "failed"
        self._emit(StepFinished(step=step_id, status=status))  # type: ignore[arg-type]
        self._results[step_id] = status
        why = f"{'aborted' if aborting else 'stopped'} at step {step_id} by {made.by}: {made.reason}".rstrip(": ")
        raise _Stop("abort" if aborting else "blocked", why)

    async def _verify(self, step: Step, only: Any = None, only_hosts: list[str] | None = None) -> list[Any]:
        """The read-backs of a step (its actions' and its checks), or of one interrupted action (`only`): then only
        a `target` read-back is evidence, and an action with none gets an explicit failed *unverified* check."""
        step_id = step.id.value
        actions = [only] if only is not None else [action for action in step.actions if not action.after_decision]
        checks = [] if only is not None else list(step.verify)

        async def compute() -> list[EventBase]:
            jobs = [verify_safely(action, self._context(step_id, action.id,
                                                        only_hosts=only_hosts or self._not_excluded(step_id, action)))
                    for action in actions]
            jobs += [_default_step_check(check, self.plan, self.secrets, self.monitor) for check in checks]
            results = await asyncio.gather(*jobs)
            events: list[EventBase] = []
            for index, result in enumerate(results):
                owner = actions[index].id if index < len(actions) else ""
                items = result if isinstance(result, list) else [result]
                if only is not None:
                    items = _after_interruption(only, items)
                for item in items:
                    events.append(Verification(step=step_id, action=owner, check=item.check, category=item.category,
                                               expected=item.expected, observed=item.observed, ok=item.ok,
                                               readback=getattr(item, "readback", "target")))
            return events

        owner_ids = {action.id for action in actions} | ({""} if only is None else set())
        return await self._batch(lambda e: isinstance(e, Verification) and e.step == step_id
                                 and e.action in owner_ids, compute)

    async def _gate(self, step: Step, checks: list[Any], manual: bool) -> str:
        step_id = step.id.value
        failed = [check for check in checks if not check.ok]
        learned = "\n".join(f"- {note}" for note in self._learned)
        detail = f"Learned before this reassessment:\n{learned}" if learned and step.id == StepId.assess else ""
        made = await self._ask("step_failed_check" if failed else "step", step=step_id, question=step.display_question,
                               evidence=lambda: self._async_evidence(checks=checks, detail=detail))
        occurrence = self._asked[("gate", step_id, "", "")]
        if made.choice in ENDS_PROCEDURE:
            self._stop_step(step_id, made)
        follow_reason = ""
        if made.choice in ("go", "override"):
            rejected = await self._approvals("validation", step_id) if step.id == StepId.validate else None
            if rejected is None:
                for action in step.actions:  # the decision is taken: now its notices may announce it
                    if action.after_decision:
                        manual = await self._action(step, action) == "manual" or manual
                status = "manual" if manual else "done"
                self._emit(StepFinished(step=step_id, status=status))  # type: ignore[arg-type]
                self._results[step_id] = status
                return "next"
            follow_reason = f"{rejected.subject} did not approve the validation: {rejected.reason}"
        return await self._follow_up(step, made, occurrence, checks, follow_reason)

    async def _follow_up(self, step: Step, made: DecisionMade, occurrence: int, checks: list[Any],
                         follow_reason: str = "", *, action: str = "", subject: str = "",
                         failed_hosts: Sequence[str] = ()) -> str:
        """After a no-go (of the step, or of a wave of one of its actions): retry the step, reassess, abort or halt."""
        step_id = step.id.value
        follow = await self._ask(
            "no_go", step=step_id, action=action, subject=subject, occurrence=occurrence,
            question=(follow_reason or f"No-go at step {step_id}") + ": retry the step, reassess from step 1, "
                     "abort the rollback, or halt (blocked, waiting for the issue to be resolved)?",
            evidence=lambda: self._async_evidence(checks=checks, failed_hosts=failed_hosts,
                                                  detail=follow_reason or made.reason))
        if follow.choice == "retry":
            self._check_budget(step, "a retry after the no-go")
            return "retry"
        if follow.choice == "reassess":
            again = self.plan.applicable_steps[:self.plan.applicable_steps.index(step.id) + 1]
            for earlier in [step.id, *again[:-1]]:  # the step that asks first, then those it runs again
                other = self.plan.step(earlier)
                assert other is not None
                self._check_budget(other, f"a reassess from step {step_id} (it runs steps assess to {step_id} again)",
                                   asked_at=step_id)
            self._learned.append(f"step {step_id}: {follow.reason}")
            return "reassess"
        self._stop_step(step_id, follow)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ actions

    def _context(self, step_id: str, action_id: str, *, output: Any = None, only_hosts: list[str] | None = None
                 ) -> ActionContext:
        ctx = ActionContext(plan=self.plan, step=step_id, action_id=action_id, secrets=self.secrets,
                            workdir=self.workdir, only_hosts=only_hosts)
        if output is not None:
            ctx.output = output
        return ctx

    def _not_excluded(self, step_id: str, action: Any) -> list[str] | None:
        """A waved action's hosts less those the operator excluded (None: no host was excluded)."""
        excluded = self.excluded.get((step_id, action.id))
        if not excluded:
            return None
        return [host for host in self._hosts(action, None) if host not in excluded]

    def _hosts(self, action: Any, only_hosts: list[str] | None) -> list[str]:
        if only_hosts:
            return list(only_hosts)
        group = self.plan.host_groups.get(group_of(action) or "")
        return list(group.hosts) if group is not None else []

    async def _action(self, step: Step, action: Any) -> str:
        """Run an action to success ('ok') or manual completion ('manual'); abort and halt end the procedure."""
        step_id = step.id.value
        if action.manual:
            return await self._manual_action(step, action)
        if getattr(action, "waves", None) is not None:
            return await WavedAction(self, step, action).run()
        only_hosts: list[str] | None = None
        tries_left = action.retry.attempts
        self._check_action_budget(step, action, "another run")  # the answer that asked for this run checked it
        while True:
            finished = await self._attempt(step_id, action, only_hosts)
            if finished.status == "ok":
                return "ok"
            checks: list[Any] = []
            if finished.status in ("interrupted", "cancelled"):
                made = await self._ask(
                    "interrupted", step=step_id, action=action.id,
                    question=f"{step_id}/{action.id} was running when the session stopped; its outcome is unknown. "
                             "Run it again, only read back the state, or mark it done by hand?",
                    evidence=lambda: self._async_evidence(detail=finished.error))
                if made.choice == "rerun":
                    self._check_action_budget(step, action, "a re-run after the interruption")
                    only_hosts, tries_left = None, action.retry.attempts
                    continue
                if made.choice == "mark_done":
                    return "manual"
                if made.choice in ENDS_PROCEDURE:
                    self._stop_step(step_id, made)
                checks = await self._verify(step, only=action)
                if all(check.ok for check in checks) and any(check.readback == "target" for check in checks):
                    return "ok"
                error = "the read-back after the interruption does not show the target state"
                if not any(check.readback == "target" for check in checks):
                    error = (f"unverified: {step_id}/{action.id} has no read-back of its target state, so nothing "
                             "shows whether it took effect before the interruption; run it again, or complete it "
                             "by hand with a note")
            else:
                tries_left -= 1
                spent = self._over_budget(step, self._action_spent[(step_id, action.id)], "an automatic retry",
                                          action.id)
                if tries_left > 0 and not spent:
                    if not self.replaying:
                        await asyncio.sleep(action.retry.delay)
                    continue
                error = finished.error or f"{finished.status}" + (f" (exit {finished.exit_code})"
                                                                  if finished.exit_code is not None else "")
                if spent:  # shown with the question: a retry now would end the session blocked
                    error += f" ({spent.split(';')[0]}: a retry now ends the session blocked)"
            failed_hosts = [host.host for host in finished.hosts if host.status != "ok"]
            made = await self._ask(
                "action_failed", step=step_id, action=action.id,
                question=f"{step_id}/{action.id} failed: {error}. Retry it, complete it by hand, abort, or halt?",
                allow=["retry_failed"] if failed_hosts else [],
                evidence=lambda: self._async_evidence(checks=checks, failed_hosts=failed_hosts, detail=error))
            if made.choice == "manual":
                return "manual"
            if made.choice in ENDS_PROCEDURE:
                self._stop_step(step_id, made)
            self._check_action_budget(step, action, "a retry of its failed hosts" if made.choice == "retry_failed"
                                      else "a retry of the action")
            only_hosts = failed_hosts if made.choice == "retry_failed" else None
            tries_left = action.retry.attempts

    async def _attempt(self, step_id: str, action: Any, only_hosts: list[str] | None, *, wave: int = 0,
                       spend: bool = True, judge: Callable[[Any], str] | None = None) -> ActionFinished:
        """One run of an action (of a wave of it, with `wave`); `spend` False for a wave after the action's first
        (a wave is not a loop: only retries and re-runs count against the budget); `judge(result)` may give the
        run's error (a waved action's failure budget exceeded)."""
        key = (step_id, action.id)
        if spend:
            self._action_spent[key] += 1
        self._action_attempts[key] += 1
        attempt = self._action_attempts[key]
        was_replaying = self.replaying
        self._emit(ActionStarted(step=step_id, action=action.id, kind=action.kind, attempt=attempt,
                                 after_decision=action.after_decision,
                                 description=self.summaries.get(key, action.description),
                                 hosts=self._hosts(action, only_hosts), wave=wave))
        done = self._hosts_done.setdefault((step_id, action.id, attempt), {})
        if was_replaying:
            recorded = self._take(ActionFinished, f"the end of {step_id}/{action.id} attempt {attempt}",
                                  step=step_id, action=action.id, attempt=attempt)
            if recorded is not None:
                return recorded
            # the history ends inside this action: the process died while it ran (hosts journaled done stay done)
            return self._emit(ActionFinished(step=step_id, action=action.id, attempt=attempt, status="interrupted",
                                             error="the session stopped while this action was running",
                                             hosts=list(done.values()), wave=wave))[0]
        batcher = OutputBatcher(self._record, step_id, action.id, safe_cut=self.secrets.redactor.safe_cut)
        ctx = self._context(step_id, action.id, output=batcher.add, only_hosts=only_hosts)
        if wave:
            def host_done(outcome: Any) -> None:
                result = _host_result(outcome)
                done[result.host] = result
                self._record([HostFinished(step=step_id, action=action.id, attempt=attempt, wave=wave,
                                           result=result)])
            ctx.host_done = host_done
        ctx.wave = wave
        ctx.event = batcher.event
        try:
            result = await run_safely(action, ctx)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # an adapter swallowed the cancellation: the session still stops
        except asyncio.CancelledError:
            try:
                batcher.close()
                self._emit(ActionFinished(step=step_id, action=action.id, attempt=attempt, status="interrupted",
                                          error=f"cancelled ({self.interrupt_reason}); its processes were stopped",
                                          hosts=list(done.values()), wave=wave))
            except JournalError:
                pass  # the journal is what failed; what it holds stays resumable
            raise
        batcher.close()
        status = result.status if result.status in ("ok", "failed", "timeout", "cancelled") else "failed"
        error = (judge(result) if judge is not None else "") or result.error
        return self._emit(ActionFinished(
            step=step_id, action=action.id, attempt=attempt, status=status, exit_code=result.exit_code,  # type: ignore[arg-type]
            duration=round(result.duration, 3), error=error, details=result.details,
            hosts=[_host_result(h) for h in result.hosts], wave=wave))[0]

    async def _manual_action(self, step: Step, action: Any) -> str:
        step_id = step.id.value
        key = (step_id, action.id)
        self._action_attempts[key] += 1
        attempt = self._action_attempts[key]
        summary = self.summaries.get(key, action.description)
        self._emit(ActionStarted(step=step_id, action=action.id, kind=action.kind, attempt=attempt,
                                 after_decision=action.after_decision,
                                 description=summary, hosts=self._hosts(action, None)))
        made = await self._ask(
            "manual_procedure", step=step_id, action=action.id,
            question=f"Manual procedure {step_id}/{action.id}: {action.description or summary}. "
                     "Confirm it was done by hand (with a note), abort, or halt?")
        done = made.choice == "manual"
        self._emit(ActionFinished(step=step_id, action=action.id, attempt=attempt,
                                  status="manual" if done else "skipped",
                                  error="" if done else f"not done: {made.choice}",
                                  details={"note": made.reason, "by": made.by} if done else {}))
        if not done:
            self._stop_step(step_id, made)
        return "manual"
