"""One person cannot hold two roles by changing case, width, invisible characters or look-alike letters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_tui.engine.decisions import Decision
from rollback_tui.record.events import ApprovalGiven, DecisionRequested
from rollback_tui.record.journal import read_journal
from rollback_tui.engine.session import Session
from rollback_tui.people import CONFUSABLES, parse_confusables, person_key, same_person
from rollback_tui.plan.loader import load_plan

CLI = [sys.executable, "-m", "rollback_tui"]
PLAN: dict[str, Any] = {
    "metadata": {"name": "people"},
    "rollback": {"scope": ["code"]},
    "steps": [{"id": "code", "actions": [{"id": "checkout", "kind": "shell", "argv": ["echo", "checked out"]}]}],
}
#: A second approver who is Dana again: by case, a Cyrillic а (U+0430), a zero-width space, full width, a bidi mark,
#: mathematical bold, a Greek omicron for the o of "Dana Ops".
DANA_AGAIN = {
    "case": ("Dana", "dana"),
    "cyrillic": ("Dana", "D\u0430na"),
    "zero_width": ("Dana", "Da\u200bna"),
    "fullwidth": ("Dana", "\uff24\uff41\uff4e\uff41"),
    "bidi": ("Dana", "\u202aDana\u202c"),
    "math_bold": ("Dana", "\U0001d403\U0001d41a\U0001d427\U0001d41a"),
    "greek_and_spaces": ("Dana Ops", "dana  \u039fps"),
}
OTHER_PEOPLE = [("Dana", "Dána"), ("Dana", "Dina"), ("Dana", "Dan"), ("Dana", "Danaa"), ("Terry", "Dana")]


@pytest.mark.parametrize("kind", sorted(DANA_AGAIN))
def test_look_alikes_are_the_same_person(kind: str) -> None:
    first, second = DANA_AGAIN[kind]
    assert first != second and same_person(first, second)


@pytest.mark.parametrize("first,second", OTHER_PEOPLE)
def test_different_people_stay_different(first: str, second: str) -> None:
    assert not same_person(first, second)


def test_invisible_only_names_are_nobody() -> None:
    assert person_key("\u200b\u200d\u2066") == "" and not same_person("\u200b", "\u200c")


def test_the_skeleton_comes_from_unicodes_confusables_file() -> None:
    text = CONFUSABLES.read_text(encoding="utf-8")
    assert "confusables.txt" in text[:600] and "Version: 13.0.0" in text[:600] and "UTS #39" in text[:600]
    table = parse_confusables(text)
    assert len(table) == 6311 and text.rstrip().endswith("# total: 6311")  # every mapping of the file is read
    assert table["\u0430"] == "a" and table["\u03bf"] == "o" and table["m"] == "rn"
    assert person_key("\u0440\u0430\u0443\u0440\u0430\u0428") == person_key("payp\u0430\u0428")  # Cyrillic р, а, у
    assert person_key("m") == person_key("rn")  # TR39's own example of a multi-character prototype


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))
    return path


def headless(tmp_path: Path, plan: Path, answers: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", str(plan), "--headless", "--answers", str(answers), "--no-sign",
                           "--journal", "s.jsonl", "--report", "r.md", *extra],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["case", "cyrillic", "zero_width", "fullwidth"])
def test_answers_file_naming_dana_twice_is_refused_before_anything_runs(kind: str, tmp_path: Path) -> None:
    first, second = DANA_AGAIN[kind]
    plan = write(tmp_path / "plan.yaml", PLAN)
    answers = write(tmp_path / "answers.yaml", {"approvals": {"devops-lead": first, "tech-lead": second}})
    done = headless(tmp_path, plan, answers)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{answers}:3:3: {second!r} is the same person as 'Dana', who already approves as devops-lead" \
           in done.stderr, done.stderr
    assert not (tmp_path / "s.jsonl").exists()


def test_an_allowed_near_duplicate_is_shown_on_stdout_in_the_journal_and_in_the_report(tmp_path: Path) -> None:
    plan = write(tmp_path / "plan.yaml", {**PLAN, "approvals": {"allow_same_person": True}})
    answers = write(tmp_path / "answers.yaml", {"approvals": {"devops-lead": "Dana", "tech-lead": "D\u0430na"}})
    done = headless(tmp_path, plan, answers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "approves validation: D\u0430na (same person as the devops-lead approver)" in done.stdout
    approvals = [e for e in read_journal(tmp_path / "s.jsonl").events if e.type == "approval_given"]
    assert [(a.role, a.name, a.same_person_as) for a in approvals] == [
        ("devops-lead", "Dana", ""), ("tech-lead", "D\u0430na", "devops-lead")]
    raw = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    first = next(r for r in raw if r.get("type") == "approval_given")
    assert "same_person_as" not in first  # unset: the bytes of an ordinary approval are unchanged
    report = (tmp_path / "r.md").read_text()
    assert "(same person as the Technical Lead approver" not in report
    assert "same person as the DevOps Lead approver; the plan allows it" in report


async def run_with_names(tmp_path: Path, names: list[str]) -> tuple[str, list[Any], list[DecisionRequested]]:
    given = iter(names)
    asked: list[DecisionRequested] = []

    class Source:
        async def decide(self, request: DecisionRequested) -> Decision:
            asked.append(request)
            if request.kind == "approval":
                return Decision("approve", by=next(given))
            if request.kind == "gate":
                return Decision("go")
            return Decision("approve", "confirmed")

    plan = write(tmp_path / "plan.yaml", PLAN)
    session = Session.start(load_plan(plan), decisions=Source(), operator="olivia",
                            journal_path=tmp_path / "s.jsonl", no_sign=True)
    result = await session.run()
    approvals = [e for e in read_journal(tmp_path / "s.jsonl").events if isinstance(e, ApprovalGiven)]
    return result.exit_state, approvals, asked


async def test_the_runner_itself_refuses_the_same_person_from_any_source(tmp_path: Path) -> None:
    """Not only the answers file's check: the engine refuses a look-alike from the cockpit or any other source."""
    exit_state, given, asked = await run_with_names(tmp_path, ["Dana", "Da\u200bna", "D\u0430na", "Terry"])
    assert exit_state == "completed"
    assert [(a.role, a.name) for a in given] == [("devops-lead", "Dana"), ("tech-lead", "Terry")]
    refusals = [r.evidence.detail for r in asked if r.kind == "approval"][2:4]
    assert "'Da\\u200bna' is the same person as 'Dana', who already approved as devops-lead" in refusals[0]
    assert "'D\u0430na' is the same person as 'Dana', who already approved as devops-lead" in refusals[1]


async def test_the_runner_refuses_an_enormous_or_invisible_approver_name(tmp_path: Path) -> None:
    exit_state, given, asked = await run_with_names(tmp_path, ["\u200b\u2066", "D" * 300, "Dana", "Terry"])
    assert exit_state == "completed"
    assert [a.name for a in given] == ["Dana", "Terry"]
    details = [r.evidence.detail for r in asked if r.kind == "approval"][1:3]
    assert "an approval needs the approver's name" in details[0]
    assert "an approver's name has at most 200 characters" in details[1]
