"""allowed_signers: where it comes from (flag, env, XDG config, git) and OpenSSH's rules for reading and matching it."""

from __future__ import annotations

import base64
import binascii
import calendar
import os
import stat
import subprocess
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from rollback_tui.errors import SignatureError
from rollback_tui.report.sshsig import NAMESPACE, WireReader

ENV = "ROLLBACK_TUI_ALLOWED_SIGNERS"
MAX_BYTES = 1 << 20
"""A trust file larger than 1 MiB is refused (thousands of keys fit in far less)."""
MAX_LINE = 65_536
FORMAT_HINT = 'each line is: PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT], e.g. alice namespaces="rollback-tui" ssh-ed25519 AAAA...'
SOURCES_HINT = (f"pass --allowed-signers FILE, set {ENV}, create ~/.config/rollback-tui/allowed_signers, "
                "or set git's gpg.ssh.allowedSignersFile")


@dataclass(frozen=True)
class Source:
    path: Path
    origin: str
    """How it was found: '--allowed-signers', the env variable, the config file, or git config."""

    def describe(self) -> str:
        return f"{self.path} (from {self.origin})"


@dataclass
class Entry:
    line: int
    principals: str
    key: bytes
    namespaces: str | None = None
    valid_after: int = 0
    valid_before: int = 0
    cert_authority: bool = False


@dataclass
class AllowedSigners:
    source: Source
    entries: list[Entry] = field(default_factory=list)

    def check(self, key: bytes, principal: str, namespace: str = NAMESPACE, now: float | None = None) -> str:
        """'' when a line vouches for `key` signing as `principal` in `namespace` (ssh-keygen -Y verify's rules:
        the first line whose principals match and whose key is this key decides), else why not."""
        now = time.time() if now is None else now
        reasons: list[str] = []
        for entry in self.entries:
            if match_pattern_list(principal, entry.principals) != 1 or entry.cert_authority or entry.key != key:
                continue
            where = f"{self.source.path}:{entry.line}"
            if entry.namespaces is not None and match_pattern_list(namespace, entry.namespaces) != 1:
                reasons.append(f"{where}: the key may sign only in namespaces {entry.namespaces!r}, not {namespace!r}")
            elif entry.valid_after and now < entry.valid_after:
                reasons.append(f"{where}: the key is not valid until {_stamp(entry.valid_after)} (valid-after)")
            elif entry.valid_before and now > entry.valid_before:
                reasons.append(f"{where}: the key expired at {_stamp(entry.valid_before)} (valid-before)")
            else:
                return ""
        if not reasons:
            others = sorted({e.principals for e in self.entries if e.key == key and not e.cert_authority})
            reasons.append(f"that key is listed only for {', '.join(repr(o) for o in others)}" if others
                           else "that key is not listed at all")
        return f"{self.source.path} does not allow this key to sign as {principal!r}: {'; '.join(reasons)}"


