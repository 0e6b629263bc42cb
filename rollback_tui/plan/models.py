"""The plan: pydantic models of everything the seed procedure needs, parsed once at the edge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rollback_tui.plan.actions import Action
from rollback_tui.plan.probes import Probe, StepCheck
from rollback_tui.plan.types import (
    DEFAULT_ORDER,
    STEP_ORDER,
    STEP_QUESTIONS,
    STEP_TITLES,
    ITEMS_MAX,
    LINE_MAX,
    NAME_MAX,
    TEXT_MAX,
    Duration,
    Scope,
    StepId,
    Strict,
)

Remediation = Literal["halt", "use_backup", "emergency_plan", "manual_procedure", "proceed"]
"""Seed §3 remediation paths: halt; use available backups or previous version; create an emergency
rollback plan; use manual rollback procedures; `proceed` (the input is informational)."""

Gate = Literal["execution", "validation"]


class Metadata(Strict):
    """Who and what the rollback is about."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    """Short name of the rollback (used in file names and the header)."""
    incident: str = Field("", max_length=NAME_MAX)
    """Incident id, e.g. INC-4211."""
    service: str = Field("", max_length=NAME_MAX)
    """The service being rolled back."""
    environment: str = Field("", max_length=NAME_MAX)
    """Environment, e.g. production."""
    owner: str = Field("", max_length=NAME_MAX)
    """Owning team (seed: DevOps Team / Feature Development Team)."""
    ticket: str = Field("", max_length=LINE_MAX)
    """Ticket URL (Jira or similar)."""
    trigger: str = Field("", max_length=TEXT_MAX)
    """Why the rollback was invoked (seed §2): failed deployment, failed validation, alert, ..."""


class Role(Strict):
    """An approving role (seed §7 'Who/what can approve completion')."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    """Role id, e.g. devops-lead."""
    title: str = Field(max_length=NAME_MAX)
    """Role title shown on screen, e.g. DevOps Lead."""
    approves: list[Gate] = Field(min_length=1)
    """Which gates this role approves: execution, validation."""


def _default_roles() -> list[Role]:
    return [
        Role(id="devops-lead", title="DevOps Lead", approves=["execution"]),
        Role(id="tech-lead", title="Technical Lead", approves=["validation"]),
    ]


class Approvals(Strict):
    """Who must sign off, and whether one person may hold two roles."""

    roles: list[Role] = Field(default_factory=_default_roles, min_length=1, max_length=20)
    """Roles; by default the seed's DevOps Lead (execution) and Technical Lead (validation)."""
    allow_same_person: bool = False
    """Allow one person to approve for two roles. Names are compared as people (case, width, invisible characters
    and look-alike letters do not make a different person); an allowed repeat is shown on screen and in the report."""


