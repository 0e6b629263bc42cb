"""Broken plans: each gives exactly its positioned errors, exit 2, and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rollback_tui.errors import PlanError
from rollback_tui.plan.loader import load_plan

BROKEN = Path(__file__).parent / "broken"
FILE = "{file}"

EXPECTED: dict[str, list[str]] = {
    'bad_duration.yaml': [
        "{file}:5:13: inputs.constraints.window: '45 minutes' is not a duration; write seconds (90) or '30s', '5m', '1h', '250ms'",
    ],
    'bad_port.yaml': [
        '{file}:8:11: host_groups.web.port: Input should be less than or equal to 65535',
    ],
    'bad_scope_item.yaml': [
        "{file}:4:18: rollback.scope[1]: Input should be 'flags', 'code', 'configuration', 'database' or 'infrastructure'; did you mean 'code'?",
    ],
    'bad_yaml_syntax.yaml': [
        "{file}:5:6: YAML syntax: expected ',' or ']', but got ':' (while parsing a flow sequence started at line 4, column 10)",
    ],
    'duplicate_action_id.yaml': [
        "{file}:6:5: steps[0]: two actions are named 'a' in step code",
    ],
    'duplicate_key.yaml': [
        "{file}:3:3: duplicate key 'name'",
    ],
    'duplicate_step.yaml': [
        "{file}:7:9: steps[1].id: step 'flags' appears twice (first as steps[0])",
    ],
    'empty.yaml': [
        '{file}:1:1: the file is empty',
    ],
    'empty_secret_spec.yaml': [
        '{file}:5:9: secrets.token: Input should be a valid dictionary or instance of SecretSpec',
    ],
    'inline_secret.yaml': [
        "{file}:7:5: secrets.token: inline secret values are not allowed; read it from 'env: VARIABLE' or 'file: PATH'",
    ],
    'inline_secret_header.yaml': [
        "{file}:13:11: steps[0].actions[0].headers: inline secret in header 'Authorization': write '${secrets.NAME}' and declare NAME under 'secrets:'",
    ],
    'inline_secret_unleash.yaml': [
        "{file}:13:16: steps[0].actions[0].token: inline secret: write a reference such as '${secrets.NAME}' and declare NAME under 'secrets:'",
    ],
    'missing_host_group.yaml': [
        "{file}:13:16: steps[0].actions[0].group: unknown host group 'webb'; did you mean 'web'? (defined: web)",
    ],
    'missing_kind.yaml': [
        "{file}:8:9: steps[0].actions[0]: missing 'kind' (what kind of action or check this is)",
    ],
    'missing_metadata.yaml': [
        "{file}:1:1: top level: missing required key 'metadata'",
    ],
    'not_a_mapping.yaml': [
        '{file}:1:1: a plan is a mapping with keys such as metadata, rollback and steps',
    ],
    'python_tag.yaml': [
        "{file}:2:9: unsupported YAML tag '!!python/object/apply:os.system': a plan is plain data",
    ],
    'scope_without_step.yaml': [
        "{file}:4:18: rollback.scope[1]: 'database' is in scope but the plan has no 'database' step; add the step or remove it from the scope",
    ],
    'shell_string_without_shell.yaml': [
        "{file}:8:9: steps[0].actions[0]: 'command' runs through a shell: add 'shell: true', or give 'argv' as a list",
    ],
    'step_out_of_order.yaml': [
        "{file}:7:9: steps[1].id: step 'flags' is out of order; the procedure's order is assess, flags, code, configuration, database, infrastructure, validate",
    ],
    'tab_indent.yaml': [
        "{file}:2:1: YAML syntax: found character '\\t' that cannot start any token (while scanning for the next token)",
    ],
    'undefined_secret.yaml': [
        "{file}:15:16: steps[0].actions[0].token: undefined secret 'tokn' (declared under 'secrets:': token)",
    ],
    'undefined_variable.yaml': [
        "{file}:13:14: steps[0].actions[0].ref: undefined variable ${relase}: define it under 'variables:' or pass --var relase=VALUE; did you mean 'release'?",
    ],
    'unknown_action_kind.yaml': [
        "{file}:9:15: steps[0].actions[0].kind: unknown kind 'kubctl'; did you mean 'kubectl'? (expected one of: shell, ssh, ansible, flagd, unleash, http_flag, git, kubectl, helm, config_files, env_file, alembic, sql, terraform, http)",
    ],
    'unknown_nested_key.yaml': [
        "{file}:3:3: metadata: unknown key 'enviroment'; did you mean 'environment'? (expected one of: environment, incident, name, owner, service, ticket, trigger)",
    ],
    'unknown_probe_ref.yaml': [
        "{file}:14:16: steps[1].verify[0].probe: unknown health probe 'apii'; did you mean 'api'? (defined: api)",
    ],
    'unknown_step.yaml': [
        "{file}:6:9: steps[0].id: Input should be 'assess', 'flags', 'code', 'configuration', 'database', 'infrastructure' or 'validate'; did you mean 'flags'?",
    ],
    'unknown_top_key.yaml': [
        "{file}:1:1: top level: missing required key 'steps'",
        "{file}:5:1: top level: unknown key 'stepz'; did you mean 'steps'? (expected one of: approvals, budget, health, host_groups, inputs, metadata, rollback, secrets, steps, variables, version)",
    ],
    'wrong_type.yaml': [
        "{file}:11:16: steps[0].actions[0].flags: Input should be a valid list (got str 'new-checkout')",
    ],
    # values out of range: refused with a position
    'inf_duration.yaml': [
        "{file}:11:18: steps[0].actions[0].timeout: '.inf' is not a finite number (.inf and .nan are not allowed)",
    ],
    'nan_window.yaml': [
        "{file}:5:13: inputs.constraints.window: '.nan' is not a finite number (.inf and .nan are not allowed)",
    ],
    'negative_timeout.yaml': [
        '{file}:11:18: steps[0].actions[0].timeout: a duration cannot be negative',
    ],
    'retry_delay_too_long.yaml': [
        '{file}:13:18: steps[0].actions[0].retry.delay: 200h is longer than the limit of 7 days (604800s)',
    ],
    'too_many_retries.yaml': [
        '{file}:11:27: steps[0].actions[0].retry.attempts: Input should be less than or equal to 20',
    ],
    'window_too_long.yaml': [
        '{file}:5:13: inputs.constraints.window: 200h is longer than the limit of 7 days (604800s)',
    ],
    # waves: counts the group cannot hold, words that are not a wave pause
    'waves_percent_over_100.yaml': [
        "{file}:16:17: steps[0].actions[0].waves.size: 150% is over 100%: a percentage of the group is at most '100%'",
    ],
    'waves_size_zero.yaml': [
        "{file}:16:17: steps[0].actions[0].waves.size: a wave of 0 hosts would never run a host; give at least 1 (or a percentage above 0%)",
    ],
    'waves_canary_too_large.yaml': [
        "{file}:17:18: steps[0].actions[0].waves.first: a canary of 5 hosts is larger than host group 'web' (3 hosts); give at most 3",
    ],
    'waves_bad_between.yaml': [
        "{file}:17:20: steps[0].actions[0].waves.between: 'wait a bit': write 'decision' (a go/no-go after every wave but the last) or 'pause DURATION' (e.g. 'pause 30s')",
    ],
    'waves_budget_too_large.yaml': [
        "{file}:17:27: steps[0].actions[0].waves.failure_budget: 4 hosts is more than host group 'web' has (3); give at most 3 (or a percentage)",
    ],
}

HOSTILE = Path(__file__).parent / "hostile"
#: Hostile YAML (alias bombs, self aliases, 5,000-deep nesting, 5,000-digit integers), kept apart from the broken
#: corpus because the schema peers that check that corpus are not bounded parsers: these crash or hang them.
EXPECTED_HOSTILE: dict[str, list[str]] = {
    'alias_bomb.yaml': [
        '{file}:10:47: YAML limit, refused: more than 100,000 values (aliases expanded); use fewer aliases or split the file',
    ],
    'deep_nesting.yaml': [
        '{file}:12:73: YAML limit, refused: nested more than 64 levels deep; flatten it',
    ],
    'huge_int.yaml': [
        '{file}:11:22: steps[0].actions[0].expect_exit: an integer of 5,000 characters is out of range (at most 9,223,372,036,854,775,807)',
    ],
    'self_alias.yaml': [
        '{file}:3:10: YAML limit, refused: alias *m refers to the value that contains it (a self-referencing alias); remove it',
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_plan_gives_exact_positioned_errors(name: str) -> None:
    path = Path("tests/plan/broken") / name
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.problems == [line.replace(FILE, str(path)) for line in EXPECTED[name]]


def test_every_broken_plan_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 20


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_command_exits_2_without_traceback(name: str) -> None:
    result = subprocess.run([sys.executable, "-m", "rollback_tui", "validate", f"tests/plan/broken/{name}"],
                            capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for line in EXPECTED[name]:
        assert line.replace(FILE, f"tests/plan/broken/{name}") in result.stderr


def test_python_tag_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f'metadata:\n  name: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(PlanError):
        load_plan(plan)
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(EXPECTED_HOSTILE))
def test_hostile_plan_gives_exact_positioned_errors(name: str) -> None:
    path = Path("tests/plan/hostile") / name
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.problems == [line.replace(FILE, str(path)) for line in EXPECTED_HOSTILE[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED_HOSTILE))
def test_validate_refuses_a_hostile_plan_with_exit_2(name: str) -> None:
    result = subprocess.run([sys.executable, "-m", "rollback_tui", "validate", f"tests/plan/hostile/{name}"],
                            capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for line in EXPECTED_HOSTILE[name]:
        assert line.replace(FILE, f"tests/plan/hostile/{name}") in result.stderr


def test_every_hostile_plan_has_an_expectation() -> None:
    assert sorted(p.name for p in HOSTILE.glob("*.yaml")) == sorted(EXPECTED_HOSTILE)
