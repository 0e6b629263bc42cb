"""The terraform adapter: argument construction, and real runs of /usr/local/bin/terraform with a local backend and
the built-in `terraform_data` resource (no provider download); those skip when terraform is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.adapters.terraform import apply_argv, describe_argv, verify_argv
from rollback_tui.plan.actions import TerraformAction
from rollback_tui.secrets import MASK

from .util import CANARY

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None,
                                     reason="terraform is not installed (the argv tests still run)")

_MAIN_TF = """
variable "release" { type = string }
resource "terraform_data" "release" {
  input            = var.release
  triggers_replace = [var.release]
}
output "release" { value = terraform_data.release.output }
"""


def tf(**fields: Any) -> TerraformAction:
    return TerraformAction.model_validate({"kind": "terraform", "id": "infra", **fields})


def test_argv_construction() -> None:
    saved = tf(workdir="/srv/infra", plan_file="rollback.tfplan")
    assert apply_argv(saved) == ["terraform", "-chdir=/srv/infra", "apply", "-input=false", "-no-color",
                                 "rollback.tfplan"]
    assert describe_argv(saved) == ["terraform", "-chdir=/srv/infra", "show", "-no-color", "rollback.tfplan"]
    config = tf(binary="tofu", workdir="/srv/infra", var_files=["prev.tfvars"])
    assert apply_argv(config) == ["tofu", "-chdir=/srv/infra", "apply", "-input=false", "-no-color",
                                  "-auto-approve", "-var-file=prev.tfvars"]
    assert verify_argv(config) == ["tofu", "-chdir=/srv/infra", "plan", "-detailed-exitcode", "-input=false",
                                   "-no-color", "-lock=false", "-var-file=prev.tfvars"]


async def test_missing_tofu_is_a_clear_failure(tmp_path: Path, ctx: ActionContext,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = await run_safely(tf(binary="tofu", workdir=str(tmp_path)), ctx)
    assert result.error == "tofu not found on PATH: install it or use a shell action"


async def test_missing_workdir_and_plan_file(tmp_path: Path, ctx: ActionContext) -> None:
    result = await run_safely(tf(workdir=str(tmp_path / "nope")), ctx)
    assert result.status == "failed" and "does not exist" in result.error
    result = await run_safely(tf(workdir=str(tmp_path), plan_file="gone.tfplan"), ctx)
    assert result.status == "failed" and "gone.tfplan does not exist" in result.error


@pytest.fixture
def infra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration whose state says release 2.4.0 (the bad one) was applied; previous.tfvars holds 2.3.1."""
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(rc))
    workdir = tmp_path / "infra"
    workdir.mkdir()
    (workdir / "main.tf").write_text(_MAIN_TF)
    (workdir / "previous.tfvars").write_text('release = "2.3.1"\n')
    (workdir / "current.tfvars").write_text('release = "2.4.0"\n')
    terraform(workdir, "apply", "-auto-approve", "-input=false", "-var-file=current.tfvars")
    return workdir


def terraform(workdir: Path, *args: str) -> str:
    done = subprocess.run(["terraform", f"-chdir={workdir}", *args, "-no-color"], capture_output=True, text=True,
                          check=True)
    return done.stdout


@needs_terraform
async def test_apply_saved_plan_then_verify(infra: Path, ctx: ActionContext, collected: Any) -> None:
    terraform(infra, "plan", "-input=false", "-var-file=previous.tfvars", "-out=rollback.tfplan")
    act = tf(workdir=str(infra), plan_file="rollback.tfplan", var_files=["previous.tfvars"])
    description = await describe_safely(act, ctx)
    assert "  terraform_data.release must be replaced" in description.details[1:], description.details
    assert description.details[0].startswith("Plan: 1 to add, 0 to change, 1 to destroy")
    assert "destroys 1 resource(s)" in description.risks
    before = await verify_safely(act, ctx)
    assert not before[0].ok and "terraform_data.release differs in input" in before[0].observed
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert result.details["summary"].startswith("Apply complete! Resources: 1 added, 0 changed, 1 destroyed")
    assert "Apply complete!" in collected.text
    assert terraform(infra, "output", "-raw", "release") == "2.3.1"
    after = await verify_safely(act, ctx)
    assert after[0].ok and after[0].observed == "1 resource(s) as planned"