class InputCheck(Strict):
    """How a required input is checked: exactly one of `path`, `url` or `argv`."""

    path: str | None = None
    """The input exists when this file or directory exists."""
    url: str | None = None
    """The input exists when this URL answers with a status below 400."""
    argv: list[str] | None = None
    """The input exists when this command exits 0."""

    @model_validator(mode="after")
    def _exactly_one(self) -> InputCheck:
        given = [name for name in ("path", "url", "argv") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("a check has exactly one of 'path', 'url' or 'argv'")
        return self


class Artifact(Strict):
    """A required artifact (seed §3 'Artifacts')."""

    id: str = Field(min_length=1, max_length=NAME_MAX)
    """Name, e.g. deployment-snapshot."""
    description: str = Field("", max_length=TEXT_MAX)
    """What it is and where it comes from."""
    check: InputCheck | None = None
    """How its presence is checked: `path`, `url` or `argv`. Without a check the operator confirms it."""
    remediation: Remediation = "halt"
    """What happens when it is missing."""
    remediation_note: str = ""
    """Where the backup, previous version or manual procedure is."""


class DecisionInput(Strict):
    """A decision that must already be made (seed §3 'Decisions already made')."""

    id: str = Field(min_length=1, max_length=NAME_MAX)
    """Name, e.g. rollback-approved."""
    description: str = Field(max_length=TEXT_MAX)
    """The decision, e.g. 'Rollback decision made and approved'."""
    made_by: str = ""
    """Who made it (name or role)."""
    remediation: Remediation = "halt"
    """What happens when the operator cannot confirm it."""


class Constraints(Strict):
    """Seed §3 'Constraints'."""

    window: Duration = 3600.0
    """The rollback window; warnings at 50 %, 80 % and 100 %."""
    system_state: str = ""
    """What must be true of the system for a rollback (the operator confirms it)."""
    team: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    """The rollback team (names or rotations) that must be available."""


class Inputs(Strict):
    """Required inputs (seed §3)."""

    artifacts: list[Artifact] = Field(default_factory=list, max_length=ITEMS_MAX)
    """Deployment snapshot, rollback plan, documentation, flag configuration, scripts, infrastructure procedures."""
    decisions: list[DecisionInput] = Field(default_factory=list, max_length=ITEMS_MAX)
    """Rollback approved, scope determined."""
    constraints: Constraints = Field(default_factory=Constraints)
    """Window, system state, team."""


class RollbackPlanSpec(Strict):
    """Seed §4: the plan that must be reviewed before execution."""

    scope: list[Scope] = Field(min_length=1)
    """What to roll back."""
    approach: Literal["automated", "manual", "partial"] = "automated"
    """How to roll back."""
    order: list[Scope] = Field(default_factory=lambda: list(DEFAULT_ORDER))
    """Order of rollback (the seed's: flags, code, configuration, database, infrastructure)."""
    risks: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    """Risks and unknowns."""
    validation_points: list[str] = Field(default_factory=list, max_length=ITEMS_MAX)
    """When and how rollback success is validated."""


class SshOptions(Strict):
    """How to reach a host group."""

    user: str = "root"
    """Remote user."""
    port: int = Field(22, ge=1, le=65535)
    """Default port (a host may say host:port)."""
    key_file: str | None = None
    """Private key; default: ssh-agent, then ~/.ssh/id_ed25519 and friends."""
    known_hosts: str | None = None
    """known_hosts file; default ~/.ssh/known_hosts."""
    strict_host_key_checking: bool = True
    """Turning this off is listed as a risk in the plan review."""
    jump_host: str | None = None
    """Optional jump host, `user@host:port`."""
    connect_timeout: Duration = 10.0
    """Per-host connection timeout."""


class HostGroup(SshOptions):
    """Hosts reached over SSH."""

    hosts: list[str] = Field(min_length=1, max_length=10_000)
    """Host names or addresses, optionally host:port."""
    concurrency: int = Field(20, ge=1, le=500)
    """Hosts contacted at once."""


class SecretSpec(Strict):
    """Where a secret is read from: exactly one of `env` or `file` (never the value itself)."""

    env: str | None = None
    """Environment variable name."""
    file: str | None = None
    """File path (trailing newline stripped)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSpec:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret has exactly one of 'env: VARIABLE' or 'file: PATH'")
        return self


class Budget(Strict):
    """How often a step's work may run before the session stops as blocked: no loop without end.

    `attempts` bounds, per step, the runs of the step (its first run, a retry after a no-go, a run again after a
    reassess from this step or a later one) and the runs of each of its actions (the first, automatic retries
    (`retry.attempts`), retries after a failure, re-runs after an interruption). They are counted from the journal,
    so a resume after a crash goes on counting. When a loop would go past the budget the session ends blocked,
    naming the step and this setting. Reopening that blocked session (`rollback-tui resume`, once the cause is
    fixed) gives every step a fresh budget: the earlier attempts stay in the journal and the report."""

    attempts: int = Field(5, ge=1, le=100)
    """Runs allowed per step and per action of the step (1 to 100; default 5)."""


class Step(Strict):
    """One of the seven steps."""

    id: StepId
    """assess, flags, code, configuration, database, infrastructure or validate."""
    title: str | None = None
    """Defaults to the seed's title."""
    question: str | None = None
    """The go/no-go question; defaults to the seed's."""
    notes: str = Field("", max_length=TEXT_MAX)
    """Guidance shown to the operator."""
    actions: list[Action] = Field(default_factory=list, max_length=ITEMS_MAX)
    """Actions, run in order."""
    verify: list[StepCheck] = Field(default_factory=list, max_length=ITEMS_MAX)
    """Checks run after the actions; their results are the evidence for go/no-go."""
    budget: Budget | None = None
    """This step's budget of attempts (retries, reassess, no-go + retry); default: the plan's `budget`."""

    @property
    def display_title(self) -> str:
        return self.title or STEP_TITLES[self.id]

    @property
    def display_question(self) -> str:
        return self.question or STEP_QUESTIONS[self.id]

    @model_validator(mode="after")
    def _unique_action_ids(self) -> Step:
        seen: set[str] = set()
        for action in self.actions:
            if action.id in seen:
                raise ValueError(f"two actions are named {action.id!r} in step {self.id.value}")
            seen.add(action.id)
        return self


class Plan(Strict):
    """A rollback plan file."""

    version: Literal[1] = 1
    """Format version."""
    metadata: Metadata
    """Name, incident, service, environment, owner, ticket."""
    approvals: Approvals = Field(default_factory=Approvals)
    """Roles that sign off."""
    inputs: Inputs = Field(default_factory=Inputs)
    """Required inputs (seed §3)."""
    rollback: RollbackPlanSpec
    """Scope, approach, order, risks, validation points (seed §4)."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Values substituted for `${name}` in strings."""
    secrets: dict[str, SecretSpec] = Field(default_factory=dict)
    """Secrets, referenced as `${secrets.NAME}`; read from `env` or `file`, never inline."""
    host_groups: dict[str, HostGroup] = Field(default_factory=dict)
    """SSH host groups."""
    health: list[Probe] = Field(default_factory=list, max_length=ITEMS_MAX)
    """Probes the monitor runs for the whole session."""
    steps: list[Step] = Field(min_length=1)
    """The steps, in the seed's order; steps left out are not applicable."""
    budget: Budget = Field(default_factory=Budget)
    """The default budget of attempts of every step (a step's own `budget` replaces it): `{attempts: 5}`."""

    def step(self, step_id: StepId) -> Step | None:
        """The plan's step with this id, or None when it is not applicable."""
        for step in self.steps:
            if step.id == step_id:
                return step
        return None

    def budget_of(self, step: Step) -> tuple[int, str]:
        """A step's budget of attempts, and the plan setting it comes from (for messages)."""
        if step.budget is not None:
            index = self.steps.index(step)
            return step.budget.attempts, f"steps[{index}].budget.attempts"
        return self.budget.attempts, "budget.attempts, the plan's default"

    def probe(self, probe_id: str) -> Probe | None:
        for probe in self.health:
            if probe.id == probe_id:
                return probe
        return None

    @property
    def applicable_steps(self) -> list[StepId]:
        present = {step.id for step in self.steps}
        return [step_id for step_id in STEP_ORDER if step_id in present]
