"""Where demo sessions live (one folder each, with a marker), which of them are final, and removing them safely."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The file that says "the demo created this folder": --clean and resume detection only trust folders with it.
MARKER = ".rollback-tui-demo"
_MARKER_MAX = 64 * 1024
_FIRST_LINE_MAX = 4 << 20  # the session_started event carries the plan outline: a few KiB, bounded anyway


def demo_parent() -> Path:
    """`$XDG_STATE_HOME/rollback-tui/demo` (default `~/.local/state/rollback-tui/demo`)."""
    state = os.environ.get("XDG_STATE_HOME") or ""
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "rollback-tui" / "demo"


@dataclass(frozen=True)
class DemoHome:
    """One demo session's folder: the sandbox, the outputs (report, journal, session files) and the marker."""

    root: Path
    sandbox: Path
    journal: Path
    report: Path
    operator: str
    keep: bool
    allowed_signers: Path | None

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def describe(self) -> dict[str, Any]:
        return {"sandbox": str(self.sandbox), "journal": str(self.journal), "report": str(self.report),
                "operator": self.operator, "keep": self.keep,
                "allowed_signers": str(self.allowed_signers) if self.allowed_signers else None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()}

    def write_marker(self) -> None:
        fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with open(fd, "w") as handle:
            json.dump(self.describe(), handle, indent=1)


def _read_regular(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file, never through a symlink; OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return os.read(fd, limit)
    finally:
        os.close(fd)


def read_home(root: Path) -> DemoHome | None:
    """The demo home at `root` if it carries a readable marker (a real file, not a symlink); None otherwise."""
    try:
        data = json.loads(_read_regular(root / MARKER, _MARKER_MAX))
        return DemoHome(root=root, sandbox=Path(data["sandbox"]), journal=Path(data["journal"]),
                        report=Path(data["report"]), operator=str(data.get("operator") or ""),
                        keep=bool(data.get("keep")), allowed_signers=Path(data["allowed_signers"])
                        if data.get("allowed_signers") else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def home_of_plan(plan_path: Path) -> DemoHome | None:
    """The demo home whose sandbox holds `plan_path` (the sandbox itself with --keep, or its parent folder)."""
    plan = Path(plan_path)
    for folder in (plan.parent, plan.parent.parent):
        home = read_home(folder)
        if home is not None and home.sandbox.resolve() == plan.parent.resolve():
            return home
    return None


def session_started(journal: Path) -> dict[str, Any] | None:
    """The journal's first event (session_started) as JSON, read bounded and without following a symlink."""
    try:
        first = _read_regular(journal, _FIRST_LINE_MAX).split(b"\n", 1)[0]
        event = json.loads(first)
    except (OSError, ValueError):
        return None
    return event if isinstance(event, dict) and event.get("type") == "session_started" else None


def home_of_journal(journal: Path) -> DemoHome | None:
    """The demo home of a journal whose session's plan lies in a demo sandbox (with the marker); None otherwise."""
    started = session_started(journal)
    if started is None or not isinstance(started.get("plan_path"), str):
        return None
    return home_of_plan(Path(started["plan_path"]))


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state_of(home: DemoHome) -> str:
    """`live` (a session holds its journal, or the demo that made it is still building), `final`
    (completed/aborted/partial), `resumable`, or `unstarted` (no journal and its demo is gone)."""
    from rollback_tui.engine.peek import peek_journal

    try:
        marker = json.loads(_read_regular(home.marker, _MARKER_MAX))
    except (OSError, ValueError):
        marker = {}
    try:
        peek = peek_journal(home.journal)
    except OSError:
        return "live" if _pid_alive(marker.get("pid")) else "unstarted"
    if peek.holder:
        return "live"
    if peek.final_state:
        return "final"
    return "resumable"  # a live session holds the journal's lock; the pid only matters before the journal exists


def claim(home: DemoHome) -> None:
    """Record this process as the one using the home (so --clean leaves it alone while it runs)."""
    try:
        data = json.loads(_read_regular(home.marker, _MARKER_MAX))
    except (OSError, ValueError):
        return
    data["pid"] = os.getpid()
    tmp = home.root / (MARKER + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with open(fd, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, home.marker)


def remove_tree(path: Path) -> None:
    """Remove a folder without following any symlink (a symlink itself is unlinked, never its target)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux and macOS have the fd-based one
        raise OSError("this platform's rmtree may follow symlinks: remove the demo folders by hand")
    shutil.rmtree(path)


def homes() -> list[DemoHome]:
    """Every demo home under the well-known parent (real folders with a marker), newest first."""
    parent = demo_parent()
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            home = read_home(Path(entry.path))
            if home is not None and home.root.parent == parent:
                found.append((entry.stat(follow_symlinks=False).st_mtime, home))
    return [home for _, home in sorted(found, key=lambda item: item[0], reverse=True)]
