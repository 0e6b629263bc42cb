"""Hostile YAML (plans, answers files, themes, keymaps): exit 2 with file:line:col, quickly, never a crash."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rollback_tui.plan.yamlpos import MAX_ALIASES, MAX_DEPTH, MAX_DOCUMENT_CHARS, MAX_NODES, YamlDocument

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "rollback_tui"]
TIMEOUT = 60  # a hang fails the test instead of the suite

PLAN = """\
metadata:
  name: bombs
rollback:
  scope: [code]
steps:
  - id: code
    actions:
      - id: checkout
        kind: shell
        argv: [echo, checked out]
"""
ACTION = "        argv: [echo, checked out]\n"


def laughs(prefix: str) -> str:
    """Billion laughs: ten levels of ten aliases each, 10**10 strings once expanded."""
    lines = [f'{prefix}- &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{prefix}- &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def with_action_field(text: str) -> str:
    return PLAN.replace(ACTION, ACTION + text)


#: name -> (plan text, the expected problem: a regex after `file:`)
PLAN_BOMBS: dict[str, tuple[str, str]] = {
    "billion_laughs": (PLAN.replace("  scope: [code]\n", "  scope: [code]\n  risks:\n" + laughs("    ")),
                       rf"\d+:\d+: YAML limit, refused: more than {MAX_NODES:,} values \(aliases expanded\)"),
    "self_alias": ("metadata: &m\n  name: x\n  owner: *m\nrollback:\n  scope: [code]\nsteps:\n  - id: code\n",
                   r"3:10: YAML limit, refused: alias \*m refers to the value that contains it "
                   r"\(a self-referencing alias\)"),
    "many_aliases": (PLAN.replace("  name: bombs\n", "  name: bombs\n  owner: &o team\n").replace(
        "  scope: [code]\n", "  scope: [code]\n  risks: [" + ", ".join(["*o"] * (MAX_ALIASES + 5)) + "]\n"),
                     rf"6:\d+: YAML limit, refused: more than {MAX_ALIASES} aliases; write the values out"),
    "deep_nesting_5000": (PLAN + "  - id: validate\n    notes: " + "[" * 5000 + "]" * 5000 + "\n",
                          rf"12:{12 + MAX_DEPTH - 3}: YAML limit, refused: nested more than {MAX_DEPTH} levels "
                          r"deep; flatten it"),
    "deep_block_nesting": (PLAN + "deep:\n" + "".join("  " * i + "k:\n" for i in range(1, 200)),
                           rf"\d+:\d+: YAML limit, refused: nested more than {MAX_DEPTH} levels deep; flatten it"),
    "huge_int": (with_action_field("        expect_exit: " + "9" * 5000 + "\n"),
                 r"11:22: steps\[0\]\.actions\[0\]\.expect_exit: an integer of 5,000 characters is out of range"),
    "int_over_64_bits": (with_action_field("        expect_exit: 99999999999999999999\n"),
                         r"11:22: steps\[0\]\.actions\[0\]\.expect_exit: 99999999999999999999 is out of range"),
    "inf_timeout": (with_action_field("        timeout: .inf\n"),
                    r"11:18: steps\[0\]\.actions\[0\]\.timeout: '\.inf' is not a finite number"),
    "nan_window": (PLAN.replace("rollback:\n", "inputs:\n  constraints:\n    window: .nan\nrollback:\n"),
                   r"5:13: inputs\.constraints\.window: '\.nan' is not a finite number"),
    "float_overflow_interval": (PLAN + "health:\n  - {id: api, kind: tcp, host: 127.0.0.1, port: 1, "
                                       "interval: 1.0e+999}\n",
                                r"12:62: health\[0\]\.interval: '1\.0e\+999' is not a finite number"),
    "enormous_retry_delay": (with_action_field("        retry: {attempts: 3, delay: 99999999h}\n"),
                             r"11:37: steps\[0\]\.actions\[0\]\.retry\.delay: 99999999h is longer than the limit "
                             r"of 7 days"),
    "window_over_7_days": (PLAN.replace("rollback:\n", "inputs:\n  constraints:\n    window: 8000000\n"
                                                       "rollback:\n"),
                           r"5:13: inputs\.constraints\.window: .* is longer than the limit of 7 days"),
    "duration_of_5000_digits": (with_action_field("        timeout: '" + "9" * 5000 + "s'\n"),
                                r"11:18: steps\[0\]\.actions\[0\]\.timeout: '9+\.\.\. is not a duration"),
    "negative_timeout": (with_action_field("        timeout: -5\n"),
                         r"11:18: steps\[0\]\.actions\[0\]\.timeout: a duration cannot be negative"),
    "negative_exit": (with_action_field("        expect_exit: -1\n"),
                      r"11:22: steps\[0\]\.actions\[0\]\.expect_exit: Input should be greater than or equal to 0"),
    "retries_over_budget": (with_action_field("        retry: {attempts: 100000}\n"),
                            r"11:27: steps\[0\]\.actions\[0\]\.retry\.attempts: Input should be less than or equal "
                            r"to 20"),
    "huge_document": (PLAN + "  - id: validate\n    notes: '" + "x" * (8 * 1024 * 1024) + "'\n",
                      rf"12:\d+: the file is longer than {MAX_DOCUMENT_CHARS:,} characters"),
}


def run(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    return done, time.monotonic() - started


@pytest.mark.parametrize("name", sorted(PLAN_BOMBS))
def test_validate_refuses_a_bomb_with_a_position(name: str, tmp_path: Path) -> None:
    text, expected = PLAN_BOMBS[name]
    plan = tmp_path / f"{name}.yaml"
    plan.write_text(text)
    done, seconds = run("validate", str(plan), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "internal error" not in done.stderr
    assert re.search(rf"^{re.escape(str(plan))}:{expected}", done.stderr, re.M), done.stderr[:2000]
    assert seconds < 30, f"{name} took {seconds:.1f}s"


def test_plan_command_refuses_the_same_bombs(tmp_path: Path) -> None:
    for name in ("billion_laughs", "deep_nesting_5000", "huge_int"):
        text, expected = PLAN_BOMBS[name]
        plan = tmp_path / f"{name}.yaml"
        plan.write_text(text)
        done, _ = run("plan", str(plan), cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert re.search(rf"^{re.escape(str(plan))}:{expected}", done.stderr, re.M), done.stderr


#: name -> (answers file text, the expected problem after `file:`)
ANSWER_BOMBS: dict[str, tuple[str, str]] = {
    "billion_laughs": ("steps:\n  code:\n" + laughs("    ") + "approvals: {devops-lead: Dana, tech-lead: Terry}\n",
                       rf"\d+:\d+: YAML limit, refused: more than {MAX_NODES:,} values \(aliases expanded\)"),
    "self_alias": ("steps: &s\n  code: *s\n",
                   r"2:9: YAML limit, refused: alias \*s refers to the value that contains it"),
    "deep_nesting_5000": ("steps:\n  code: " + "[" * 5000 + "]" * 5000 + "\n",
                          rf"2:{9 + MAX_DEPTH - 2}: YAML limit, refused: nested more than {MAX_DEPTH} levels deep"),
    "deep_json": ('{"steps": {"code": ' + "[" * 5000 + "]" * 5000 + "}}\n",
                  rf"1:\d+: YAML limit, refused: nested more than {MAX_DEPTH} levels deep"),
    "huge_int": ("approvals: {devops-lead: " + "7" * 5000 + ", tech-lead: Terry}\n",
                 r"1:26: approvals\.devops-lead: an integer of 5,000 characters is out of range"),
    "inf": ("steps: {code: .inf}\n", r"1:15: steps\.code: '\.inf' is not a finite number"),
    "huge_document": ("manual:\n  code/checkout: '" + "x" * (4 * 1024 * 1024) + "'\n",
                      rf"2:\d+: the file is longer than {MAX_DOCUMENT_CHARS:,} characters"),
    "enormous_name": ("approvals: {devops-lead: '" + "D" * 5000 + "', tech-lead: Terry}\n",
                      r"1:26: an approver's name of 5,000 characters is too long"),
}


@pytest.mark.parametrize("name", sorted(ANSWER_BOMBS))
def test_headless_run_refuses_an_answers_bomb_before_anything_runs(name: str, tmp_path: Path) -> None:
    text, expected = ANSWER_BOMBS[name]
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    answers = tmp_path / f"{name}.yaml"
    answers.write_text(text)
    done, seconds = run("run", str(plan), "--headless", "--answers", str(answers), "--no-sign",
                        "--journal", "s.jsonl", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert re.search(rf"^(rollback-tui: )?{re.escape(str(answers))}:{expected}", done.stderr, re.M), \
        done.stderr[:2000]
    assert not (tmp_path / "s.jsonl").exists()  # nothing started
    assert seconds < 30, f"{name} took {seconds:.1f}s"


@pytest.mark.parametrize("name", ["billion_laughs", "self_alias", "deep_nesting_5000", "huge_int"])
def test_theme_and_keymap_files_are_bounded_the_same_way(name: str, tmp_path: Path) -> None:
    from rollback_tui.ui.keymap import parse_keymap
    from rollback_tui.ui.themes import parse_theme

    text, _ = PLAN_BOMBS[name]
    path = tmp_path / "theme.yaml"
    with pytest.raises(ValueError) as caught:
        parse_theme(text, path)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(caught.value)), str(caught.value)
    keymap = parse_keymap(text, tmp_path / "keymap.yaml", {"decide.go"})
    assert keymap.keys == {} and keymap.problems
    assert all(re.match(rf"{re.escape(str(tmp_path / 'keymap.yaml'))}:\d+:\d+: ", p) for p in keymap.problems)


def test_the_limits_leave_room_for_real_files() -> None:
    """A large real file (500 hosts, aliases for shared settings, 60 levels of nesting) still loads."""
    hosts = "\n".join(f"    - host-{i}.example.com" for i in range(500))
    nested = "[" * 60 + "]" * 60
    text = f"shared: &s {{user: deploy}}\ngroups:\n  a: *s\n  b: *s\nhosts:\n{hosts}\ndeep: {nested}\n"
    doc = YamlDocument(text)
    assert doc.problems == []
    assert doc.data["groups"]["b"] == {"user": "deploy"} and len(doc.data["hosts"]) == 500


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_an_internal_error_in_validate_or_plan_does_not_speak_of_a_journal(command: str, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A bug (here: the loader raising something unexpected) is one line and a crash file, with no resume advice."""
    from rollback_tui import cli
    from rollback_tui.frontend import plan_commands as commands

    def broken(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(commands, "load_plan", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the crash file goes here
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    assert cli.main([command, str(plan)]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: simulated bug" in err and "nothing was run" in err
    assert "journal" not in err and "resume" not in err
