"""Fuzzing the answers-file parser: generated and hostile files are accepted or refused with positioned errors."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_tui.engine.answers import parse_answers
from rollback_tui.errors import PlanError

POSITIONED = re.compile(r"^a\.yaml:\d+:\d+: \S")
SAMPLE = """\
operator: Dana Ops
inputs: confirm
plan_review: approve
approvals:
  devops-lead: Dana Ops
  tech-lead: Terry Tech
steps:
  assess: go
  flags:
    - {choice: no_go, reason: EU flag still on, then: retry}
    - go
  code: {choice: override, reason: version endpoint is cached}
default_step: go
on_failed_action: {default: halt, code/checkout: [retry, retry_failed]}
on_interrupted: rerun
manual:
  database/restore: restored by hand
"""


def _parse(text: str) -> None:
    """Either answers, or a PlanError whose every line is positioned; anything else fails the test."""
    try:
        parse_answers(text, Path("a.yaml"))
    except PlanError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert POSITIONED.match(problem), problem


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["go", "no_go", "retry", "abort", "halt", "approve",
                                                           "confirm", "manual", "Dana", "d\u0430na", "Da\u200bna"]))
keys = st.sampled_from(["operator", "inputs", "plan_review", "approvals", "steps", "default_step", "choice",
                        "reason", "then", "on_failed_action", "on_interrupted", "manual", "devops-lead",
                        "tech-lead", "code", "flags", "name", "default", "bogus"])
documents = st.recursive(scalars, lambda children: st.one_of(st.lists(children, max_size=4),
                                                             st.dictionaries(keys, children, max_size=5)),
                         max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_generated_answers(document: object) -> None:
    _parse(yaml.safe_dump(document, sort_keys=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_sample(data: st.DataObject) -> None:
    lines = SAMPLE.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        token = data.draw(st.sampled_from(["[", "]", "{", ":", "- ", "&a ", "*a", ".inf", ".nan", "9" * 5000,
                                           "[" * 300, "!!python/object:os.system x", "\t", "'", "{a: &b [*b]}"]))
        position = data.draw(st.integers(0, len(lines[index])))
        lines[index] = lines[index][:position] + token + lines[index][position:]
    _parse("\n".join(lines) + "\n")