@needs_terraform
async def test_apply_previous_configuration(infra: Path, ctx: ActionContext) -> None:
    act = tf(workdir=str(infra), var_files=["previous.tfvars"])
    description = await describe_safely(act, ctx)
    assert any("-auto-approve" in risk for risk in description.risks)
    assert (await run_safely(act, ctx)).ok
    assert terraform(infra, "output", "-raw", "release") == "2.3.1"
    assert (await verify_safely(act, ctx))[0].ok
    drift = await verify_safely(tf(workdir=str(infra), var_files=["current.tfvars"]), ctx)
    assert not drift[0].ok


@needs_terraform
async def test_stale_saved_plan_fails_with_advice(infra: Path, ctx: ActionContext) -> None:
    terraform(infra, "plan", "-input=false", "-var-file=previous.tfvars", "-out=rollback.tfplan")
    (infra / "other.tfvars").write_text('release = "2.5.0"\n')
    terraform(infra, "apply", "-auto-approve", "-input=false", "-var-file=other.tfvars")
    result = await run_safely(tf(workdir=str(infra), plan_file="rollback.tfplan"), ctx)
    assert result.status == "failed"
    assert "stale" in result.error
    assert terraform(infra, "output", "-raw", "release") == "2.5.0"


@needs_terraform
async def test_broken_configuration_is_a_failed_check(infra: Path, ctx: ActionContext) -> None:
    (infra / "broken.tf").write_text("resource {")
    checks = await verify_safely(tf(workdir=str(infra), var_files=["previous.tfvars"]), ctx)
    assert not checks[0].ok and "plan failed (exit 1)" in checks[0].observed


@needs_terraform
async def test_secret_in_terraform_output_is_masked(infra: Path, ctx: ActionContext, collected: Any) -> None:
    (infra / "secret.tfvars").write_text(f'release = "{CANARY}"\n')
    act = tf(workdir=str(infra), var_files=["secret.tfvars"])
    description = await describe_safely(act, ctx)
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    checks = await verify_safely(act, ctx)
    # descriptions are masked by describe_safely; the rest by the session's record path (ctx.redactor)
    recorded = ctx.redactor("\n".join([collected.text, str(result.details), *(check.observed for check in checks)]))
    shown = "\n".join([recorded, description.summary, *description.details, *description.risks])
    assert CANARY not in shown and MASK in ctx.redactor(collected.text)  # it was printed, and masked


@needs_terraform
async def test_saved_plan_is_verified_against_its_own_values_not_the_working_configuration(
        infra: Path, ctx: ActionContext) -> None:
    # the working directory's default variables still say the bad release: planning the configuration again
    # would call a correct rollback drift
    (infra / "terraform.tfvars").write_text('release = "2.4.0"\n')
    terraform(infra, "plan", "-input=false", "-var-file=previous.tfvars", "-out=rollback.tfplan")
    act = tf(workdir=str(infra), plan_file="rollback.tfplan")
    before = await verify_safely(act, ctx)
    assert not before[0].ok and "terraform_data.release differs in input" in before[0].observed, before
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    after = await verify_safely(act, ctx)
    assert after[0].ok, after
    assert after[0].check == "terraform state against saved plan rollback.tfplan"
    assert after[0].observed == "1 resource(s) as planned"
    config = await verify_safely(tf(workdir=str(infra)), ctx)  # what the old verify did: a false red
    assert not config[0].ok
    terraform(infra, "apply", "-auto-approve", "-input=false", "-var-file=current.tfvars")  # someone re-applies
    drift = await verify_safely(act, ctx)
    assert not drift[0].ok and "terraform_data.release differs in" in drift[0].observed
    (infra / "rollback.tfplan").unlink()
    gone = await verify_safely(act, ctx)
    assert not gone[0].ok and "configuration is not available" in gone[0].observed


@needs_terraform
async def test_cli_configuration_warnings_stay_out_of_errors(infra: Path, ctx: ActionContext, collected: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(infra / "no-such-terraformrc"))  # as on this machine's image
    (infra / "broken.tf").write_text('resource "terraform_data" "x" { nope = 1 }\n')
    result = await run_safely(tf(workdir=str(infra), var_files=["previous.tfvars"]), ctx)
    assert result.status == "failed"
    assert "Error: Unsupported argument" in result.error and "CLI configuration" not in result.error, result.error
    checks = await verify_safely(tf(workdir=str(infra), var_files=["previous.tfvars"]), ctx)
    assert "Error: Unsupported argument" in checks[0].observed and "CLI configuration" not in checks[0].observed
    shown = [(stream, line) for _, stream, line in collected.lines]
    assert any(stream == "info" and "Unable to open CLI configuration file" in line for stream, line in shown), shown
    assert any(stream == "stderr" and "Error: Unsupported argument" in line for stream, line in shown), shown
    assert not any(stream == "stderr" and "CLI configuration" in line for stream, line in shown)
