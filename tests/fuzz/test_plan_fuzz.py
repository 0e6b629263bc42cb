"""Fuzzing the plan loader: generated plans and mutated samples are accepted or rejected with positioned errors."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_tui.errors import PlanError
from rollback_tui.plan.loader import parse_plan

ROOT = Path(__file__).parents[2]
SAMPLES = [p.read_text() for p in sorted((ROOT / "sample_plans").glob("*.yaml"))]
POSITIONED = re.compile(r"^plan\.yaml:\d+:\d+: \S")
VARIABLES = {"sandbox": "/tmp/sb", "web_port": "8080", "ssh_port": "2222"}


def _load(text: str) -> None:
    """Either a plan, or a PlanError whose every line is positioned; anything else fails the test."""
    try:
        parse_plan(text, path=Path("plan.yaml"), variables=VARIABLES, label="plan.yaml")
    except PlanError as exc:
        assert exc.problems, "a PlanError must carry at least one problem"
        for problem in exc.problems:
            assert POSITIONED.match(problem), problem


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["30s", "5m", "flags", "code", "shell", "ssh", "${x}",
                                                           "${secrets.t}", "validate", "assess", "$(rm -rf /)"]))
keys = st.sampled_from(["metadata", "name", "rollback", "scope", "steps", "id", "kind", "actions", "argv", "verify",
                        "health", "url", "group", "host_groups", "hosts", "secrets", "env", "value", "variables",
                        "timeout", "retry", "attempts", "inputs", "artifacts", "check", "path", "approvals",
                        "roles", "probe", "window", "constraints", "bogus"])
documents = st.recursive(scalars, lambda children: st.one_of(st.lists(children, max_size=4),
                                                             st.dictionaries(keys, children, max_size=5)),
                         max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_generated_documents(document: object) -> None:
    _load(yaml.safe_dump(document, sort_keys=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_samples(sample: str, data: st.DataObject) -> None:
    lines = sample.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        operation = data.draw(st.sampled_from(["delete", "duplicate", "truncate", "indent", "dedent", "replace"]))
        line = lines[index]
        if operation == "delete":
            del lines[index]
        elif operation == "duplicate":
            lines.insert(index, line)
        elif operation == "truncate":
            lines[index] = line[: data.draw(st.integers(0, max(len(line) - 1, 0)))]
        elif operation == "indent":
            lines[index] = "  " + line
        elif operation == "dedent":
            lines[index] = line[2:] if line.startswith("  ") else line
        else:
            token = data.draw(st.sampled_from(["[", "]", "{", ":", "- ", "!!python/object:os.system x", "\t", "'",
                                               "${nope}", "kind: nonsense", "99999999", "&a ", "*a",
                                               "*a0", ".inf", ".nan", "-5", "9" * 5000, "[" * 300,
                                               "{a: &b [*b]}", "1.0e+999", "\u200b"]))
            position = data.draw(st.integers(0, len(line)))
            lines[index] = line[:position] + token + line[position:]
        if not lines:
            break
    _load("\n".join(lines) + "\n")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(blob: bytes) -> None:
    _load(blob.decode("utf-8", errors="replace"))