def _stamp(when: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def match_pattern(text: str, pattern: str) -> bool:
    """OpenSSH match_pattern: `*` and `?` wildcards, nothing else special (no [classes])."""
    return fnmatchcase(text, pattern.replace("[", "[[]"))


def match_pattern_list(text: str, patterns: str) -> int:
    """OpenSSH match_pattern_list: 1 a pattern matched, -1 a negated (`!`) pattern matched, 0 none."""
    got = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        if match_pattern(text, pattern):
            if negated:
                return -1
            got = 1
    return got


# ------------------------------------------------------------------ finding the file


def _git_allowed_signers() -> Path | None:
    """git's gpg.ssh.allowedSignersFile from the user's (then the system's) git config, `~` expanded. Never a
    repository's own config: a report handed over inside a repository must not name its own trust file."""
    for scope in ("--global", "--system"):
        try:
            done = subprocess.run(["git", "config", scope, "--get", "gpg.ssh.allowedSignersFile"], capture_output=True,
                                  text=True, timeout=10, stdin=subprocess.DEVNULL, cwd="/")
        except (OSError, subprocess.SubprocessError):
            return None
        value = done.stdout.strip()
        if done.returncode == 0 and value:
            return Path(os.path.expanduser(value))
    return None


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "rollback-tui" / "allowed_signers"


def find_source(explicit: Path | None) -> Source | None:
    """The first allowed-signers source that is set: --allowed-signers, $ROLLBACK_TUI_ALLOWED_SIGNERS,
    $XDG_CONFIG_HOME/rollback-tui/allowed_signers (if it exists), git's gpg.ssh.allowedSignersFile."""
    if explicit is not None:
        return Source(Path(explicit), "--allowed-signers")
    env = os.environ.get(ENV, "")
    if env:
        return Source(Path(os.path.expanduser(env)), f"${ENV}")
    config = config_path()
    if os.path.lexists(config):
        return Source(config, "the rollback-tui config directory")
    git = _git_allowed_signers()
    if git is not None:
        return Source(git, "git config gpg.ssh.allowedSignersFile")
    return None


# ------------------------------------------------------------------ reading it


def read(source: Source) -> AllowedSigners:
    """Read and parse the whole file; SignatureError naming file:line when anything is wrong with it."""
    path = source.path
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SignatureError(f"allowed signers file {source.describe()} is not a regular file",
                                 hint="point it at a plain file")
        if info.st_size > MAX_BYTES:
            raise SignatureError(f"allowed signers file {source.describe()} is larger than {MAX_BYTES} bytes")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SignatureError(f"allowed signers file {source.describe()} is not a regular file")
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SignatureError(f"cannot read allowed signers file {source.describe()}: {exc.strerror or exc}",
                             hint=SOURCES_HINT) from None
    if len(data) > MAX_BYTES:
        raise SignatureError(f"allowed signers file {source.describe()} is larger than {MAX_BYTES} bytes")
    text = data.decode("utf-8", "replace")
    signers = AllowedSigners(source)
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE:
            raise SignatureError(f"{path}:{number}:1: line longer than {MAX_LINE} characters", hint=FORMAT_HINT)
        entry = parse_line(line, number, str(path))
        if entry is not None:
            signers.entries.append(entry)
    return signers


def _token(line: str, pos: int) -> tuple[str, int]:
    """The next whitespace-separated token from `pos`; double quotes group (and are kept), as OpenSSH's strdelim."""
    start = pos
    quoted = False
    while pos < len(line):
        char = line[pos]
        if char == "\\" and quoted and pos + 1 < len(line):
            pos += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t\r" and not quoted:
            break
        pos += 1
    if quoted:
        raise ValueError("unterminated quote")
    return line[start:pos], pos


def _skip(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t\r":
        pos += 1
    return pos


def _is_key_type(word: str) -> bool:
    return word.startswith(("ssh-", "ecdsa-", "sk-", "rsa-")) and "=" not in word and '"' not in word


def parse_line(line: str, number: int, name: str) -> Entry | None:
    """One allowed_signers line (None for blank and comment lines); SignatureError with name:line:col."""
    pos = _skip(line, 0)
    if pos >= len(line) or line[pos] == "#":
        return None
    col = pos + 1
    try:
        principals, pos = _token(line, pos)
        if len(principals) >= 2 and principals[0] == principals[-1] == '"':
            principals = principals[1:-1]
        pos = _skip(line, pos)
        col = pos + 1
        word, end = _token(line, pos)
        entry = Entry(number, principals, b"")
        if word and not _is_key_type(word):
            _options(word, entry)
            pos = _skip(line, end)
            col = pos + 1
            word, end = _token(line, pos)
        if not word:
            raise ValueError("missing key")
        pos = _skip(line, end)
        blob_text, _ = _token(line, pos)
        if not blob_text:
            raise ValueError(f"missing base64 key after {word!r}")
        col = pos + 1
        try:
            blob = base64.b64decode(blob_text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the key is not valid base64") from None
        try:
            inner = WireReader(blob).string().decode("ascii", "replace")
        except SignatureError:
            raise ValueError("the key is truncated") from None
        if inner != word:
            raise ValueError(f"the key says it is {inner!r}, the line says {word!r}")
        entry.key = blob
    except ValueError as exc:
        raise SignatureError(f"{name}:{number}:{col}: {exc}", hint=FORMAT_HINT) from None
    return entry


def _dequote(value: str) -> tuple[str, str]:
    """(value inside the leading double quotes, the rest): OpenSSH's opt_dequote."""
    if not value.startswith('"'):
        raise ValueError("missing start quote")
    out, pos = [], 1
    while pos < len(value) and value[pos] != '"':
        if value[pos] == "\\" and pos + 1 < len(value) and value[pos + 1] == '"':
            pos += 1
        out.append(value[pos])
        pos += 1
    if pos >= len(value):
        raise ValueError("missing end quote")
    return "".join(out), value[pos + 1:]


def _options(text: str, entry: Entry) -> None:
    rest = text
    while rest:
        lower = rest.lower()
        if lower.startswith("cert-authority") and lower[len("cert-authority"):][:1] in ("", ","):
            entry.cert_authority = True
            rest = rest[len("cert-authority"):]
        else:
            name = next((n for n in ("namespaces", "valid-after", "valid-before") if lower.startswith(n + "=")), "")
            if not name:
                raise ValueError(f"unsupported option {rest.split(',')[0]!r}")
            value, rest = _dequote(rest[len(name) + 1:])
            if name == "namespaces":
                if entry.namespaces is not None:
                    raise ValueError('multiple "namespaces" clauses')
                entry.namespaces = value
            else:
                attr = name.replace("-", "_")
                if getattr(entry, attr):
                    raise ValueError(f'multiple "{name}" clauses')
                setattr(entry, attr, parse_time(value, name))
        if not rest:
            break
        if rest[0] != ",":
            raise ValueError("unknown key option")
        rest = rest[1:]
        if not rest:
            raise ValueError("unexpected end-of-options")
    if entry.valid_after and entry.valid_before and entry.valid_before <= entry.valid_after:
        raise ValueError('"valid-before" time is before "valid-after"')


def parse_time(value: str, name: str) -> int:
    """OpenSSH parse_absolute_time: YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, local time unless it ends in Z."""
    utc = len(value) > 1 and value[-1] in "Zz"
    digits = value[:-1] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if len(digits) not in formats or not digits.isdigit():
        raise ValueError(f'invalid "{name}" time {value!r} (YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])')
    try:
        parsed = time.strptime(digits, formats[len(digits)])
    except ValueError:
        raise ValueError(f'invalid "{name}" time {value!r}') from None
    when = calendar.timegm(parsed) if utc else int(time.mktime(parsed))
    if when <= 0:
        raise ValueError(f'invalid "{name}" time {value!r}')
    return when
