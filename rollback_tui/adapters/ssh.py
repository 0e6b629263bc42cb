"""SSH adapter: one command on every host of a group over asyncssh, bounded concurrency, a result per host."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, ClassVar

from rollback_tui.adapters.base import (
    ActionContext,
    ActionResult,
    CheckResult,
    Description,
    HostOutcome,
    OutputSink,
)
from rollback_tui.adapters.proc import EXIT_GRACE, LineSplitter
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import SshAction
from rollback_tui.plan.models import HostGroup
from rollback_tui.secrets import SecretStore

_CHUNK = 65536  # reading in chunks is ~1.5x faster than asyncssh's line iteration
_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
_SHOWN_HOSTS = 10


def _encryption_preference() -> list[str]:
    """asyncssh's defaults with AES-GCM first: its chacha20 runs partly in Python, AES-GCM wholly in OpenSSL."""
    from asyncssh.encryption import get_default_encryption_algs

    defaults = [alg.decode() for alg in get_default_encryption_algs()]
    fast = [alg for alg in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if alg in defaults]
    return fast + [alg for alg in defaults if alg not in fast]


def split_host(spec: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port)."""
    host, port_text = spec, ""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AdapterError(f"host {spec!r}: {port_text!r} is not a port", hint="write hosts as host or host:port")
    return host, int(port_text)


def _split_jump(spec: str, group: HostGroup) -> tuple[str, str, int]:
    user, _, rest = spec.rpartition("@")
    host, port = split_host(rest, 22)
    return user or group.user, host, port


def host_key_risks(group: HostGroup, name: str) -> list[str]:
    """Risks the plan review lists for a host group (shared with the SSH health probe)."""
    if group.strict_host_key_checking:
        return []
    return [f"host key checking is OFF for host group {name!r}: a man-in-the-middle or a replaced host "
            "would not be detected (strict_host_key_checking: false)"]


def _select(group: HostGroup, only_hosts: list[str] | None) -> list[str]:
    if only_hosts is None:
        return list(group.hosts)
    unknown = [host for host in only_hosts if host not in group.hosts]
    if unknown:
        raise AdapterError(f"retry names hosts that are not in the group: {', '.join(unknown)}")
    wanted = set(only_hosts)
    return [host for host in group.hosts if host in wanted]


class _Session:
    """Keys, known hosts and connection options loaded once for a whole fan-out (not once per host)."""

    def __init__(self, group: HostGroup) -> None:
        self.group = group
        self.known_hosts: Any = None
        self.known_hosts_path = ""
        self.keys: list[Any] = []
        self.key_source = ""
        self.options: Any = None
        self.stack = contextlib.AsyncExitStack()

    async def open(self) -> None:
        import asyncssh

        group = self.group
        if group.strict_host_key_checking:
            path = Path(group.known_hosts or "~/.ssh/known_hosts").expanduser()
            self.known_hosts_path = str(path)
            try:
                text = path.read_text() if path.exists() else ""
                self.known_hosts = asyncssh.import_known_hosts(text)
            except (OSError, ValueError) as exc:
                raise AdapterError(f"cannot read known_hosts {path}: {exc}",
                                   hint="fix the file or the host group's known_hosts path") from None
        await self._load_keys()
        self.options = asyncssh.SSHClientConnectionOptions(
            username=group.user,
            known_hosts=self.known_hosts,
            client_keys=self.keys,
            agent_path=None,  # agent keys were fetched once above; no agent connection per host
            config=None,  # the plan is the whole truth: no ~/.ssh/config surprises
            connect_timeout=group.connect_timeout,
            keepalive_interval=0,
            encryption_algs=_encryption_preference(),
        )

    async def _load_keys(self) -> None:
        import asyncssh

        if self.group.key_file:
            path = Path(self.group.key_file).expanduser()
            try:
                self.keys = list(asyncssh.load_keypairs([str(path)]))
            except (OSError, asyncssh.KeyImportError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise AdapterError(f"cannot read key_file {path}: {reason}",
                                   hint="use an unencrypted key file, or leave key_file out to use ssh-agent") from None
            self.key_source = f"key file {path}"
            return
        sources = []
        with contextlib.suppress(OSError, asyncssh.Error, ValueError):
            agent = await asyncssh.connect_agent()
            self.stack.callback(agent.close)
            agent_keys = await agent.get_keys()
            if agent_keys:
                self.keys.extend(agent_keys)
                sources.append(f"{len(agent_keys)} key(s) from ssh-agent")
        for name in _DEFAULT_KEYS:
            path = Path.home() / ".ssh" / name
            if path.exists():
                with contextlib.suppress(OSError, asyncssh.KeyImportError, ValueError):
                    loaded = asyncssh.load_keypairs([str(path)], ignore_encrypted=True)
                    if loaded:
                        self.keys.extend(loaded)
                        sources.append(str(path))
        if not self.keys:
            raise AdapterError("no SSH key to offer: ssh-agent has none and ~/.ssh has no id_ed25519/id_ecdsa/id_rsa",
                               hint="set key_file in the host group, or start ssh-agent and ssh-add a key")
        self.key_source = " and ".join(sources)

    def host_key_error(self, host: str, port: int) -> str:
        label = f"{host}:{port}"
        if self.known_hosts is not None and self.known_hosts.match(host, host, port)[0]:
            name = host if port == 22 else f"[{host}]:{port}"
            return (f"host key of {label} changed: it does not match {self.known_hosts_path} "
                    f"(possible man-in-the-middle); if the change is expected, remove the old entry with "
                    f"ssh-keygen -R '{name}' -f {self.known_hosts_path} and add the new key")
        return (f"host key of {label} is not in {self.known_hosts_path} (strict checking is on): "
                "add it with ssh-keyscan, or set strict_host_key_checking: false")

    def connect_error(self, exc: BaseException, host: str, port: int, user: str, via: str = "") -> str:
        """A readable reason for a failed connection (asyncssh's own texts are terse)."""
        import asyncssh

        label = f"{host}:{port}"
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return self.host_key_error(host, port)
        if isinstance(exc, asyncssh.PermissionDenied):
            return (f"authentication refused for {user}@{label}: the server accepted none of the offered keys "
                    f"({self.key_source})")
        if isinstance(exc, asyncssh.ChannelOpenError):
            return f"host {label} unreachable through jump host {via}: {exc.reason or 'forwarding refused'}"
        if isinstance(exc, ConnectionRefusedError):
            return f"host {label} unreachable: connection refused"
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return f"host {label} unreachable: no answer within {self.group.connect_timeout:g}s"
        if isinstance(exc, asyncssh.DisconnectError):
            return f"host {label} unreachable: {exc.reason}"
        if isinstance(exc, OSError):
            return f"host {label} unreachable: {exc.strerror or exc}"
        return f"host {label} unreachable: {type(exc).__name__}: {exc}"

    async def connect(self, host: str, port: int, tunnel: Any = None, username: str | None = None) -> Any:
        import asyncssh

        kwargs: dict[str, Any] = {"username": username} if username else {}
        return await asyncssh.connect(host, port, tunnel=tunnel, options=self.options, config=None, **kwargs)


async def _close(conn: Any) -> None:
    """Close a connection (and so every channel on it) even while the caller is being cancelled."""
    if conn is None:
        return
    conn.close()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(conn.wait_closed()), 2.0)


