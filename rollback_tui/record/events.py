"""The one vocabulary: every event the runner, monitor and operator produce (a discriminated union)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer

from rollback_tui.procedure.choices import CHOICE_IDS, KIND_IDS
from rollback_tui.procedure.exits import EXIT_STATES, SCOPE_OUTCOMES
from rollback_tui.procedure.states import ACTION_STATUSES, HOST_STATUSES

SCHEMA_VERSION = 1

# The words are the procedure's (rollback_tui/procedure): defined there once, checked here by pydantic.
ExitState = Literal[EXIT_STATES]  # type: ignore[valid-type]
ActionStatus = Literal[ACTION_STATUSES]  # type: ignore[valid-type]
HostStatus = Literal[HOST_STATUSES]  # type: ignore[valid-type]
HealthState = Literal["healthy", "degraded", "down", "unknown"]
ScopeOutcome = Literal[SCOPE_OUTCOMES]  # type: ignore[valid-type]
DecisionChoice = Literal[CHOICE_IDS]  # type: ignore[valid-type]
DecisionKind = Literal[KIND_IDS]  # type: ignore[valid-type]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class EventBase(BaseModel):
    """Fields every event carries. `seq` is gap-free within a journal, starting at 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    seq: int = 0
    ts: datetime = Field(default_factory=utcnow)
    actor: str = "system"
    """'system', or the operator's name for decisions and approvals."""


class OmitsDefaults(EventBase):
    """An event whose newer fields are written only when they differ from their default, so the events that
    existed before a field was added keep the bytes they had (journals and report hash chains stay the same)."""

    omit_when_default: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        fields = type(self).model_fields
        for name in self.omit_when_default:
            if name in data and data[name] == fields[name].default:
                del data[name]
        return data


# ---------------------------------------------------------------- session


class SessionStarted(EventBase):
    type: Literal["session_started"] = "session_started"
    operator: str
    plan_path: str
    plan_sha256: str
    plan_name: str
    host: str
    pid: int
    tool_version: str
    outline: dict[str, Any] = Field(default_factory=dict)
    """Metadata, steps (id, title, applicable, actions) and probes: enough for a viewer with no plan file."""


class SessionResumed(EventBase):
    type: Literal["session_resumed"] = "session_resumed"
    operator: str
    host: str
    pid: int
    last_seq: int


class SessionInterrupted(EventBase):
    type: Literal["session_interrupted"] = "session_interrupted"
    reason: str
    """e.g. 'SIGINT', 'SIGTERM', 'journal disk full'."""


class SessionFinished(EventBase):
    type: Literal["session_finished"] = "session_finished"
    exit_state: ExitState
    scopes: dict[str, ScopeOutcome] = Field(default_factory=dict)
    message: str = ""


class SessionReopened(EventBase):
    """A session that finished blocked goes on (seed §11: blocked waits for the issue's resolution).

    The procedure continues from the decision or check that blocked it: the events after `continue_after_seq` up
    to this one (the blocked ending) stay in the journal as history but are not replayed; the halting answer is
    asked again (or the halting input checked again)."""

    type: Literal["session_reopened"] = "session_reopened"
    reason: str
    previous_exit_state: ExitState
    reopened_by: str
    continue_after_seq: int
    """The seq of the last event kept by the replay: the halting decision (or the check) the procedure resumes at."""


# ---------------------------------------------------------------- before execution


class InputChecked(EventBase):
    type: Literal["input_checked"] = "input_checked"
    input_id: str
    category: Literal["artifact", "decision", "constraint"]
    ok: bool
    detail: str = ""
    remediation: str = ""
    needs_confirmation: bool = False
    """No automatic check exists: the operator confirms it (an `input` decision follows; ok stays False until then)."""


class PlanReviewed(EventBase):
    type: Literal["plan_reviewed"] = "plan_reviewed"
    approved: bool
    plan_markdown_sha256: str = ""


