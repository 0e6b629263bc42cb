"""Fixtures for the engine tests: plans written as real YAML files, a scripted decision source, a session driver."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_tui.engine.decisions import Decision
from rollback_tui.record.events import DecisionRequested, Event
from rollback_tui.record.journal import read_journal
from rollback_tui.engine.session import Session, SessionResult
from rollback_tui.procedure.fold import fold
from rollback_tui.plan.loader import load_plan

PY = sys.executable


def sh(code: str) -> dict[str, Any]:
    """A shell action body running a line of Python (argv, no shell)."""
    return {"kind": "shell", "argv": [PY, "-c", code]}


def echo(text: str) -> dict[str, Any]:
    """A quick real command (no interpreter start-up)."""
    return {"kind": "shell", "argv": ["echo", text]}


def plan_data(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "metadata": {"name": "engine test"},
        "rollback": {"scope": ["flags", "code"]},
        "steps": steps,
    }
    data.update(extra)
    return data


def simple_steps(*, code_verify: list[str] | None = None) -> list[dict[str, Any]]:
    """assess, flags, code, validate with quick real commands; configuration/database/infrastructure absent."""
    code = {"id": "checkout", **echo("checked out")}
    if code_verify is not None:
        code["verify_argv"] = code_verify
    return [
        {"id": "assess", "actions": [{"id": "look", **echo("assessing")}]},
        {"id": "flags", "actions": [{"id": "off", **echo("flag off")}]},
        {"id": "code", "actions": [code]},
        {"id": "validate", "actions": [{"id": "smoke", **echo("smoke ok")}]},
    ]


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[..., Path]:
    def write(steps: list[dict[str, Any]] | None = None, name: str = "plan.yaml", **extra: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(plan_data(steps or simple_steps(), **extra), sort_keys=False))
        return path

    return write


@dataclass
class Scripted:
    """A decision source answering from a function of the request (a stand-in for the operator at the cockpit)."""

    answer: Callable[[DecisionRequested], Decision]
    seen: list[DecisionRequested] = field(default_factory=list)

    async def decide(self, request: DecisionRequested) -> Decision:
        self.seen.append(request)
        return self.answer(request)


def approving(overrides: dict[tuple[str, str], Decision] | None = None,
              names: dict[str, str] | None = None) -> Callable[[DecisionRequested], Decision]:
    """Go / approve everything, with per (kind, step-or-subject) overrides."""
    names = names or {"devops-lead": "Dana", "tech-lead": "Terry"}

    def answer(request: DecisionRequested) -> Decision:
        key = (request.kind, request.step or request.subject)
        if overrides and key in overrides:
            return overrides[key]
        if request.kind == "approval":
            return Decision("approve", by=names.get(request.subject, request.subject))
        if request.kind == "gate" and request.action:
            return Decision("manual", "done by hand")
        if request.kind == "gate":
            return Decision("go" if "go" in request.options else "override", "scripted")
        if request.kind == "interrupted":
            return Decision("rerun")
        if request.kind in ("action_failed", "no_go"):
            return Decision("abort", "scripted abort")
        return Decision("approve", "scripted")

    return answer


def check_journal(path: Path) -> list[Event]:
    """Every journal a test produces: readable, gap-free seq from 1, no duplicates, a legal fold."""
    read = read_journal(path)
    assert read.dropped == []
    seqs = [event.seq for event in read.events]
    assert seqs == list(range(1, len(seqs) + 1))
    fold(read.events)  # raises IllegalTransition on a move the table refuses
    return read.events


async def run_plan(plan_path: Path, decisions: Any, tmp_path: Path, **kwargs: Any) -> tuple[SessionResult, list[Event]]:
    journal = kwargs.pop("journal_path", tmp_path / "session.journal.jsonl")
    session = Session.start(load_plan(plan_path), decisions=decisions, operator="olivia", journal_path=journal,
                            no_sign=True, **kwargs)
    result = await session.run()
    return result, check_journal(journal)


def of_type(events: list[Event], kind: str) -> list[Any]:
    return [event for event in events if event.type == kind]
