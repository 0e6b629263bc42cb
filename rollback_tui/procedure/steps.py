"""The seven steps of the procedure (seed §5) and the scopes they roll back: ids, order, titles, questions."""

from __future__ import annotations

from enum import Enum


class StepId(str, Enum):
    """The seven steps of the procedure (seed §5), in their required order."""

    assess = "assess"
    flags = "flags"
    code = "code"
    configuration = "configuration"
    database = "database"
    infrastructure = "infrastructure"
    validate = "validate"


STEP_ORDER: tuple[StepId, ...] = tuple(StepId)
STEP_IDS: tuple[str, ...] = tuple(step.value for step in STEP_ORDER)

STEP_TITLES: dict[StepId, str] = {
    StepId.assess: "Assess rollback situation",
    StepId.flags: "Disable feature flags",
    StepId.code: "Roll back code changes",
    StepId.configuration: "Roll back configuration changes",
    StepId.database: "Roll back database migrations",
    StepId.infrastructure: "Roll back infrastructure changes",
    StepId.validate: "Validate rollback and document",
}

STEP_QUESTIONS: dict[StepId, str] = {
    StepId.assess: "Is the rollback scope determined and the plan created?",
    StepId.flags: "Are the feature flags disabled successfully?",
    StepId.code: "Is the code rolled back successfully?",
    StepId.configuration: "Is the configuration rolled back successfully?",
    StepId.database: "Are the database migrations rolled back successfully?",
    StepId.infrastructure: "Is the infrastructure rolled back successfully?",
    StepId.validate: "Is the rollback validated and documented successfully?",
}


class Scope(str, Enum):
    """What a rollback can touch (seed §4 'Rollback scope')."""

    flags = "flags"
    code = "code"
    configuration = "configuration"
    database = "database"
    infrastructure = "infrastructure"


#: The step that rolls back each scope.
SCOPE_STEP: dict[Scope, StepId] = {
    Scope.flags: StepId.flags,
    Scope.code: StepId.code,
    Scope.configuration: StepId.configuration,
    Scope.database: StepId.database,
    Scope.infrastructure: StepId.infrastructure,
}

#: The seed's default rollback order.
DEFAULT_ORDER: tuple[Scope, ...] = tuple(Scope)


def step_number(step_id: str) -> int:
    """1 for assess ... 7 for validate; 0 for an unknown id."""
    return STEP_IDS.index(step_id) + 1 if step_id in STEP_IDS else 0


def title_of(step_id: str) -> str:
    """The seed's title of a step (its id when unknown)."""
    return STEP_TITLES[StepId(step_id)] if step_id in STEP_IDS else step_id