class ApprovalGiven(OmitsDefaults):
    omit_when_default = ("same_person_as",)
    type: Literal["approval_given"] = "approval_given"
    role: str
    role_title: str
    gate: Literal["execution", "validation"]
    name: str
    same_person_as: str = ""
    """The other role this person already approved for (names compared as people: rollback_tui/people.py), when
    the plan allows one person to hold two roles; '' otherwise."""



# ---------------------------------------------------------------- steps and actions


class StepStarted(EventBase):
    type: Literal["step_started"] = "step_started"
    step: str
    attempt: int = 1


class StepFinished(EventBase):
    type: Literal["step_finished"] = "step_finished"
    step: str
    status: Literal["done", "failed", "skipped", "aborted", "not_applicable", "manual"]


class ActionStarted(OmitsDefaults):
    omit_when_default = ("after_decision", "wave")
    type: Literal["action_started"] = "action_started"
    step: str
    action: str
    kind: str
    attempt: int = 1
    description: str = ""
    hosts: list[str] = Field(default_factory=list)
    """The hosts of this run: a wave's, those being retried (failed hosts only), else every host of the group."""
    after_decision: bool = False
    """A notice that runs after the step's go (the step is `announcing`, not running again)."""
    wave: int = 0
    """The wave this run belongs to (1-based); 0: the action has no waves."""



class ActionOutput(EventBase):
    type: Literal["action_output"] = "action_output"
    step: str
    action: str
    host: str = ""
    stream: Literal["stdout", "stderr", "info"] = "stdout"
    lines: list[str]
    """A batch of already-redacted lines."""


class HostTask(OmitsDefaults):
    """One task's result on one host of an `ansible` action (ansible-runner's per-host events)."""

    omit_when_default = ("wave", "detail")
    type: Literal["host_task"] = "host_task"
    step: str
    action: str
    wave: int = 0
    """1-based wave of the run that produced it; 0 when the action has no waves."""
    host: str
    """The host as the plan's host group (or inventory) names it."""
    task: str
    status: Literal["ok", "changed", "failed", "unreachable", "skipped"]
    detail: str = ""
    """Ansible's message for a failed or unreachable host (already redacted, bounded)."""


class HostResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    status: HostStatus
    exit_code: int | None = None
    duration: float = 0.0
    error: str = ""


class ActionFinished(OmitsDefaults):
    omit_when_default = ("wave",)
    type: Literal["action_finished"] = "action_finished"
    step: str
    action: str
    attempt: int = 1
    status: ActionStatus
    exit_code: int | None = None
    duration: float = 0.0
    error: str = ""
    hosts: list[HostResult] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    """Adapter facts for the report: backup paths, previous values, revisions."""
    wave: int = 0
    """The wave of this run (1-based); 0: the action has no waves."""


class WavesPlanned(EventBase):
    """The wave layout of a waved action, journaled once before its first wave (per step attempt)."""

    type: Literal["waves_planned"] = "waves_planned"
    step: str
    action: str
    waves: list[list[str]]
    """The hosts of each wave, in group order (excluded hosts left out)."""
    failure_budget: int
    """Failed, unreachable or timed-out hosts allowed over the whole action."""


class HostFinished(EventBase):
    """One host of a waved action's run finished: journaled at once, so a resume knows it is done."""

    type: Literal["host_finished"] = "host_finished"
    step: str
    action: str
    attempt: int
    wave: int
    result: HostResult


class HostsExcluded(EventBase):
    """The operator left failed hosts out of a waved action: never run again, not counted against the budget."""

    type: Literal["hosts_excluded"] = "hosts_excluded"
    step: str
    action: str
    wave: int
    hosts: list[str]
    reason: str
    by: str


class WavePaused(EventBase):
    """`between: pause DURATION`: the wait after a wave (health was not down and the budget held)."""

    type: Literal["wave_paused"] = "wave_paused"
    step: str
    action: str
    wave: int
    seconds: float


