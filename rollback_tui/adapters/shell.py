"""Shell adapter: a local command as an argv list (or `sh -c` only when the plan says `shell: true`)."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path
from typing import ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.proc import capture, run_process
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import ShellAction

SHELL_RISK = "runs through sh -c: variables and secrets in the command are interpreted by a shell"


def _argv(action: ShellAction) -> list[str]:
    """The command as written in the plan (secret references not expanded)."""
    if action.shell:
        return ["sh", "-c", action.command or ""]
    return list(action.argv or [])


def _status_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class ShellAdapter:
    """Kind `shell`: run a local command in its own process group; the group dies on cancel or timeout."""

    kind: ClassVar[str] = "shell"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def _cwd(self, action: ShellAction) -> str | None:
        if action.cwd is not None and not Path(action.cwd).is_dir():
            raise AdapterError(f"action {action.id}: working directory {action.cwd} does not exist",
                               hint="create it or fix 'cwd' in the plan")
        return action.cwd

    async def describe(self, action: ShellAction, ctx: ActionContext) -> Description:
        shown = f"sh -c {shlex.quote(action.command or '')}" if action.shell else shlex.join(_argv(action))
        details = [f"command: {shown}"]
        if action.cwd:
            details.append(f"working directory: {action.cwd}")
        details.extend(f"environment: {name}={value}" for name, value in sorted(action.env.items()))
        if action.expect_exit:
            details.append(f"success: exit status {action.expect_exit}")
        if action.verify_argv:
            details.append(f"read-back: {shlex.join(action.verify_argv)}")
        return Description(f"run {shown}", details, [SHELL_RISK] if action.shell else [])

    async def run(self, action: ShellAction, ctx: ActionContext) -> ActionResult:
        cwd = self._cwd(action)
        # secrets are expanded only now, element by element: an argv element never gets split or interpreted
        argv = [ctx.expand(arg) for arg in _argv(action)]
        env = {name: ctx.expand(value) for name, value in action.env.items()}
        try:
            result = await run_process(argv, lambda stream, lines: ctx.log_lines(lines, stream=stream),
                                       cwd=cwd, env=env or None)
        except FileNotFoundError:
            raise AdapterError(f"action {action.id}: cannot run {_argv(action)[0]!r}: no such program",
                               hint="check the path, or the PATH the session was started with") from None
        except PermissionError:
            raise AdapterError(f"action {action.id}: cannot run {_argv(action)[0]!r}: permission denied",
                               hint="make it executable (chmod +x)") from None
        code = result.returncode
        if code == action.expect_exit:
            return ActionResult("ok", exit_code=code)
        last = next((line for line in reversed(result.stderr_tail) if line.strip()), "")
        error = f"{_status_text(code)} (expected {action.expect_exit})" + (f": {last}" if last else "")
        return ActionResult("failed", exit_code=code, error=error)

    async def verify(self, action: ShellAction, ctx: ActionContext) -> list[CheckResult]:
        if not action.verify_argv:
            return []
        cwd = self._cwd(action)
        argv = [ctx.expand(arg) for arg in action.verify_argv]
        env = {name: ctx.expand(value) for name, value in action.env.items()}
        shown = shlex.join(action.verify_argv)
        try:
            result = await capture(argv, cwd=cwd, env=env or None, timeout=min(action.timeout, 60.0))
        except (FileNotFoundError, PermissionError) as exc:
            return [CheckResult(f"`{shown}`", "exit 0", f"cannot run: {exc.strerror}", False)]
        output = next((line for line in reversed(result.stdout_tail + result.stderr_tail) if line.strip()), "")
        observed = f"exit {result.returncode}" + (f": {output}" if output else "")
        return [CheckResult(f"`{shown}`", "exit 0", observed, result.returncode == 0)]
