"""Loading a saved session for replay: a report (.md, verified) or a journal (.jsonl, torn last line tolerated)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rollback_tui.record.events import Event
from rollback_tui.errors import ReportError
from rollback_tui.report.allowed import Source
from rollback_tui.report.verify import VerifyResult, verify_report
from rollback_tui.safeio import FileRefused, open_regular


@dataclass
class LoadedSession:
    events: list[Event]
    source: Literal["report", "journal"]
    verify: VerifyResult | None
    """For a report: the full verification (the UI refuses a failed one unless --unverified)."""
    dropped: list[str] = field(default_factory=list)
    """Lines that could not be read, as `line N: why`."""


def _is_journal(path: Path) -> bool:
    """By its name, else by its first byte; a FIFO, device or directory is refused before anything reads it."""
    try:
        fd = open_regular(path, follow=path.suffix == ".md", what="report or journal")
    except FileRefused as exc:
        raise ReportError(str(exc)) from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix in (".jsonl", ".json", ".ndjson"):
            return True
        if path.suffix == ".md":
            return False
        return os.read(fd, 1) == b"{"
    finally:
        os.close(fd)


def load_events(path: Path, *, allowed_signers: Path | None = None, identity: str | None = None,
                trust_source: Source | None = None) -> LoadedSession:
    """The events of a report or journal. Raises ReportError (or JournalError) only when nothing can be read,
    SignatureError when the allowed-signers source cannot be read."""
    path = Path(path)
    if _is_journal(path):
        from rollback_tui.record.journal import read_journal

        journal = read_journal(path, light=True)  # output batches stay on disk until shown
        return LoadedSession(journal.events, "journal", None, list(journal.dropped))
    result = verify_report(path, allowed_signers=allowed_signers, identity=identity, source=trust_source)
    return LoadedSession(result.events, "report", result, list(result.dropped))