class Verification(OmitsDefaults):
    omit_when_default = ("readback",)
    type: Literal["verification"] = "verification"
    step: str
    action: str = ""
    """The action whose state was read back, or '' for a step check."""
    check: str
    category: str = "state"
    expected: str = ""
    observed: str = ""
    ok: bool
    readback: Literal["target", "safety", "none"] = "target"
    """What the check read (adapters/base.py CheckResult.readback); `none` is shown as unverified."""



# ---------------------------------------------------------------- health and time


class HealthChanged(EventBase):
    type: Literal["health_changed"] = "health_changed"
    probe: str
    old: HealthState
    new: HealthState
    reason: str = ""
    latency_ms: float | None = None


class HealthSample(EventBase):
    type: Literal["health_sample"] = "health_sample"
    samples: dict[str, list[Any]]
    """probe id -> [[t_offset_s, state, latency_ms|None(, value)], ...] since the last sample event; the value (a
    finite number) only for a probe that measures one (prometheus). Journals before it have 3-element samples."""


class HealthAlert(EventBase):
    type: Literal["health_alert"] = "health_alert"
    probe: str
    reason: str


class WindowWarning(EventBase):
    type: Literal["window_warning"] = "window_warning"
    percent: int
    elapsed: float
    window: float


# ---------------------------------------------------------------- decisions


class Evidence(BaseModel):
    """What the operator had on screen when a decision was asked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verifications: list[dict[str, Any]] = Field(default_factory=list)
    """[{check, expected, observed, ok, action, category}] of the step so far."""
    health: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """probe -> {state, reason, latency_ms}."""
    window_used: float = 0.0
    """Seconds since the session started (resumes included)."""
    window: float = 0.0
    failed_hosts: list[str] = Field(default_factory=list)
    detail: str = ""


class DecisionRequested(OmitsDefaults):
    omit_when_default = ("reopened",)
    type: Literal["decision_requested"] = "decision_requested"
    request_id: int
    kind: DecisionKind
    step: str = ""
    action: str = ""
    subject: str = ""
    """Input id, role id, ... depending on kind."""
    question: str
    options: list[DecisionChoice]
    needs_reason: list[DecisionChoice] = Field(default_factory=list)
    evidence: Evidence = Field(default_factory=Evidence)
    occurrence: int = 1
    """1 the first time this question (kind, step, action, subject) is asked in the session, 2 the next time, ...;
    a no_go follow-up carries the occurrence of the gate it follows (answers files index their lists by it)."""
    reopened: bool = False
    """Asked again because the session was reopened after it ended blocked on this question's earlier answer."""



class DecisionMade(EventBase):
    type: Literal["decision_made"] = "decision_made"
    request_id: int
    kind: DecisionKind
    step: str = ""
    action: str = ""
    subject: str = ""
    choice: DecisionChoice
    reason: str = ""
    by: str


class Signal(EventBase):
    type: Literal["signal"] = "signal"
    name: Literal["Rollback complete", "System restored", "Root cause analysis initiated"]


Event = Annotated[
    Union[
        SessionStarted,
        SessionResumed,
        SessionInterrupted,
        SessionFinished,
        SessionReopened,
        InputChecked,
        PlanReviewed,
        ApprovalGiven,
        StepStarted,
        StepFinished,
        ActionStarted,
        ActionOutput,
        HostTask,
        ActionFinished,
        WavesPlanned,
        HostFinished,
        HostsExcluded,
        WavePaused,
        Verification,
        HealthChanged,
        HealthSample,
        HealthAlert,
        WindowWarning,
        DecisionRequested,
        DecisionMade,
        Signal,
    ],
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(line: str | bytes) -> Event:
    """Parse one JSON line into its event class (raises pydantic.ValidationError)."""
    return EVENT_ADAPTER.validate_json(line)


def dump_event(event: EventBase) -> str:
    """Canonical one-line JSON of an event (no spaces, stable key order, UTC 'Z' times)."""
    return event.model_dump_json()
