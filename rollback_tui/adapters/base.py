"""The adapter contract (describe / run / verify), the context adapters get, and the safe boundary."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from rollback_tui.errors import ActionTimeout, RollbackError
from rollback_tui.plan.models import HostGroup, Plan
from rollback_tui.secrets import Redactor, SecretStore

#: What a check reads back (CheckResult.readback).
Readback = Literal["target", "safety", "none"]

#: (host, stream, lines) -> None; the session's record path masks secrets in them (and in every event).
OutputSink = Callable[[str, str, list[str]], None]
#: An event an adapter reports itself (record/events.py HostTask); journaled in order with the output, masked.
EventSink = Callable[[Any], None]


@dataclass
class HostOutcome:
    """The result of an action on one SSH host."""

    host: str
    status: str  # ok | failed | unreachable | timeout | cancelled
    exit_code: int | None = None
    duration: float = 0.0
    error: str = ""


@dataclass
class ActionResult:
    """What `run` returns. `status` is ok, failed, timeout or cancelled."""

    status: str
    exit_code: int | None = None
    error: str = ""
    hosts: list[HostOutcome] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed_hosts(self) -> list[str]:
        return [host.host for host in self.hosts if host.status != "ok"]


@dataclass
class CheckResult:
    """One read-back of real state: the evidence the operator sees before deciding."""

    check: str
    expected: str
    observed: str
    ok: bool
    category: str = "state"
    readback: Readback = "target"
    """What the check reads: `target`, the state the action was to produce (a pass is evidence that it took effect);
    `safety`, real state that must hold but does not show the action happened (integrity, row counts, a clean work
    tree); `none`, nothing (no verify_query, a webhook's status remembered from sending): shown as *unverified*.
    An action interrupted and resumed with `verify_only` is done only when a `target` check passed."""


@dataclass
class Description:
    """What an action would do: a one-line summary, detail lines (diff, SQL, argv) and risks."""

    summary: str
    details: list[str] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)


@dataclass
class ActionContext:
    """Everything an adapter may use; adapters never read globals or the environment for plan data."""

    plan: Plan
    step: str
    action_id: str
    secrets: SecretStore
    output: OutputSink = lambda host, stream, lines: None
    workdir: Path = field(default_factory=Path.cwd)
    """Session directory: backups and scratch files go here."""
    only_hosts: list[str] | None = None
    """Run on these hosts of the group only: a wave of a waved action, or a retry of failed hosts."""
    host_done: Callable[[HostOutcome], None] | None = None
    """A host-group adapter calls this as each host finishes (the engine journals it at once, so a resume after a
    crash mid-wave knows which hosts are done); the outcome is still returned in `ActionResult.hosts`."""
    wave: int = 0
    """The 1-based wave this run is (0: the action has no waves); adapters put it on the events they report."""
    event: EventSink = lambda event: None
    """Report an event (HostTask) to the session; callable from a worker thread."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def redactor(self) -> Redactor:
        return self.secrets.redactor

    def expand(self, text: str) -> str:
        """Substitute `${secrets.NAME}` at the moment of use."""
        return self.secrets.expand(text)

    def log(self, line: str, *, host: str = "", stream: str = "info") -> None:
        """Emit one line of output (secrets are masked where every event is recorded, so no adapter can forget)."""
        self.output(host, stream, [line])

    def log_lines(self, lines: list[str], *, host: str = "", stream: str = "stdout") -> None:
        if lines:
            self.output(host, stream, lines)

    def host_group(self, name: str) -> HostGroup:
        return self.plan.host_groups[name]


class Adapter(Protocol):
    """One per action kind. Every method may raise only RollbackError subclasses on purpose."""

    kind: ClassVar[str]
    #: e.g. {"retry_hosts"} when a retry can target only failed hosts; {"reversible"}.
    capabilities: ClassVar[frozenset[str]]

    async def describe(self, action: Any, ctx: ActionContext) -> Description:
        """What `run` would do; reads only (used for the plan review and dry runs)."""
        ...

    async def run(self, action: Any, ctx: ActionContext) -> ActionResult:
        """Do it, streaming output through ctx; clean up processes/channels in `finally`."""
        ...

    async def verify(self, action: Any, ctx: ActionContext) -> list[CheckResult]:
        """Read back the real state and compare it with the target; say with `readback` what each check reads."""
        ...


ADAPTERS: dict[str, str] = {
    "shell": "rollback_tui.adapters.shell:ShellAdapter",
    "ssh": "rollback_tui.adapters.ssh:SshAdapter",
    "ansible": "rollback_tui.adapters.ansible:AnsibleAdapter",
    "flagd": "rollback_tui.adapters.flags:FlagdAdapter",
    "unleash": "rollback_tui.adapters.unleash:UnleashAdapter",
    "http_flag": "rollback_tui.adapters.flags:HttpFlagAdapter",
    "git": "rollback_tui.adapters.git:GitAdapter",
    "kubectl": "rollback_tui.adapters.kube:KubectlAdapter",
    "helm": "rollback_tui.adapters.kube:HelmAdapter",
    "config_files": "rollback_tui.adapters.config:ConfigFilesAdapter",
    "env_file": "rollback_tui.adapters.config:EnvFileAdapter",
    "alembic": "rollback_tui.adapters.database:AlembicAdapter",
    "sql": "rollback_tui.adapters.database:SqlAdapter",
    "terraform": "rollback_tui.adapters.terraform:TerraformAdapter",
    "http": "rollback_tui.adapters.http:HttpAdapter",
}

_instances: dict[str, Adapter] = {}


def get_adapter(kind: str) -> Adapter:
    """The adapter for an action kind, imported lazily (asyncssh, httpx, alembic cost start-up time)."""
    if kind not in _instances:
        target = ADAPTERS.get(kind)
        if target is None:
            raise RollbackError(f"no adapter for action kind {kind!r}")
        module_name, class_name = target.split(":")
        _instances[kind] = getattr(importlib.import_module(module_name), class_name)()
    return _instances[kind]


def _message(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n  hint: ", " — ") or type(exc).__name__
    return text if isinstance(exc, RollbackError) else f"{type(exc).__name__}: {text}"


async def run_safely(action: Any, ctx: ActionContext) -> ActionResult:
    """Run an action under its timeout; anything an adapter raises becomes a failed result."""
    started = time.monotonic()
    try:
        adapter = get_adapter(action.kind)
        async with asyncio.timeout(action.timeout):
            result = await adapter.run(action, ctx)
    except TimeoutError:
        result = ActionResult("timeout", error=f"timed out after {action.timeout:g}s; its processes were stopped")
    except ActionTimeout as exc:
        result = ActionResult("timeout", error=str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the boundary: never let an adapter crash the session
        result = ActionResult("failed", error=_message(exc))
    result.duration = time.monotonic() - started
    return result


async def verify_safely(action: Any, ctx: ActionContext) -> list[CheckResult]:
    """Verify an action; an exception becomes one failed check saying why."""
    try:
        adapter = get_adapter(action.kind)
        async with asyncio.timeout(max(action.timeout, 30.0)):
            checks = await adapter.verify(action, ctx)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        checks = [CheckResult(f"{action.kind} read-back", "answer", "timed out", False)]
    except Exception as exc:
        checks = [CheckResult(f"{action.kind} read-back", "state readable", _message(exc), False)]
    return checks


async def describe_safely(action: Any, ctx: ActionContext) -> Description:
    """Describe an action; a failure to describe is itself shown (it is a risk). Descriptions are masked here:
    `rollback-tui plan` prints them without passing through the session's record path."""
    try:
        description = await get_adapter(action.kind).describe(action, ctx)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        description = Description(f"{action.kind} action {action.id}", risks=[f"cannot describe: {_message(exc)}"])
    description.summary = ctx.redactor(description.summary)
    description.details = ctx.redactor.lines(description.details)
    description.risks = ctx.redactor.lines(description.risks)
    return description
