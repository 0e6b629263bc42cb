"""Terraform / OpenTofu: apply a saved plan or a previous configuration; verify with `plan -detailed-exitcode`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.git import read_tool, run_tool
from rollback_tui.adapters.tfdiag import StderrClassifier, compare_planned, error_text
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import TerraformAction

#: Never prompt, never colour: output goes to the cockpit's log and the report.
_ENV = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "NO_COLOR": "1"}
_SUMMARY = re.compile(r"^(Plan|Apply complete!|Destroy complete!|No changes\.)")
_CHANGE = re.compile(r"^\s*# (\S+) (will be|must be) (.+)$")
_COUNTS = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")


def _base(action: TerraformAction) -> list[str]:
    return [action.binary, f"-chdir={action.workdir}"]


def _var_args(action: TerraformAction) -> list[str]:
    return [f"-var-file={path}" for path in action.var_files]


def apply_argv(action: TerraformAction) -> list[str]:
    """A saved plan applies exactly what was reviewed (no prompt); a configuration applies with -auto-approve,
    because the operator's go in the cockpit is the approval."""
    argv = _base(action) + ["apply", "-input=false", "-no-color"]
    if action.plan_file:
        return argv + [action.plan_file]
    return argv + ["-auto-approve", *_var_args(action)]


def verify_argv(action: TerraformAction) -> list[str]:
    """`plan -detailed-exitcode`: 0 means the infrastructure matches the configuration, 2 means drift."""
    return _base(action) + ["plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock=false",
                            *_var_args(action)]


def show_json_argv(action: TerraformAction, plan_file: str | None = None) -> list[str]:
    """`show -json` of the saved plan (its planned values), or of the current state."""
    return _base(action) + ["show", "-json", "-no-color", *([plan_file] if plan_file else [])]


def tail_text(result: Any) -> str:
    """A failed terraform command's error lines; its warnings (the CLI-configuration one above all) left out."""
    return error_text(result.stdout_tail, result.stderr_tail)


def describe_argv(action: TerraformAction) -> list[str]:
    """What would change: `show` of the saved plan, else a read-only plan of the configuration."""
    if action.plan_file:
        return _base(action) + ["show", "-no-color", action.plan_file]
    return _base(action) + ["plan", "-input=false", "-no-color", "-lock=false", *_var_args(action)]


def _plan_file_path(action: TerraformAction) -> Path:
    path = Path(action.plan_file or "")
    return path if path.is_absolute() else Path(action.workdir) / path


def _changes(lines: list[str]) -> tuple[list[str], list[str]]:
    """The `# resource will be ...` lines and the summary lines of terraform output."""
    changes = [f"{m.group(1)} {m.group(2)} {m.group(3).strip()}" for m in map(_CHANGE.match, lines) if m]
    summary = [line.strip() for line in lines if _SUMMARY.match(line.strip())]
    return changes, summary


