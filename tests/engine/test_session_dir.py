"""A session's artefacts go in its own folder beside the journal (`x.files/`, 0700), never the current directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.engine.session import Session, session_dir_for
from rollback_tui.plan.loader import load_plan

from .conftest import Scripted, approving, simple_steps


def test_session_dir_is_named_after_the_journal(tmp_path: Path) -> None:
    assert session_dir_for(tmp_path / "rollback-x-20261202T100000.journal.jsonl") == \
        tmp_path / "rollback-x-20261202T100000.files"
    assert session_dir_for(tmp_path / "plain.jsonl") == tmp_path / "plain.files"


async def test_actions_work_in_the_session_dir_not_the_cwd(tmp_path: Path, write_plan: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    plan = write_plan(simple_steps())
    session = Session.start(load_plan(plan), decisions=Scripted(approving()), operator="olivia", no_sign=True,
                            journal_path=Path("s.journal.jsonl"))  # relative: the default journal is in the cwd
    assert session.workdir == (cwd / "s.files").resolve()
    assert stat.S_IMODE(os.stat(session.workdir).st_mode) == 0o700
    result = await session.run()
    assert result.exit_state == "completed"
    assert all(p.name.startswith("s.") for p in cwd.iterdir()), sorted(p.name for p in cwd.iterdir())
