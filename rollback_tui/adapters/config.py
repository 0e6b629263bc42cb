"""Configuration adapters: restore files from a snapshot, and roll a `.env` file back key by key."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.httputil import looks_secret, mask_credentials
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import ConfigFilesAction, EnvFileAction
from rollback_tui.secrets import MASK

_DIFF_LIMIT = 200  # diff lines shown per file; the rest is summarised


# ---------------------------------------------------------------- file helpers shared with flags.py


def resolve_path(ctx: ActionContext, raw: str) -> Path:
    """A plan path: `~` expanded; relative paths are taken from ctx.extra['base_dir'] (the plan's folder) or cwd."""
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(ctx.extra.get("base_dir") or Path.cwd()) / path
    return path


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_bytes(path: Path, what: str) -> bytes:
    """Read a file or raise an AdapterError that names it and says what to do."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AdapterError(f"{what} {path} does not exist", hint="fix the path in the plan") from None
    except OSError as exc:
        raise AdapterError(f"cannot read {what} {path}: {exc.strerror}") from None


def backup_file(path: Path, backup_dir: Path | None, stamp: str) -> Path:
    """Copy the current file (metadata kept) to `<dir>/<name>.rollback-backup-<stamp>`; never overwrite one."""
    folder = backup_dir if backup_dir is not None else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{path.name}.rollback-backup-{stamp}"
        counter = 1
        while target.exists():
            target = folder / f"{path.name}.rollback-backup-{stamp}-{counter}"
            counter += 1
        shutil.copy2(path, target)
    except OSError as exc:
        raise AdapterError(f"cannot back up {path} into {folder}: {exc.strerror}",
                           hint="nothing was changed; fix the backup location or its permissions") from None
    return target


def atomic_write(path: Path, data: bytes, *, like: Path | None = None, mode: int | None = None) -> None:
    """Write via a temp file in the same folder and os.replace, keeping mode (and owner) of `like` or `mode`."""
    path = Path(os.path.realpath(path))  # a symlinked config is written through, the link stays
    stat = None
    if like is not None and like.exists():
        stat = like.stat()
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".rollback-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if stat is not None:
            os.chmod(tmp_name, stat.st_mode & 0o7777)
            try:
                os.chown(tmp_name, stat.st_uid, stat.st_gid)
            except PermissionError:
                pass  # not root: the file keeps our owner, which is the best we can do
        elif mode is not None:
            os.chmod(tmp_name, mode & 0o7777)
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise AdapterError(f"cannot write {path}: {exc.strerror}") from None
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the data itself is already synced


# ---------------------------------------------------------------- config_files


def _text(data: bytes) -> list[str] | None:
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def file_diff(ctx: ActionContext, live: Path, current: bytes | None, snapshot: Path, target: bytes) -> list[str]:
    """A unified diff of the live file against its target, credentials masked, long diffs shortened."""
    if current == target:
        return [f"{live}: already matches the snapshot (sha256 {hashlib.sha256(target).hexdigest()[:12]})"]
    old = [] if current is None else _text(current)
    new = _text(target)
    if old is None or new is None:
        size = "missing" if current is None else f"{len(current)} bytes"
        return [f"{live}: binary file, {size} -> {len(target)} bytes from {snapshot}"]
    label = f"{live} (live)" if current is not None else f"{live} (does not exist yet)"
    diff = list(difflib.unified_diff(old, new, fromfile=label, tofile=f"{snapshot} (snapshot)", lineterm=""))
    if len(diff) > _DIFF_LIMIT:
        diff = diff[:_DIFF_LIMIT] + [f"… {len(diff) - _DIFF_LIMIT} more diff lines"]
    # mask the content after the one-character diff marker, so `-password = x` is seen as `password = x`
    body = [line if line.startswith(("---", "+++", "@@")) or not line else line[0] + mask_credentials(line[1:])
            for line in diff]
    return body


class ConfigFilesAdapter:
    """Restores files from the deployment snapshot: backup first, atomic write, mode kept, sha256 verified."""

    kind: ClassVar[str] = "config_files"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    def _pairs(self, action: ConfigFilesAction, ctx: ActionContext) -> list[tuple[Path, Path]]:
        return [(resolve_path(ctx, item.path), resolve_path(ctx, item.snapshot)) for item in action.files]

    async def describe(self, action: ConfigFilesAction, ctx: ActionContext) -> Description:
        details: list[str] = []
        risks: list[str] = []
        differ = 0
        for live, snapshot in self._pairs(action, ctx):
            if not snapshot.is_file():
                risks.append(f"snapshot {snapshot} does not exist: {live} cannot be restored")
                continue
            target = read_bytes(snapshot, "snapshot")
            current = read_bytes(live, "config file") if live.exists() else None
            if current != target:
                differ += 1
            if live.is_symlink():
                risks.append(f"{live} is a symlink: the file it points to is rewritten")
            details.extend(file_diff(ctx, live, current, snapshot, target))
        where = action.backup_dir or "next to each file"
        summary = f"restore {len(action.files)} file(s) from the snapshot ({differ} differ); backups {where}"
        return Description(summary, details, risks)

    async def run(self, action: ConfigFilesAction, ctx: ActionContext) -> ActionResult:
        pairs = self._pairs(action, ctx)
        # read every snapshot before touching anything: a missing one must not leave a half-restored set
        targets = [read_bytes(snapshot, "snapshot") for _, snapshot in pairs]
        backup_dir = resolve_path(ctx, action.backup_dir) if action.backup_dir else None
        stamp = utc_stamp()
        backups: dict[str, str] = {}
        restored: list[str] = []
        unchanged: list[str] = []
        for (live, snapshot), target in zip(pairs, targets):
            current = read_bytes(live, "config file") if live.exists() else None
            if current == target:
                unchanged.append(str(live))
                ctx.log(f"{live}: already matches {snapshot}; not touched")
                continue
            if current is not None:
                backup = backup_file(live, backup_dir, stamp)
                backups[str(live)] = str(backup)
                ctx.log(f"{live}: backed up to {backup}")
            atomic_write(live, target, like=live if current is not None else snapshot)
            restored.append(str(live))
            ctx.log(f"{live}: restored from {snapshot} (sha256 {hashlib.sha256(target).hexdigest()[:12]})")
        return ActionResult("ok", details={"restored": restored, "unchanged": unchanged, "backups": backups})

    async def verify(self, action: ConfigFilesAction, ctx: ActionContext) -> list[CheckResult]:
        checks = []
        for live, snapshot in self._pairs(action, ctx):
            expected = sha256_file(snapshot) if snapshot.is_file() else None
            observed = sha256_file(live) if live.is_file() else None
            checks.append(CheckResult(
                check=f"sha256 of {live}",
                expected=f"{expected[:16]} (snapshot {snapshot})" if expected else f"snapshot {snapshot} (missing)",
                observed=observed[:16] if observed else "file missing",
                ok=expected is not None and expected == observed,
            ))
        return checks


# ---------------------------------------------------------------- env_file

_ENV_LINE = re.compile(r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<raw>.*)$")
_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]*")


@dataclass
class EnvLine:
    """One line of a `.env` file; `key` is None for comments and blank lines."""

    text: str
    key: str | None = None
    value: str | None = None
    lead: str = ""
    raw: str = ""


def parse_value(raw: str) -> str:
    """The value of `KEY=raw` as dotenv loaders read it: quotes removed, inline ` # comment` dropped."""
    raw = raw.strip()
    if raw[:1] == "'":
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 else raw[1:]
    if raw[:1] == '"':
        out: list[str] = []
        index = 1
        while index < len(raw) and raw[index] != '"':
            if raw[index] == "\\" and index + 1 < len(raw):
                index += 1
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(raw[index], raw[index]))
            else:
                out.append(raw[index])
            index += 1
        return "".join(out)
    match = re.search(r"\s#", raw)
    return (raw[: match.start()] if match else raw).rstrip()


def format_value(value: str) -> str:
    """Quote a value so every dotenv reader (and a shell) reads it back unchanged."""
    if _BARE.fullmatch(value):
        return value
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "\\$")
    return f'"{escaped}"'


def parse_env(text: str) -> list[EnvLine]:
    lines = []
    for line in text.splitlines():
        match = _ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            raw = match.group("raw")
            lines.append(EnvLine(line, match.group("key"), parse_value(raw), match.group("lead"), raw))
        else:
            lines.append(EnvLine(line))
    return lines


def env_values(lines: list[EnvLine]) -> dict[str, str]:
    """KEY -> value; a repeated key counts with its last value, as dotenv loaders do."""
    return {line.key: line.value or "" for line in lines if line.key is not None}


@dataclass
class EnvTarget:
    value: str
    raw: str  # text after `=`: the snapshot's own quoting, or ours for explicit values


class EnvFileAdapter:
    """Sets, restores and removes keys of a `.env` file; comments, order and other keys stay as they are."""

    kind: ClassVar[str] = "env_file"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    def _targets(self, action: EnvFileAction, ctx: ActionContext) -> dict[str, EnvTarget]:
        targets: dict[str, EnvTarget] = {}
        if action.snapshot:
            snapshot = resolve_path(ctx, action.snapshot)
            text = read_bytes(snapshot, "env snapshot").decode("utf-8", errors="replace")
            for line in parse_env(text):
                if line.key is not None:
                    targets[line.key] = EnvTarget(line.value or "", line.raw.strip())
        for key, template in action.values.items():
            value = ctx.expand(template)
            targets[key] = EnvTarget(value, format_value(value))
        both = sorted(set(targets) & set(action.remove))
        if both:
            raise AdapterError(f"env_file action {action.id}: key(s) {', '.join(both)} are both set and removed",
                               hint="keep each key in only one of snapshot/values and remove")
        return targets

    def _show(self, ctx: ActionContext, key: str, value: str | None) -> str:
        if value is None:
            return "(absent)"
        if looks_secret(key) or ctx.redactor(value) != value:
            return MASK
        return repr(value) if value == "" or value != value.strip() else value

    def _current(self, path: Path) -> tuple[list[EnvLine], bool]:
        if not path.exists():
            return [], False
        return parse_env(read_bytes(path, "env file").decode("utf-8", errors="replace")), True

    async def describe(self, action: EnvFileAction, ctx: ActionContext) -> Description:
        path = resolve_path(ctx, action.path)
        targets = self._targets(action, ctx)
        lines, exists = self._current(path)
        current = env_values(lines)
        details: list[str] = []
        same: list[str] = []
        for key, target in targets.items():
            old = current.get(key)
            if old == target.value:
                same.append(key)
                continue
            old_text, new_text = self._show(ctx, key, old), self._show(ctx, key, target.value)
            note = " (value changes)" if old_text == new_text == MASK else ""
            details.append(f"{key}: {old_text} -> {new_text}{note}")
        for key in action.remove:
            if key in current:
                details.append(f"{key}: {self._show(ctx, key, current[key])} -> (removed)")
            else:
                same.append(key)
        if same:
            details.append(f"already as wanted: {', '.join(same)}")
        changes = len(targets) + len(action.remove) - len(same)
        risks = [] if exists else [f"{path} does not exist: it will be created"]
        return Description(f"{path}: {changes} key(s) change; backup kept", details, risks)

    async def run(self, action: EnvFileAction, ctx: ActionContext) -> ActionResult:
        path = resolve_path(ctx, action.path)
        targets = self._targets(action, ctx)
        lines, exists = self._current(path)
        current = env_values(lines)
        remove = set(action.remove)
        out: list[str] = []
        written: set[str] = set()
        for line in lines:
            if line.key in remove:
                continue
            if line.key is not None and line.key in targets:
                out.append(f"{line.lead}{line.key}={targets[line.key].raw}")
                written.add(line.key)
            else:
                out.append(line.text)
        appended = [key for key in targets if key not in written]
        out.extend(f"{key}={targets[key].raw}" for key in appended)
        changed = [key for key, target in targets.items() if current.get(key) != target.value]
        removed = [key for key in action.remove if key in current]
        if not changed and not removed:
            ctx.log(f"{path}: every key already as wanted; not touched")
            return ActionResult("ok", details={"changed": [], "removed": [], "backup": None})
        backup = None
        if exists:
            backup = str(backup_file(path, None, utc_stamp()))
            ctx.log(f"{path}: backed up to {backup}")
        atomic_write(path, ("\n".join(out) + "\n").encode(), like=path if exists else None, mode=0o600)
        for key in changed:
            ctx.log(f"{path}: {key} = {self._show(ctx, key, targets[key].value)}")
        for key in removed:
            ctx.log(f"{path}: {key} removed")
        return ActionResult("ok", details={"changed": changed, "removed": removed, "appended": appended,
                                           "backup": backup})

    async def verify(self, action: EnvFileAction, ctx: ActionContext) -> list[CheckResult]:
        path = resolve_path(ctx, action.path)
        targets = self._targets(action, ctx)
        lines, exists = self._current(path)
        current = env_values(lines)
        checks = []
        for key, target in targets.items():
            observed = current.get(key)
            ok = observed == target.value
            if self._show(ctx, key, target.value) == MASK:
                seen = "(absent)" if observed is None else f"{MASK} ({'matches' if ok else 'differs'})"
                checks.append(CheckResult(f"{key} in {path}", f"{MASK} (target value)", seen, ok))
            else:
                checks.append(CheckResult(f"{key} in {path}", self._show(ctx, key, target.value),
                                          self._show(ctx, key, observed), ok))
        for key in action.remove:
            checks.append(CheckResult(f"{key} in {path}", "(absent)",
                                      "(absent)" if key not in current else "present", key not in current))
        if not exists and not checks:
            checks.append(CheckResult(f"{path}", "exists", "missing", False))
        return checks
