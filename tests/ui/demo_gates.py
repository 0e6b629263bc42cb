"""The gates of a real demo run: a journal recorded by `rollback-tui demo --headless --answers auto --no-sign
--operator alice` (tests/ui/fixtures/demo-headless.journal.jsonl), cut just after one of its questions."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rollback_tui.record.journal import read_journal
from rollback_tui.ui.app import CockpitApp
from harness import LastAskDriver

FIXTURE = Path(__file__).parent / "fixtures" / "demo-headless.journal.jsonl"


def demo_events() -> list[Any]:
    loaded = read_journal(FIXTURE)
    return list(loaded.events)


def until_question(kind: str, step: str = "", subject: str = "") -> list[Any]:
    """The recorded events up to (and with) the first question of this kind, step and subject."""
    events = demo_events()
    for index, event in enumerate(events):
        if (event.type == "decision_requested" and event.kind == kind and (not step or event.step == step)
                and (not subject or event.subject == subject)):
            return events[:index + 1]
    raise AssertionError(f"the demo journal asks no {kind} {step} {subject}")


def demo_app(events: list[Any], theme: str = "incident-dark") -> CockpitApp:
    """A live cockpit fed the recorded events, asking the last question; its clock 5 s after that question."""
    now: datetime = events[-1].ts + timedelta(seconds=5)
    return CockpitApp(LastAskDriver(events), clock=lambda: now, operator="alice", theme=theme)
