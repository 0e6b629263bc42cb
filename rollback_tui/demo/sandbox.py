"""The demo sandbox: build its files, start its services process, and stop every process it started."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import rollback_tui
from rollback_tui.demo.build import build_all
from rollback_tui.demo.layout import PREFERRED_PORTS, Layout
from rollback_tui.errors import RollbackError

_START_TIMEOUT = 60.0  # the machine is shared and noisy: generous, and only reached when something is wrong


def _default_operator() -> str:
    from rollback_tui.frontend.options import default_operator

    return default_operator()


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes in a process group (Linux /proc; empty elsewhere)."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Sandbox:
    """A built sandbox; `start()` runs its services, `stop()` ends them all (idempotent, also at exit/SIGTERM)."""

    def __init__(self, root: Path, operator: str) -> None:
        self.layout = Layout(root)
        self.root = root
        self.operator = operator
        self.plan_path = self.layout.plan
        self.sign_key = self.layout.sign_key
        self.allowed_signers = self.layout.allowed_signers
        self.variables: dict[str, str] = {"sandbox": str(root)}
        self.ready: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._previous_sigterm: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def start(self, ports: dict[str, int] | None = None) -> Sandbox:
        """Start the services process and wait until every service answers; fills `variables` with the ports."""
        if self._proc is not None:
            return self
        wanted = {**PREFERRED_PORTS, **(ports or {})}
        self.layout.ready.unlink(missing_ok=True)
        env = dict(os.environ)
        # the services process must import this very package, installed or not
        source = str(Path(rollback_tui.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "rollback_tui.demo.services", str(self.root), "--watch-stdin",
                *(f"--{name.replace('_', '-')}={wanted[name]}" for name in PREFERRED_PORTS)]
        with open(self.layout.services_log, "ab") as log:
            # own process group: stop() kills the group, so no child can outlive the demo; stdin is the
            # lifeline: when this process dies the pipe closes and the services exit by themselves
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=self.root,
                                          env=env, start_new_session=True)
        atexit.register(self.stop)
        self._install_sigterm()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        # prom_port only when the sandbox runs Prometheus (its plan has no metrics parts otherwise)
        self.variables.update({name: str(self.ready[name]) for name in PREFERRED_PORTS if name in self.ready})
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RollbackError(f"demo: the sandbox services exited with status {self._proc.returncode}:\n"
                                    + self._log_tail(), hint=f"see {self.layout.services_log}")
            try:
                self.ready = self.layout.read_ready()
                return
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RollbackError(f"demo: the sandbox services did not start within {_START_TIMEOUT:g}s:\n"
                            + self._log_tail(), hint=f"see {self.layout.services_log}")

    def _log_tail(self) -> str:
        try:
            lines = self.layout.services_log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("  " + line for line in lines[-10:])

    def stop(self) -> None:
        """Stop the services and every process in their group; safe to call twice, from atexit or a signal."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        self._restore_sigterm()
        pgid = proc.pid
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the polite way: the services stop their children and exit
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        # whatever is left in the group (a stuck child, a killed supervisor's orphans) goes now
        self._kill_group(pgid, signal.SIGKILL)
        proc.wait()

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def pgid(self) -> int | None:
        """Process group of the services (their pid); None when not running."""
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------ SIGTERM

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _restore_sigterm(self) -> None:
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_sigterm
        self.stop()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise SystemExit(128 + signum)

    # ------------------------------------------------------------ context manager

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def build_sandbox(root: Path, *, operator: str | None = None) -> Sandbox:
    """Build a sandbox in `root` (created; must be empty if it exists) and return it, not yet started."""
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        raise RollbackError(f"demo: {root} is not empty", hint="give --keep a new or empty directory")
    operator = operator or _default_operator()
    build_all(Layout(root), operator)
    return Sandbox(root, operator)