async def _pump(reader: Any, emit: Any) -> None:
    """Bytes in chunks, lines out; a line longer than LINE_LIMIT goes on in Continued pieces (linear, bounded)."""
    splitter = LineSplitter()
    while chunk := await reader.read(_CHUNK):
        if lines := splitter.feed(chunk):
            emit(lines)
    if lines := splitter.close():
        emit(lines)


async def _drain(process: Any, pumps: asyncio.Future[Any], note: Any) -> bool:
    """Read until the channel's output ends; once the remote command has exited, for at most EXIT_GRACE more
    seconds (a background process on the host holding its output), then stop reading and close the channel
    (returns True then)."""
    while not (await asyncio.wait({pumps}, timeout=0.05))[0]:
        if process.exit_status is not None or process.exit_signal is not None:
            if not (await asyncio.wait({pumps}, timeout=EXIT_GRACE))[0]:
                pumps.cancel()
                note(f"the command exited but its output was still open {EXIT_GRACE:g}s later (a background "
                     "process on the host holds it): channel closed, that process may still run there")
                process.close()
                await asyncio.wait({pumps})  # settles as cancelled, without raising here
                return True
            break
    return False


async def _run_host(spec: str, command: str, session: _Session, tunnel: Any, via: str, sink: OutputSink | None,
                    secrets: SecretStore, gate: asyncio.Semaphore, timeout: float | None, deadline: float | None,
                    expect_exit: int) -> HostOutcome:
    import asyncssh

    loop = asyncio.get_running_loop()
    host, port = split_host(spec, session.group.port)
    label = f"{host}:{port}"
    async with gate:
        started = time.monotonic()
        if deadline is not None and loop.time() >= deadline:
            return HostOutcome(spec, "timeout", error=f"host {label} not started: the action ran out of time")
        limits = [t for t in (deadline, loop.time() + timeout if timeout else None) if t is not None]
        end = min(limits) if limits else None
        allowed = end - loop.time() if end is not None else 0.0
        scope = asyncio.timeout_at(end)
        conn = None
        phase = "connecting"

        def emit(stream: str) -> Any:
            return lambda lines: sink(spec, stream, lines) if sink else None

        try:
            async with scope:
                try:
                    conn = await session.connect(host, port, tunnel)
                except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
                    if scope.expired():
                        raise
                    return HostOutcome(spec, "unreachable", duration=time.monotonic() - started,
                                       error=session.connect_error(exc, host, port, session.group.user, via))
                phase = "running"
                process = await conn.create_process(command, stdin=asyncssh.DEVNULL, encoding=None)
                pumps = asyncio.gather(_pump(process.stdout, emit("stdout")), _pump(process.stderr, emit("stderr")))
                try:
                    if not await _drain(process, pumps, lambda line: emit("info")([f"host {label}: {line}"])):
                        await pumps
                finally:
                    pumps.cancel()
                completed = await process.wait()
        except TimeoutError:
            return HostOutcome(spec, "timeout", duration=time.monotonic() - started,
                               error=f"host {label} timed out after {max(allowed, 0):.3g}s while {phase}; "
                                     "its channel was closed")
        except asyncssh.Error as exc:
            return HostOutcome(spec, "failed", duration=time.monotonic() - started,
                               error=f"host {label}: connection lost while {phase}: {exc.reason or exc}")
        except OSError as exc:
            return HostOutcome(spec, "failed", duration=time.monotonic() - started,
                               error=f"host {label}: failed while {phase}: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - one host's surprise must not cancel the others
            return HostOutcome(spec, "failed", duration=time.monotonic() - started,
                               error=f"host {label}: failed while {phase}: {type(exc).__name__}: {exc}")
        finally:
            await _close(conn)
        duration = time.monotonic() - started
        code = completed.exit_status
        if code is None or code < 0:
            signal_name = (completed.exit_signal or ("unknown",))[0]
            return HostOutcome(spec, "failed", None, duration, f"host {label}: command killed by signal {signal_name}")
        if code != expect_exit:
            return HostOutcome(spec, "failed", code, duration,
                               f"host {label}: exited with status {code} (expected {expect_exit})")
        return HostOutcome(spec, "ok", code, duration)


async def run_on_group(group: HostGroup, command: str, *, secrets: SecretStore, sink: OutputSink | None = None,
                       only_hosts: list[str] | None = None, concurrency: int | None = None,
                       timeout: float | None = None, expect_exit: int = 0,
                       deadline: float | None = None,
                       on_host: Callable[[HostOutcome], None] | None = None) -> list[HostOutcome]:
    """Run `command` on the group's hosts, at most `concurrency` at once; one outcome per host, in group order.

    `command` is used as given (expand secrets before calling). `sink(host, stream, lines)` gets
    the lines (the session's record path masks secrets). `timeout` limits each host (connect and command); `deadline` (loop time) ends
    the whole fan-out: hosts still queued then are reported as timed out instead of being lost. `on_host` gets each
    outcome as its host finishes.
    Cancelling the caller closes every channel and connection.
    """
    hosts = _select(group, only_hosts)
    if not hosts:
        return []
    for host in hosts:
        split_host(host, group.port)  # a malformed host fails the action up front, naming it
    session = _Session(group)
    async with session.stack:
        await session.open()
        tunnel, via = None, ""
        if group.jump_host:
            user, jump_host, jump_port = _split_jump(group.jump_host, group)
            via = f"{user}@{jump_host}:{jump_port}"
            try:
                tunnel = await session.connect(jump_host, jump_port, username=user)
            except Exception as exc:  # noqa: BLE001 - every host gets the reason, nothing crashes
                reason = session.connect_error(exc, jump_host, jump_port, user)
                return [HostOutcome(host, "unreachable", error=f"jump host {via}: {reason}") for host in hosts]
            session.stack.push_async_callback(_close, tunnel)
        gate = asyncio.Semaphore(concurrency or group.concurrency)
        async def one(host: str) -> HostOutcome:
            outcome = await _run_host(host, command, session, tunnel, via, sink, secrets, gate, timeout, deadline,
                                      expect_exit)
            if on_host is not None:
                on_host(outcome)
            return outcome

        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(one(host)) for host in hosts]
        return [task.result() for task in running]


