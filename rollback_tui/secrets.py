"""Secrets: resolved lazily from env or files, and one redaction stage that masks them everywhere."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

from rollback_tui.errors import RollbackError
from rollback_tui.safeio import FileRefused, read_regular

MASK = "•••"
SECRET_REF = re.compile(r"\$\{secrets\.([A-Za-z_][A-Za-z0-9_-]*)\}")
_MIN_LEN = 4  # shorter values would mask ordinary words; they are rejected when resolved


class SecretUnavailable(RollbackError):
    """A declared secret could not be read (variable unset, file missing)."""


def _forms(value: str) -> set[str]:
    """The value and the encodings in which it commonly leaks: base64 (three alignments), URL-encoded."""
    forms = {value, quote(value, safe=""), quote_plus(value)}
    raw = value.encode()
    for prefix in (b"", b"\0", b"\0\0"):
        encoded = base64.b64encode(prefix + raw).decode()
        # drop the characters that depend on the unknown neighbours at either end
        skip = {0: 0, 1: 2, 2: 3}[len(prefix)]
        core = encoded[skip:].rstrip("=")
        core = core[: len(core) - 2] if len(core) > 8 else core
        if len(core) >= 6:
            forms.add(core)
    # `user:secret` basic-auth tokens are covered by the base64 core above
    return {form for form in forms if len(form) >= _MIN_LEN}


class Redactor:
    """Masks every known secret value (and its base64 and URL-encoded forms) in text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Start masking one more value."""
        if not value or len(value) < _MIN_LEN:
            return
        self._forms |= _forms(value)
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(form) for form in ordered))

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def lines(self, lines: Iterable[str]) -> list[str]:
        return [self(line) for line in lines]

    def __bool__(self) -> bool:
        return self._pattern is not None


class SecretStore:
    """Resolves `${secrets.NAME}` from the plan's declarations; every value read is added to the redactor."""

    def __init__(self, declared: Mapping[str, object], redactor: Redactor | None = None,
                 environ: Mapping[str, str] | None = None, base_dir: Path | None = None) -> None:
        self._declared = dict(declared)
        self._cache: dict[str, str] = {}
        self._environ = environ if environ is not None else os.environ
        self._base = base_dir or Path.cwd()
        self.redactor = redactor or Redactor()

    def names(self) -> list[str]:
        return list(self._declared)

    def get(self, name: str) -> str:
        if name in self._cache:
            return self._cache[name]
        spec = self._declared.get(name)
        if spec is None:
            raise SecretUnavailable(f"secret {name!r} is not declared under 'secrets:'")
        env = getattr(spec, "env", None)
        if env is not None:
            value = self._environ.get(env)
            if value is None:
                raise SecretUnavailable(f"secret {name!r}: environment variable {env} is not set",
                                        hint=f"export {env}=... before starting the session")
        else:
            path = Path(getattr(spec, "file"))
            path = path if path.is_absolute() else self._base / path
            try:  # a FIFO or /dev/zero named as a secret file is refused, never read for ever
                value = read_regular(path, limit=1024 * 1024, what="secret file").decode().rstrip("\r\n")
            except FileRefused as exc:
                raise SecretUnavailable(f"secret {name!r}: {exc}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise SecretUnavailable(f"secret {name!r}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                                        hint="create the file or fix the path under 'secrets:'") from None
        if len(value) < _MIN_LEN:
            raise SecretUnavailable(f"secret {name!r} is shorter than {_MIN_LEN} characters",
                                    hint="such a value cannot be masked reliably on screen")
        self._cache[name] = value
        self.redactor.add(value)
        return value

    def load_all(self) -> dict[str, SecretUnavailable]:
        """Read every declared secret now (so redaction knows them all); returns the problems by name."""
        problems: dict[str, SecretUnavailable] = {}
        for name in self._declared:
            try:
                self.get(name)
            except SecretUnavailable as exc:
                problems[name] = exc
        return problems

    def expand(self, text: str) -> str:
        """Replace every `${secrets.NAME}` in text by its value (only at the moment of use)."""
        if "${secrets." not in text:
            return text
        return SECRET_REF.sub(lambda match: self.get(match.group(1)), text)
