"""The one exception hierarchy that crosses layers (plan, engine, adapters, report, UI)."""

from __future__ import annotations


class RollbackError(Exception):
    """Base of every error the product raises on purpose; its message is shown to the operator."""

    #: What the operator should do next; shown under the message.
    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base


class PlanError(RollbackError):
    """A plan (or answers/theme/config file) is invalid; carries every positioned problem."""

    def __init__(self, problems: list[str], *, hint: str = "") -> None:
        self.problems = problems
        super().__init__("\n".join(problems), hint=hint)


class InputMissing(RollbackError):
    """A required input (seed §3) is missing and its remediation is to halt."""


class AdapterError(RollbackError):
    """An action failed in a way the adapter understood (bad exit status, refused, wrong state)."""


class ActionTimeout(AdapterError):
    """An action ran past its timeout; its processes were killed."""


class HostUnreachable(AdapterError):
    """An SSH host could not be reached, refused authentication, or has a bad host key."""


class JournalError(RollbackError):
    """The journal cannot be written, read, or locked."""


class JournalLocked(JournalError):
    """Another live session holds the journal's lock."""


class SignatureError(RollbackError):
    """A report signature or integrity check failed."""


class ReportError(RollbackError):
    """A report cannot be written or parsed."""