class TerraformAdapter:
    """Runs terraform or tofu in `workdir`. The apply happens only when the runner calls `run`, i.e. after the
    operator's go; `describe` and `verify` never change anything (`-lock=false` plans)."""

    kind: ClassVar[str] = "terraform"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def _check(self, action: TerraformAction) -> None:
        if not Path(action.workdir).is_dir():
            raise AdapterError(f"terraform workdir {action.workdir} does not exist", hint="fix 'workdir' in the plan")
        if action.plan_file and not _plan_file_path(action).is_file():
            raise AdapterError(f"saved plan {_plan_file_path(action)} does not exist",
                               hint=f"create it with: {action.binary} -chdir={action.workdir} plan -out=...")

    async def describe(self, action: TerraformAction, ctx: ActionContext) -> Description:
        what = f"saved plan {action.plan_file}" if action.plan_file else "the configuration"
        summary = f"{action.binary} apply {what} in {action.workdir}"
        risks: list[str] = [] if action.plan_file else [
            "applies the configuration with -auto-approve: what changes is decided at apply time, "
            "not by a reviewed plan file"]
        details = ["$ " + " ".join(apply_argv(action))]
        try:
            self._check(action)
            result = await read_tool(describe_argv(action), env=_ENV, timeout=max(action.timeout, 30.0))
        except AdapterError as exc:
            return Description(summary, details, risks + [f"cannot preview: {exc}"])
        if result.returncode != 0:
            return Description(summary, details, risks + [f"cannot preview: {tail_text(result)}"])
        changes, plan_summary = _changes(result.stdout_tail)
        details = [*plan_summary, *("  " + change for change in changes), *details]
        counts = next((m for m in map(_COUNTS.search, plan_summary) if m), None)
        if counts and int(counts.group(3)):
            risks.append(f"destroys {counts.group(3)} resource(s)")
        if any("must be replaced" in change for change in changes):
            risks.append("replaces resources (destroy then create)")
        return Description(summary, details, risks)

    async def run(self, action: TerraformAction, ctx: ActionContext) -> ActionResult:
        self._check(action)
        details: dict[str, Any] = {"workdir": action.workdir, "binary": action.binary}
        if action.plan_file:
            details["plan_file"] = str(_plan_file_path(action))
        result = await run_tool(apply_argv(action), ctx, env=_ENV, classify=StderrClassifier())
        _, summary = _changes(result.stdout_tail)
        if summary:
            details["summary"] = summary[-1]
        if result.returncode != 0:
            hint = ""
            if any("Saved plan is stale" in line for line in result.stderr_tail + result.stdout_tail):
                hint = "; the saved plan is stale: make a new one from the previous configuration"
            return ActionResult("failed", result.returncode,
                                f"{action.binary} apply failed (exit {result.returncode}): {tail_text(result)}{hint}",
                                details=details)
        return ActionResult("ok", 0, details=details)

    async def verify(self, action: TerraformAction, ctx: ActionContext) -> list[CheckResult]:
        if not Path(action.workdir).is_dir():
            raise AdapterError(f"terraform workdir {action.workdir} does not exist")
        if action.plan_file:
            return [await self._verify_saved_plan(action)]
        result = await read_tool(verify_argv(action), env=_ENV, timeout=max(action.timeout, 30.0))
        changes, summary = _changes(result.stdout_tail)
        check = f"{action.binary} plan in {action.workdir}"
        if result.returncode == 0:
            return [CheckResult(check, "no changes", "no changes", True)]
        if result.returncode == 2:
            observed = "; ".join([*summary[-1:], *changes[:10]]) or "changes pending"
            return [CheckResult(check, "no changes", observed, False)]
        return [CheckResult(check, "no changes", f"plan failed (exit {result.returncode}): {tail_text(result)}",
                            False)]

    async def _verify_saved_plan(self, action: TerraformAction) -> CheckResult:
        """A saved plan was applied: the state must hold what that plan said, whatever the working directory's
        configuration says now (planning the configuration again would compare against something else)."""
        check = f"{action.binary} state against saved plan {action.plan_file}"
        if not _plan_file_path(action).is_file():
            return CheckResult(check, "the saved plan's values", f"saved plan {_plan_file_path(action)} is gone: "
                               "its configuration is not available to compare with", False)
        timeout = max(action.timeout, 30.0)
        documents = []
        for argv in (show_json_argv(action, action.plan_file), show_json_argv(action)):
            result = await read_tool(argv, env=_ENV, timeout=timeout)
            if result.returncode != 0:
                return CheckResult(check, "the saved plan's values",
                                   f"{' '.join(argv[2:4])} failed (exit {result.returncode}): {tail_text(result)}", False)
            try:
                documents.append(json.loads("\n".join(result.stdout_tail)))
            except ValueError:
                return CheckResult(check, "the saved plan's values", f"{' '.join(argv[2:4])}: not JSON", False)
        count, problems = compare_planned(documents[0], documents[1])
        expected = f"{count} resource(s) as planned"
        if problems:
            return CheckResult(check, expected, "; ".join(problems[:10]), False)
        return CheckResult(check, expected, expected, True)
