"""Ansible adapter: a playbook (or one module ad hoc) run by ansible-runner; per-host task events and results."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description, HostOutcome
from rollback_tui.adapters.ssh import host_key_risks, split_host
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import AnsibleAction
from rollback_tui.plan.models import HostGroup
from rollback_tui.record.events import HostTask

_SHOWN_HOSTS = 10
_DETAIL_MAX = 500
_RESULT_LINES = 500
"""Lines of one task's stdout (and stderr) per host recorded."""
_CHECK_LINES = 300
"""Lines of `--check --diff` output shown in the plan review."""
_SOCKET_DIR_MAX = 48
"""ssh's ControlPath is a unix socket (108 bytes with the 40-character %C and ssh's temporary suffix)."""
_STOP_WAIT = 15.0
_ALIAS_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_TASK_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"}


def _alias(spec: str, taken: set[str]) -> str:
    """An inventory name for a plan host (`10.0.0.5:2201` would be read by Ansible as host and port)."""
    base = _ALIAS_BAD.sub("_", spec) or "host"
    name, index = base, 2
    while name in taken:
        name, index = f"{base}_{index}", index + 1
    taken.add(name)
    return name


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.replace("\r\n", "\n").split("\n") if line.strip("\r ")]


def _bounded(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def _write_private(path: Path, text: str) -> None:
    """Create a file readable by its owner only (0600 from the first byte, never widened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _expand(ctx: ActionContext, value: Any, depth: int = 0) -> Any:
    if depth > 20:
        raise AdapterError("extra_vars nest deeper than 20 levels")
    if isinstance(value, str):
        return ctx.expand(value)
    if isinstance(value, list):
        return [_expand(ctx, item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {key: _expand(ctx, item, depth + 1) for key, item in value.items()}
    return value


def _processes_with(needles: list[str]) -> list[int]:
    """Processes of this machine whose command line names one of our private folders (ours, by construction)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read(65536).decode(errors="replace")
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except OSError:
            continue
        if any(needle in cmdline for needle in needles):
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie has stopped; its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


@dataclass
class _Host:
    spec: str
    started: float = 0.0
    ended: float = 0.0
    running: str = ""
    """The task started on it and not finished yet."""
    changed: int = 0
    failed_task: str = ""
    error: str = ""
    final: str = ""
    """failed or unreachable once a task said so (ansible then drops the host from the play)."""


@dataclass
class _Run:
    """One ansible-runner run: its private folder, hosts, and what its events said."""

    action: AnsibleAction
    ctx: ActionContext
    mode: str  # run | check | verify
    pdd: Path
    socket_dir: Path
    hosts: dict[str, _Host] = field(default_factory=dict)
    """Inventory name -> host (in plan order for a host group; filled from events with an inventory)."""
    stats: dict[str, Any] | None = None
    captured: list[str] = field(default_factory=list)
    """Output lines of a check or verify run (kept for the review / the checks)."""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    """The last output lines (for an error when ansible stops before any host result)."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None
    deadline: float | None = None
    """Loop time at which the run is stopped and its hosts reported (just before the action's timeout)."""
    timed_out: float = 0.0
    """Seconds the run had when it was stopped at its deadline (0: it was not)."""
    stopping: set[int] = field(default_factory=set)
    """The processes naming our folders when the run was stopped: cleanup waits for each of them to be gone."""

    def stop(self) -> None:
        """Note the processes that must end, then ask ansible-runner to stop (its cancel callback)."""
        if not self.cancelled.is_set():
            self.stopping.update(_processes_with([str(self.pdd), str(self.socket_dir)]))
        self.cancelled.set()

    def host(self, name: str) -> _Host:
        if name not in self.hosts:
            self.hosts[name] = _Host(name)
        return self.hosts[name]

    def spec(self, name: str) -> str:
        return self.hosts[name].spec if name in self.hosts else name

    # ------------------------------------------------------------ ansible-runner callbacks (its thread)

    def on_event(self, data: dict[str, Any]) -> bool:
        event = data.get("event", "")
        info = data.get("event_data") or {}
        name = info.get("host") or ""
        now = time.monotonic()
        redact = self.ctx.redactor
        if self.mode == "run" and event in _TASK_EVENTS | {"runner_on_start"} and name:
            host = self.host(name)
            host.started = host.started or now
            host.ended = now
            host.running = (info.get("task") or "") if event == "runner_on_start" else ""
        text = data.get("stdout") or ""
        if text:
            lines = redact.lines(_lines(text))
            self.tail.extend(lines)
            if self.mode == "run":
                self.ctx.log_lines(lines, host=self.spec(name) if name else "", stream="stdout")
            else:
                self.captured.extend(lines)
        if event in _TASK_EVENTS and name and self.mode == "run":
            self._host_task(event, info, name)
        elif event == "playbook_on_stats":
            self.stats = {key: dict(info.get(key) or {}) for key in
                          ("ok", "changed", "failures", "dark", "skipped", "processed", "ignored", "rescued")}
        return False  # nothing is written under the private folder's artifacts (secrets may be in results)

    def _host_task(self, event: str, info: dict[str, Any], name: str) -> None:
        result = info.get("res") if isinstance(info.get("res"), dict) else {}
        task = str(info.get("task") or info.get("task_action") or "task")
        detail = ""
        if event == "runner_on_ok":
            status = "changed" if result.get("changed") else "ok"
            self.host(name).changed += status == "changed"
        elif event == "runner_on_skipped":
            status = "skipped"
        else:
            status = "failed" if event == "runner_on_failed" else "unreachable"
            detail = _bounded(str(result.get("msg") or result.get("stderr") or result.get("module_stderr") or ""))
            if event == "runner_on_failed" and info.get("ignore_errors"):
                detail = f"(ignored) {detail}"
            else:
                host = self.host(name)
                host.failed_task, host.error, host.final = task, detail, status
        for key, stream in (("stdout_lines", "stdout"), ("stderr_lines", "stderr")):
            lines = result.get(key)
            if isinstance(lines, list) and lines:  # the module's own output (the default display omits it)
                shown = [str(line) for line in lines[:_RESULT_LINES]]
                if len(lines) > _RESULT_LINES:
                    shown.append(f"… {len(lines) - _RESULT_LINES} more lines of {stream}")
                self.ctx.log_lines(self.ctx.redactor.lines(shown), host=self.spec(name), stream=stream)
        self.ctx.event(HostTask(step=self.ctx.step, action=self.ctx.action_id, wave=self.ctx.wave,
                                host=self.spec(name), task=self.ctx.redactor(task), status=status,  # type: ignore[arg-type]
                                detail=self.ctx.redactor(detail)))

    def on_status(self, status: dict[str, Any], runner_config: Any = None) -> None:
        pid = status.get("pid") if isinstance(status, dict) else None
        if isinstance(pid, int):
            self.pid = pid


class AnsibleAdapter:
    """Kind `ansible`: ansible-runner on a host group or an inventory; a retry or a wave is `--limit`."""

    kind: ClassVar[str] = "ansible"
    capabilities: ClassVar[frozenset[str]] = frozenset({"retry_hosts"})

    # ------------------------------------------------------------ plan facts

    def _group(self, action: AnsibleAction, ctx: ActionContext) -> HostGroup | None:
        if action.hosts is None:
            return None
        try:
            return ctx.host_group(action.hosts)
        except KeyError:
            raise AdapterError(f"step {ctx.step}, action {action.id}: no host group {action.hosts!r}",
                               hint="declare it under host_groups:") from None

    def _selected(self, action: AnsibleAction, ctx: ActionContext, group: HostGroup | None) -> list[str] | None:
        """The plan hosts this run targets (None: whatever the inventory and plays say)."""
        if group is None:
            return list(ctx.only_hosts) if ctx.only_hosts is not None else None
        if ctx.only_hosts is None:
            return list(group.hosts)
        unknown = [host for host in ctx.only_hosts if host not in group.hosts]
        if unknown:
            raise AdapterError(f"step {ctx.step}, action {action.id}: hosts not in group {action.hosts!r}: "
                               + ", ".join(unknown))
        wanted = set(ctx.only_hosts)
        return [host for host in group.hosts if host in wanted]

    @staticmethod
    def _path(raw: str, what: str) -> Path:
        path = Path(raw)
        if not path.is_absolute():  # the loader makes them absolute; a plan built in code may not have been
            path = Path.cwd() / path
        if not path.exists():
            raise AdapterError(f"{what} {raw} does not exist", hint="paths are relative to the plan's folder")
        return path

    # ------------------------------------------------------------ one run

    def _prepare(self, action: AnsibleAction, ctx: ActionContext, mode: str) -> _Run:
        base = ctx.workdir if ctx.workdir.is_dir() else Path(tempfile.gettempdir())
        pdd = Path(tempfile.mkdtemp(prefix=f"ansible-{ctx.step}-{action.id}-", dir=base))
        pdd.chmod(0o700)
        socket_dir = pdd / "cp"
        if len(str(socket_dir)) > _SOCKET_DIR_MAX:
            socket_dir = Path(tempfile.mkdtemp(prefix="rbt-cp-", dir="/tmp"))
        else:
            socket_dir.mkdir(mode=0o700)
        socket_dir.chmod(0o700)
        return _Run(action, ctx, mode, pdd, socket_dir)

    def _inventory(self, run: _Run, group: HostGroup | None, selected: list[str] | None) -> tuple[str, list[str]]:
        """The inventory path, and the inventory names this run is limited to (empty: no limit)."""
        action = run.action
        if group is None:
            path = self._path(action.inventory or "", "inventory")
            return str(path), list(selected or [])
        taken: set[str] = set()
        hosts: dict[str, Any] = {}
        names: dict[str, str] = {}
        for spec in group.hosts:
            address, port = split_host(spec, group.port)
            name = _alias(spec, taken)
            names[spec] = name
            hosts[name] = {"ansible_host": address, "ansible_port": port}
        variables: dict[str, Any] = {"ansible_user": group.user, "ansible_connection": "ssh"}
        if group.key_file:
            variables["ansible_ssh_private_key_file"] = str(Path(group.key_file).expanduser())
        if action.python_interpreter:
            variables["ansible_python_interpreter"] = action.python_interpreter
        (run.pdd / "inventory").mkdir(mode=0o700)
        path = run.pdd / "inventory" / "hosts.json"
        _write_private(path, json.dumps({"all": {"hosts": hosts, "vars": variables}}))
        wanted = selected if selected is not None else list(group.hosts)
        for spec in wanted:
            run.hosts[names[spec]] = _Host(spec)
        limit = [names[spec] for spec in wanted] if run.ctx.only_hosts is not None else []
        return str(path), limit

    def _env(self, run: _Run, group: HostGroup | None) -> dict[str, str]:
        ssh = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o", "ControlPersist=30s",
               "-o", f"ControlPath={run.socket_dir}/%C"]
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "ANSIBLE_CONFIG": str(run.pdd / "ansible.cfg"),  # the plan is the whole truth: no ansible.cfg found
            "ANSIBLE_HOME": str(run.pdd / "home"),
            "ANSIBLE_LOCAL_TEMP": str(run.pdd / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_SSH_RETRIES": "0",
        }
        if group is not None:
            env["ANSIBLE_TIMEOUT"] = str(max(1, int(group.connect_timeout)))
            if group.strict_host_key_checking:
                known = Path(group.known_hosts or "~/.ssh/known_hosts").expanduser()
                ssh += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
                env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
            else:
                ssh += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
                env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
            if group.key_file:
                ssh += ["-o", "IdentitiesOnly=yes"]
            if group.jump_host:
                ssh += ["-o", f"ProxyJump={group.jump_host}"]
        env["ANSIBLE_SSH_ARGS"] = " ".join(ssh)
        _write_private(run.pdd / "ansible.cfg", "")
        return env

    def _kwargs(self, run: _Run, group: HostGroup | None, selected: list[str] | None) -> dict[str, Any]:
        action, ctx = run.action, run.ctx
        inventory, limit = self._inventory(run, group, selected)
        (run.pdd / "env").mkdir(mode=0o700)
        variables = _expand(ctx, dict(action.extra_vars))
        if group is None and action.python_interpreter:
            variables["ansible_python_interpreter"] = action.python_interpreter
        if variables:  # ansible-runner passes env/extravars as `-e @FILE`: the values never reach argv
            _write_private(run.pdd / "env" / "extravars", json.dumps(variables))
        cmdline = []
        if action.become:
            cmdline.append("--become")
            if action.become_user:
                cmdline += ["--become-user", action.become_user]
        if run.mode == "check":
            cmdline += ["--check", "--diff"]
        kwargs: dict[str, Any] = {
            "private_data_dir": str(run.pdd), "inventory": inventory, "envvars": self._env(run, group),
            "event_handler": run.on_event, "status_handler": run.on_status,
            "cancel_callback": run.cancelled.is_set, "quiet": True, "suppress_env_files": True,
            "suppress_output_file": True, "ident": "run", "settings": {"pexpect_timeout": 0.2},
        }
        forks = action.forks or (group.concurrency if group is not None else None)
        if forks:
            kwargs["forks"] = forks
        if cmdline:
            kwargs["cmdline"] = " ".join(cmdline)
        if limit:
            limit_file = run.pdd / "limit"
            _write_private(limit_file, "".join(name + "\n" for name in limit))
            kwargs["limit"] = f"@{limit_file}"
        if run.mode == "verify":
            kwargs.update(module=action.verify_module, module_args=action.verify_args or "",
                          host_pattern=action.pattern if group is None else "all")
        elif action.module is not None:
            kwargs.update(module=action.module, module_args=action.args, host_pattern=action.pattern
                          if group is None else "all")
        else:
            kwargs["playbook"] = str(self._path(action.playbook or "", "playbook"))
        return kwargs

    async def _execute(self, run: _Run, group: HostGroup | None, selected: list[str] | None) -> Any:
        """Run ansible-runner to its end; a cancellation stops it through its cancel callback, waits for it and
        re-raises. The private folder, ssh's control sockets and every process named after them go in `finally`."""
        try:
            import ansible_runner
        except ImportError:
            raise AdapterError("ansible-runner is not installed",
                               hint='pip install "rollback-tui[ansible]" (ansible-runner and ansible-core)') from None
        thread: threading.Thread | None = None
        try:
            kwargs = self._kwargs(run, group, selected)
            thread, runner = ansible_runner.run_async(**kwargs)
            try:
                loop = asyncio.get_running_loop()
                began = loop.time()
                while thread.is_alive():
                    if run.deadline is not None and loop.time() >= run.deadline and not run.cancelled.is_set():
                        run.timed_out = loop.time() - began
                        run.stop()  # ansible-runner stops it; the hosts are reported below
                        await self._join(thread)
                        break
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                run.stop()
                await self._join(thread)  # ansible-runner reads the events ansible wrote before it was stopped
                started = [run.spec(name) for name, host in run.hosts.items() if host.started]
                running = [f"{run.spec(name)} ({host.running})" for name, host in run.hosts.items() if host.running]
                run.ctx.log(f"ansible run cancelled and stopped through ansible-runner's cancel callback; hosts "
                            f"that had started: {', '.join(started) or 'none'}"
                            + (f"; tasks running then: {', '.join(running)} (a command already started on a host "
                               "may go on there)" if running else ""), stream="info")
                raise
            return runner
        finally:
            if thread is not None and thread.is_alive():
                run.stop()
                await self._join(thread)
            await self._cleanup(run)

    @staticmethod
    async def _join(thread: threading.Thread) -> None:
        end = time.monotonic() + _STOP_WAIT
        while thread.is_alive() and time.monotonic() < end:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue  # a second cancellation: the run must still be stopped before we go

    async def _cleanup(self, run: _Run) -> None:
        """Stop ssh's ControlMaster processes, then anything left naming our folders; remove the folders."""
        extravars = run.pdd / "env" / "extravars"
        try:
            extravars.unlink(missing_ok=True)
        except OSError:
            pass
        sockets = [path for path in run.socket_dir.iterdir()] if run.socket_dir.is_dir() else []
        for socket in sockets:
            try:
                proc = await asyncio.create_subprocess_exec(
                    "ssh", "-F", "/dev/null", "-o", f"ControlPath={socket}", "-O", "exit", "rollback-tui",
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL)
                await asyncio.wait_for(asyncio.shield(proc.wait()), 3.0)
            except (OSError, TimeoutError, asyncio.CancelledError):
                pass
        needles = [str(run.pdd), str(run.socket_dir)]
        # a process on its way out has no command line any more but is not gone yet: wait for it by pid
        signalled = set(run.stopping)
        left = sorted(set(_processes_with(needles)) | {pid for pid in signalled if _running(pid)})
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            signalled.update(left)
            end = time.monotonic() + wait
            while left and time.monotonic() < end:
                await asyncio.sleep(0.05)
                left = sorted(set(_processes_with(needles)) | {pid for pid in signalled if _running(pid)})
        if left:
            run.ctx.log(f"ansible cleanup: processes {', '.join(map(str, left))} would not stop", stream="info")
        shutil.rmtree(run.pdd, ignore_errors=True)
        if run.socket_dir != run.pdd / "cp":
            shutil.rmtree(run.socket_dir, ignore_errors=True)

    # ------------------------------------------------------------ results

    @staticmethod
    def _outcomes(run: _Run) -> list[HostOutcome]:
        stats = run.stats or {}
        outcomes = []
        for name, host in run.hosts.items():
            duration = max(host.ended - host.started, 0.0) if host.started else 0.0
            label = host.spec
            if name in stats.get("dark", {}):
                outcomes.append(HostOutcome(label, "unreachable", duration=duration,
                                            error=f"host {label} unreachable: {host.error or 'ssh failed'}"))
            elif name in stats.get("failures", {}):
                outcomes.append(HostOutcome(label, "failed", duration=duration,
                                            error=f"host {label}: task {host.failed_task!r} failed: {host.error}"))
            elif run.stats is None and host.final:  # stopped before the recap (a rescued failure is not final)
                outcomes.append(HostOutcome(label, host.final, duration=duration,
                                            error=f"host {label}: task {host.failed_task!r} {host.final}: {host.error}"))
            elif name in stats.get("processed", {}):
                outcomes.append(HostOutcome(label, "ok", duration=duration))
            elif run.timed_out:
                doing = f"while task {host.running!r} ran" if host.running else \
                    "before its tasks were done" if host.started else "before it started"
                outcomes.append(HostOutcome(label, "timeout", duration=duration,
                                            error=f"host {label}: stopped at the action's timeout "
                                                  f"({run.timed_out:.3g}s) {doing}"))
            elif run.cancelled.is_set():
                outcomes.append(HostOutcome(label, "cancelled", duration=duration, error=f"host {label}: cancelled"))
            else:
                outcomes.append(HostOutcome(label, "failed", duration=duration,
                                            error=f"host {label}: ansible gave no result for it (no play targets "
                                                  "it, or ansible stopped before it)"))
        return outcomes

    async def run(self, action: AnsibleAction, ctx: ActionContext) -> ActionResult:
        group = self._group(action, ctx)
        selected = self._selected(action, ctx, group)
        run = self._prepare(action, ctx, "run")
        # stop just before the runner's own timeout, so every host gets a result
        run.deadline = asyncio.get_running_loop().time() + action.timeout - min(1.0, action.timeout * 0.05)
        runner = await self._execute(run, group, selected)
        outcomes = self._outcomes(run)
        ok = sum(outcome.status == "ok" for outcome in outcomes)
        changed = sum(host.changed for host in run.hosts.values())
        details = {"hosts": action.hosts or action.inventory, "ok": ok, "total": len(outcomes),
                   "changed_tasks": changed, "ansible_rc": runner.rc, "ansible_status": runner.status}
        if run.timed_out:
            bad = [outcome for outcome in outcomes if outcome.status != "ok"]
            return ActionResult("timeout", exit_code=None, hosts=outcomes, details=details,
                                error=f"timed out after {run.timed_out:.3g}s: ansible was stopped through its cancel "
                                      f"callback; {len(bad)} of {len(outcomes)} hosts not done: "
                                      + "; ".join(outcome.error for outcome in bad[:5]))
        if run.stats is None:
            tail = "; ".join(list(run.tail)[-3:])
            return ActionResult("failed", exit_code=runner.rc, hosts=outcomes, details=details,
                                error=f"ansible stopped before any host result (status {runner.status}, rc "
                                      f"{runner.rc}){': ' + tail if tail else ''}")
        bad = [outcome for outcome in outcomes if outcome.status != "ok"]
        if not bad and runner.rc == 0:
            return ActionResult("ok", exit_code=0, hosts=outcomes, details=details)
        shown = "; ".join(outcome.error for outcome in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5
                                                                  else "")
        error = f"{len(bad)} of {len(outcomes)} hosts failed: {shown}" if bad else \
            f"ansible exited with rc {runner.rc} ({runner.status})"
        return ActionResult("failed", exit_code=runner.rc, error=error, hosts=outcomes, details=details)

    async def verify(self, action: AnsibleAction, ctx: ActionContext) -> list[CheckResult]:
        target = action.hosts and f"host group {action.hosts}" or f"inventory {action.inventory}"
        if not action.verify_args:
            return [CheckResult(f"ansible {action.id} on {target}", "a read-back (verify_args) in the plan",
                                "unverified: no verify_args; ansible's per-host task results are the only evidence",
                                True, readback="none")]
        group = self._group(action, ctx)
        run = self._prepare(action, ctx, "verify")
        run.mode = "verify"
        selected = self._selected(action, ctx, group) if group is not None else None
        runner = await self._execute(run, group, selected)
        failed = {**(run.stats or {}).get("failures", {}), **(run.stats or {}).get("dark", {})}
        processed = (run.stats or {}).get("processed", {})
        names = list(run.hosts) or list(processed)
        bad = [name for name in names if name in failed or name not in processed]
        label = f"`{action.verify_module} {action.verify_args}` on {target}"
        if run.stats is None:
            tail = "; ".join(list(run.tail)[-3:])
            return [CheckResult(label, "exit 0 on every host", f"ansible gave no result (rc {runner.rc}): {tail}",
                                False)]
        observed = (f"{len(names) - len(bad)}/{len(names)} hosts ok" if not bad else
                    f"{len(bad)} of {len(names)} hosts failed: " + ", ".join(run.spec(name) for name in bad[:10]))
        checks = [CheckResult(label, f"ok on all {len(names)} hosts", observed, not bad)]
        for name in bad[:20]:
            checks.append(CheckResult(f"`{action.verify_module} {action.verify_args}` on {run.spec(name)}", "ok",
                                      "unreachable" if name in (run.stats or {}).get("dark", {}) else "failed",
                                      False))
        return checks

    async def describe(self, action: AnsibleAction, ctx: ActionContext) -> Description:
        group = self._group(action, ctx)
        what = f"playbook {action.playbook}" if action.playbook else f"module {action.module} `{action.args}`"
        details: list[str] = []
        risks: list[str] = []
        if group is not None:
            hosts = self._selected(action, ctx, group) or []
            forks = action.forks or group.concurrency
            summary = (f"run ansible {what} on {len(hosts)} host(s) of host group {action.hosts} as {group.user}"
                       f"{' with become' if action.become else ''}, {min(forks, len(hosts))} at a time")
            shown = ", ".join(hosts[:_SHOWN_HOSTS]) + (f", and {len(hosts) - _SHOWN_HOSTS} more"
                                                       if len(hosts) > _SHOWN_HOSTS else "")
            details += [f"hosts: {shown}",
                        f"authentication: {group.key_file or 'ssh-agent, then ~/.ssh default keys'}",
                        "host keys: " + (f"checked against {group.known_hosts or '~/.ssh/known_hosts'}"
                                         if group.strict_host_key_checking else "NOT checked")]
            risks += host_key_risks(group, action.hosts or "")
        else:
            scope = f"hosts {', '.join(ctx.only_hosts)} of " if ctx.only_hosts is not None else ""
            summary = (f"run ansible {what} on {scope}inventory {action.inventory}"
                       f"{' with become' if action.become else ''}")
            details.append(f"inventory: {action.inventory} (pattern {action.pattern})" if action.module else
                           f"inventory: {action.inventory} (the playbook's plays choose the hosts)")
        if action.extra_vars:
            details.append("extra vars (in a 0600 file, never on the command line): "
                           + ", ".join(sorted(action.extra_vars)))
        if action.become:
            risks.append(f"privilege escalation: tasks run as {action.become_user or 'root'} (become: true)")
        details.append(f"read-back: `{action.verify_module} {action.verify_args}` on every host"
                       if action.verify_args else "read-back: none (no verify_args): unverified")
        if action.check_review:
            details += await self._check_review(action, ctx, group)
        return Description(summary, details, risks)

    async def _check_review(self, action: AnsibleAction, ctx: ActionContext, group: HostGroup | None) -> list[str]:
        """`--check --diff` for the plan review: what the playbook says it would change (output bounded)."""
        run = self._prepare(action, ctx, "check")
        try:
            async with asyncio.timeout(action.timeout):
                runner = await self._execute(run, group, self._selected(action, ctx, group))
        except TimeoutError:
            return [f"check mode (--check --diff): no answer within {action.timeout:g}s"]
        lines = run.captured
        head = f"check mode (--check --diff), ansible rc {runner.rc}:"
        if len(lines) > _CHECK_LINES:
            lines = lines[:_CHECK_LINES] + [f"… {len(run.captured) - _CHECK_LINES} more lines"]
        return [head, *lines]