def _summary(outcomes: list[HostOutcome]) -> str:
    bad = [outcome for outcome in outcomes if outcome.status != "ok"]
    shown = "; ".join(outcome.error or f"{outcome.host}: {outcome.status}" for outcome in bad[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"{len(bad)} of {len(outcomes)} hosts failed: {shown}{more}"


class SshAdapter:
    """Kind `ssh`: a command on a host group; a retry can target only the hosts that failed."""

    kind: ClassVar[str] = "ssh"
    capabilities: ClassVar[frozenset[str]] = frozenset({"retry_hosts"})

    def _group(self, action: SshAction, ctx: ActionContext) -> HostGroup:
        try:
            return ctx.host_group(action.group)
        except KeyError:
            raise AdapterError(f"step {ctx.step}, action {action.id}: no host group {action.group!r}",
                               hint="declare it under host_groups:") from None

    async def describe(self, action: SshAction, ctx: ActionContext) -> Description:
        group = self._group(action, ctx)
        hosts = _select(group, ctx.only_hosts)
        concurrency = action.concurrency or group.concurrency
        scope = "the failed hosts" if ctx.only_hosts is not None else "host group"
        summary = (f"run `{action.command}` on {len(hosts)} host(s) of {scope} {action.group} as {group.user}, "
                   f"{min(concurrency, len(hosts))} at a time")
        shown = ", ".join(hosts[:_SHOWN_HOSTS]) + (f", and {len(hosts) - _SHOWN_HOSTS} more"
                                                   if len(hosts) > _SHOWN_HOSTS else "")
        details = [f"hosts: {shown}",
                   f"command: {action.command}",
                   f"success: exit status {action.expect_exit} on every host",
                   f"authentication: {group.key_file or 'ssh-agent, then ~/.ssh default keys'}",
                   "host keys: " + (f"checked against {group.known_hosts or '~/.ssh/known_hosts'}"
                                    if group.strict_host_key_checking else "NOT checked")]
        if group.jump_host:
            details.append(f"through jump host {group.jump_host}")
        if action.verify_command:
            details.append(f"read-back: `{action.verify_command}` on every host")
        return Description(summary, details, host_key_risks(group, action.group))

    async def run(self, action: SshAction, ctx: ActionContext) -> ActionResult:
        group = self._group(action, ctx)
        command = ctx.expand(action.command)
        # finish just before the runner's own timeout, so queued and running hosts get a result each
        deadline = asyncio.get_running_loop().time() + action.timeout - min(1.0, action.timeout * 0.05)
        outcomes = await run_on_group(
            group, command, secrets=ctx.secrets,
            sink=lambda host, stream, lines: ctx.log_lines(lines, host=host, stream=stream),
            only_hosts=ctx.only_hosts, concurrency=action.concurrency, deadline=deadline,
            expect_exit=action.expect_exit, on_host=ctx.host_done,
        )
        for outcome in outcomes:
            status = f"exit {outcome.exit_code}" if outcome.exit_code is not None else outcome.status
            text = outcome.error or f"ok ({status})"
            ctx.log(f"{outcome.host}: {text} in {outcome.duration:.2f}s", host=outcome.host)
        ok = sum(outcome.status == "ok" for outcome in outcomes)
        details = {"group": action.group, "ok": ok, "total": len(outcomes)}
        if ok == len(outcomes):
            return ActionResult("ok", hosts=outcomes, details=details)
        return ActionResult("failed", error=_summary(outcomes), hosts=outcomes, details=details)

    async def verify(self, action: SshAction, ctx: ActionContext) -> list[CheckResult]:
        if not action.verify_command:
            return []
        group = self._group(action, ctx)
        budget = max(action.timeout, 30.0)
        deadline = asyncio.get_running_loop().time() + budget - min(1.0, budget * 0.05)
        outcomes = await run_on_group(group, ctx.expand(action.verify_command), secrets=ctx.secrets,
                                      sink=lambda host, stream, lines: ctx.log_lines(lines, host=host, stream=stream),
                                      only_hosts=ctx.only_hosts, concurrency=action.concurrency, deadline=deadline)
        ok = sum(outcome.status == "ok" for outcome in outcomes)
        observed = f"{ok}/{len(outcomes)} hosts exit 0" if ok == len(outcomes) else _summary(outcomes)
        where = f"host group {action.group}" if ctx.only_hosts is None else f"{len(outcomes)} host(s) of {action.group}"
        checks = [CheckResult(f"`{action.verify_command}` on {where}",
                              f"exit 0 on all {len(outcomes)} hosts", observed, ok == len(outcomes))]
        for outcome in [outcome for outcome in outcomes if outcome.status != "ok"][:20]:
            checks.append(CheckResult(f"`{action.verify_command}` on {outcome.host}", "exit 0",
                                      outcome.error or outcome.status, False))
        return checks
