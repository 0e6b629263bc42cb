"""Valid plans: samples load, variables substitute, secrets stay references, inputs are checked for real."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_tui.errors import PlanError
from rollback_tui.frontend.plan_commands import plan_schema
from rollback_tui.review.inputs import check_inputs
from rollback_tui.plan.loader import load_plan, parse_plan
from rollback_tui.plan.types import StepId, parse_duration

ROOT = Path(__file__).parents[2]
SAMPLES = sorted((ROOT / "sample_plans").glob("*.yaml"))

MINIMAL = """\
metadata: {name: t}
rollback: {scope: [code]}
variables:
  release: v2.3.1
  repo: ${plan_dir}/deploy
steps:
  - id: code
    actions:
      - id: checkout
        kind: git
        repo: ${repo}
        ref: ${release}
      - id: tell
        kind: shell
        argv: [echo, "$${not_a_variable}", "${secrets.token}"]
secrets:
  token: {env: DEPLOY_TOKEN}
"""


def test_samples_are_present() -> None:
    names = {path.name for path in SAMPLES}
    assert {"k8s-postgres-unleash.yaml", "ssh-fleet.yaml"} <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_plans_pass_schema_validation(path: Path) -> None:
    loaded = load_plan(path, {"sandbox": "/tmp/sandbox", "web_port": "8080", "ssh_port": "2222"})
    assert loaded.plan.metadata.name
    assert path.read_text().startswith("# yaml-language-server: $schema=")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_validate_on_samples_never_exits_2(path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "rollback_tui", "validate", str(path),
                             "--var", "sandbox=/nonexistent", "--var", "web_port=1", "--var", "ssh_port=2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if result.returncode == 3:
        assert "remediation" in result.stdout or "cannot be read" in result.stdout


def test_variables_are_substituted_and_secrets_stay_references(tmp_path: Path) -> None:
    loaded = parse_plan(MINIMAL, path=tmp_path / "plan.yaml")
    step = loaded.plan.step(StepId.code)
    assert step is not None
    git, shell = step.actions
    assert git.repo == f"{tmp_path.resolve()}/deploy"
    assert git.ref == "v2.3.1"
    assert shell.argv == ["echo", "${not_a_variable}", "${secrets.token}"]


def test_caller_variables_override_the_plan(tmp_path: Path) -> None:
    loaded = parse_plan(MINIMAL, path=tmp_path / "plan.yaml", variables={"release": "v1.0.0"})
    step = loaded.plan.step(StepId.code)
    assert step is not None and step.actions[0].ref == "v1.0.0"


def test_injection_text_in_a_variable_stays_one_literal_argument(tmp_path: Path) -> None:
    evil = "$(touch /tmp/pwned); rm -rf x"
    loaded = parse_plan(MINIMAL.replace("release: v2.3.1", f"release: '{evil}'"), path=tmp_path / "p.yaml")
    step = loaded.plan.step(StepId.code)
    assert step is not None and step.actions[0].ref == evil


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("ref: ${release}", "ref: ${relase}\n        bogus: 1").replace("name: t", "nam: t")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, path=tmp_path / "p.yaml", label="p.yaml")
    problems = caught.value.problems
    assert any(":1:12: metadata: unknown key 'nam'" in p for p in problems), problems
    assert any(":12:14: steps[0].actions[0].ref: undefined variable ${relase}" in p for p in problems), problems
    assert any(":13:9: steps[0].actions[0]: unknown key 'bogus'" in p for p in problems), problems


def test_committed_schema_matches_the_models() -> None:
    committed = json.loads((ROOT / "schema" / "plan.schema.json").read_text())
    assert committed == json.loads(json.dumps(plan_schema()))
    assert committed["properties"]["steps"]["description"]


@pytest.mark.parametrize("text,seconds", [("90", 90), (90, 90), ("30s", 30), ("5m", 300), ("1h", 3600),
                                          ("250ms", 0.25), ("1.5m", 90)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.send_response(200 if self.path == "/runbook" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_required_inputs_are_checked_for_real(tmp_path: Path, http_server: str) -> None:
    (tmp_path / "snapshot").mkdir()
    text = f"""
metadata: {{name: t}}
rollback: {{scope: [code]}}
inputs:
  artifacts:
    - {{id: snapshot, check: {{path: "{tmp_path}/snapshot"}}, remediation: use_backup}}
    - {{id: gone, check: {{path: "{tmp_path}/gone"}}, remediation: halt}}
    - {{id: runbook, check: {{url: "{http_server}/runbook"}}, remediation: emergency_plan}}
    - {{id: no-runbook, check: {{url: "{http_server}/missing"}}, remediation: emergency_plan}}
    - {{id: scripts, check: {{argv: ["{sys.executable}", "-c", "import sys; sys.exit(3)"]}}, remediation: manual_procedure}}
    - {{id: docs}}
  decisions:
    - {{id: rollback-approved, description: Rollback approved}}
  constraints: {{window: 30m, team: [oncall]}}
steps: [{{id: code}}]
"""
    plan = parse_plan(text, path=tmp_path / "p.yaml").plan
    results = {result.input_id: result for result in await check_inputs(plan)}
    assert results["snapshot"].ok is True
    assert results["gone"].ok is False and results["gone"].remediation == "halt"
    assert results["runbook"].ok is True
    assert results["no-runbook"].ok is False and "404" in results["no-runbook"].detail
    assert results["scripts"].ok is False and "exited 3" in results["scripts"].detail
    assert results["docs"].ok is None
    assert results["rollback-approved"].ok is None and results["rollback-approved"].category == "decision"
    assert results["rollback-window"].ok is True and "30m" in results["rollback-window"].detail
    assert results["rollback-team"].ok is None


def test_variables_in_shell_command_lines_arrive_quoted(tmp_path: Path) -> None:
    evil = "$(touch /tmp/pwned); rm -rf x"
    text = f"""
metadata: {{name: t}}
rollback: {{scope: [code]}}
variables: {{release: '{evil}', plain: "3.7.2"}}
host_groups: {{web: {{hosts: [127.0.0.1]}}}}
steps:
  - id: code
    actions:
      - {{id: a, kind: ssh, group: web, command: "ln -sfn /opt/r/${{release}} /opt/current && echo ${{plain}}"}}
      - {{id: b, kind: shell, shell: true, command: "echo ${{release}}"}}
"""
    step = parse_plan(text, path=tmp_path / "p.yaml").plan.step(StepId.code)
    assert step is not None
    assert step.actions[0].command == "ln -sfn /opt/r/'$(touch /tmp/pwned); rm -rf x' /opt/current && echo 3.7.2"
    assert step.actions[1].command == "echo '$(touch /tmp/pwned); rm -rf x'"
