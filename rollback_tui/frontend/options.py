"""The options every session front end shares (run, resume, demo; headless or cockpit), parsed by the CLI."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path


def default_operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "operator"


@dataclass
class SessionOptions:
    """Options shared by run, resume and demo (DESIGN.md 'Contracts')."""

    plan: Path | None = None
    journal: Path | None = None
    report: Path | None = None
    operator: str = field(default_factory=default_operator)
    sign_key: Path | None = None
    no_sign: bool = False
    theme: str | None = None
    headless: bool = False
    answers: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    keep: Path | None = None
