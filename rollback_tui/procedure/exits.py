"""Exit states (seed §11), the output contract's signals, and every exit code of the command line, defined once."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ExitState(StrEnum):
    """How a session ended."""

    completed = "completed"
    """Every applicable step finished done (or completed by hand) and the validation was approved."""
    blocked = "blocked"
    """Waiting for an issue to be resolved (a halt, a rejection, a missing input, a failed decision source)."""
    aborted = "aborted"
    """The operator aborted while no applicable scope, or every one, was rolled back."""
    partial = "partial"
    """The operator aborted after some applicable scopes were rolled back and others were not."""


EXIT_STATES: tuple[str, ...] = tuple(state.value for state in ExitState)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_ABORTED = 4
EXIT_PARTIAL = 5
EXIT_SIGNATURE = 6
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_FOR_STATE: dict[str, int] = {ExitState.completed: EXIT_OK, ExitState.blocked: EXIT_BLOCKED,
                                  ExitState.aborted: EXIT_ABORTED, ExitState.partial: EXIT_PARTIAL}
EXIT_FOR_SIGNAL: dict[str, int] = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}

#: Exit state -> (symbol, words) as every screen and line says it.
EXIT_WORDS: dict[str, tuple[str, str]] = {
    ExitState.completed: ("✔", "completed"),
    ExitState.blocked: ("⚠", "blocked"),
    ExitState.aborted: ("■", "aborted"),
    ExitState.partial: ("◐", "partial rollback"),
}

SCOPE_OUTCOMES: tuple[str, ...] = ("rolled_back", "not_rolled_back", "not_applicable", "manual")
#: Scope outcomes that count as rolled back.
ROLLED_BACK: frozenset[str] = frozenset({"rolled_back", "manual"})

ROLLBACK_COMPLETE = "Rollback complete"
SYSTEM_RESTORED = "System restored"
ROOT_CAUSE = "Root cause analysis initiated"
SIGNALS: tuple[str, ...] = (ROLLBACK_COMPLETE, SYSTEM_RESTORED, ROOT_CAUSE)


def exit_code(state: str) -> int:
    """The process exit code of an exit state."""
    return EXIT_FOR_STATE[ExitState(state)]


def abort_state(scopes: Mapping[str, str]) -> ExitState:
    """An abort is partial when some applicable scopes were rolled back and others were not, else aborted."""
    rolled = any(outcome in ROLLED_BACK for outcome in scopes.values())
    pending = any(outcome == "not_rolled_back" for outcome in scopes.values())
    return ExitState.partial if rolled and pending else ExitState.aborted


def signals_for(state: str, *, reached_validation: bool, already: frozenset[str] | set[str] = frozenset()
                ) -> list[str]:
    """The output contract's signals an ending emits, leaving out those the session already emitted."""
    if state == ExitState.completed:
        names = list(SIGNALS)
    elif state in (ExitState.partial, ExitState.aborted) or reached_validation:
        names = [ROOT_CAUSE]
    else:
        names = []
    return [name for name in names if name not in already]


def outcome_words(state: str) -> str:
    """'◐ partial rollback' for an exit state."""
    symbol, words = EXIT_WORDS.get(state, ("", state))
    return f"{symbol} {words}".strip()
