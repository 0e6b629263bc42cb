"""Secrets: resolved lazily from env or files, and one redaction stage that masks them everywhere."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_origin
from urllib.parse import quote, quote_plus

from pydantic import BaseModel

from rollback_tui.errors import RollbackError
from rollback_tui.safeio import FileRefused, read_regular

MASK = "•••"
SECRET_REF = re.compile(r"\$\{secrets\.([A-Za-z_][A-Za-z0-9_-]*)\}")
_MIN_LEN = 4  # shorter values would mask ordinary words; they are rejected when resolved
M = TypeVar("M", bound=BaseModel)


class SecretUnavailable(RollbackError):
    """A declared secret could not be read (variable unset, file missing)."""


_LINE_MIN = 9  # each line of a multi-line secret longer than 8 characters is masked on its own too
_TOO_DEEP = "[nested too deep to check for secrets]"
_DEPTH = 64


def _b64_cores(raw: bytes) -> set[str]:
    """The part of raw's base64 that is the same wherever raw sits in a larger blob (the three alignments)."""
    cores = set()
    for skip_bytes, skip_chars in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * skip_bytes + raw).decode().rstrip("=")
        # the last character depends on the unknown byte after raw unless the groups end exactly with it
        tail = 0 if (skip_bytes + len(raw)) % 3 == 0 else 1
        core = encoded[skip_chars:len(encoded) - tail]
        if len(core) >= 6:
            cores.add(core)
    return cores


def _json_forms(value: str) -> set[str]:
    """JSON string escapes: Python's and pydantic's, every character `\\u`-escaped (both cases), HTML-safe, `\\/`."""
    ascii_form = json.dumps(value)[1:-1]
    forms = {ascii_form, json.dumps(value, ensure_ascii=False)[1:-1], ascii_form.replace("/", "\\/")}
    html = ascii_form.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    forms.add(html)
    units = value.encode("utf-16-be")
    codes = [int.from_bytes(units[i:i + 2], "big") for i in range(0, len(units), 2)]
    forms.add("".join(f"\\u{code:04x}" for code in codes))
    forms.add("".join(f"\\u{code:04X}" for code in codes))
    return forms


def _forms(value: str) -> set[str]:
    """The value and the encodings in which it commonly leaks: base64 and base64url (whole, with and without
    padding, and the alignment-independent core inside a larger blob), URL-encoded (quote, quote_plus, both hex
    cases), hex (both cases) and JSON escapes."""
    raw = value.encode()
    forms = {value, raw.hex(), raw.hex().upper()}
    for url in {quote(value, safe=""), quote(value), quote_plus(value)}:
        forms.add(url)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda match: match.group(0).lower(), url))
    std = base64.b64encode(raw).decode()
    b64 = {std, std.rstrip("=")} | _b64_cores(raw)
    forms |= b64 | {form.replace("+", "-").replace("/", "_") for form in b64}
    forms |= _json_forms(value)
    return {form for form in forms if len(form) >= _MIN_LEN}


def _line_forms(value: str) -> set[str]:
    """For a multi-line secret (a PEM key), each of its lines longer than 8 characters, as printed line by line
    (raw, JSON-escaped, URL-encoded); the whole value gets every form."""
    if "\n" not in value and "\r" not in value:
        return set()
    forms: set[str] = set()
    for line in value.splitlines():
        line = line.strip()
        if len(line) >= _LINE_MIN:
            forms |= {line, json.dumps(line)[1:-1], quote(line, safe=""), quote_plus(line)}
    return forms


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex for many literals, as a trie: at each position the engine tests one branch per distinct next
    character (not one per word), and a longer form wins over its prefix (greedy optional tails)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def run(key: str, node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Follow a chain of single-child nodes from one edge: its characters, and the node it ends at."""
        chars = [key]
        while len(node) == 1 and "" not in node:
            (key, node), = node.items()
            chars.append(key)
        return re.escape("".join(chars)), node

    # iterative post-order walk over branch points only (a form can be thousands of characters long: no
    # recursion, and each literal run is escaped and joined once)
    compiled: dict[int, str] = {}
    stack: list[tuple[dict[str, Any], list[tuple[str, dict[str, Any]]] | None]] = [(root, None)]
    while stack:
        node, edges = stack.pop()
        if edges is None:
            edges = [run(key, child) for key, child in sorted(node.items()) if key]
            stack.append((node, edges))
            stack.extend((end, None) for _, end in edges if id(end) not in compiled)
            continue
        branches = [text + compiled[id(end)] for text, end in edges]
        terminal = "" in node
        if not branches:
            compiled[id(node)] = ""
        elif len(branches) == 1 and not terminal:
            compiled[id(node)] = branches[0]
        else:
            group = "(?:" + "|".join(branches) + ")"
            compiled[id(node)] = group + "?" if terminal else group
    return compiled[id(root)]


class Redactor:
    """Masks every known secret value (and its encoded forms, and each line of a multi-line one) in text, and
    every string of an event. One compiled pattern for all forms, rebuilt only when a secret is added."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._re: re.Pattern[str] | None = None
        self.longest = 0
        """Length of the longest masked form: output split at a smaller distance could cut one in two."""
        self._fields: dict[type, tuple[str, ...]] = {}
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Start masking one more value."""
        if not value or len(value) < _MIN_LEN or value in self._values:
            return
        self._values.add(value)
        self._forms |= _forms(value) | _line_forms(value)
        self.longest = max(map(len, self._forms))
        self._re = None  # compiled again at the next use: adding several secrets compiles once

    @property
    def _pattern(self) -> re.Pattern[str] | None:
        """The one pattern of every form (a trie), compiled when first needed after a secret was added."""
        if self._re is None and self._forms:
            self._re = re.compile(_trie_pattern(self._forms))
        return self._re

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def lines(self, lines: Iterable[str]) -> list[str]:
        return [self(line) for line in lines]

    def __bool__(self) -> bool:
        return bool(self._forms)

    def safe_cut(self, text: str) -> int:
        """Where text (the start of a longer line) can be cut so that no masked form is split between the two
        parts: at most len(text) - (longest - 1), moved past a form that straddles that point; 0 when unsure."""
        if self._pattern is None:
            return len(text)
        limit = len(text) - (self.longest - 1)
        if limit <= 0:
            return 0
        for match in self._pattern.finditer(text):
            if match.start() >= limit:
                break
            if match.end() > limit:
                return match.end()
        return limit

    def value(self, value: Any, depth: int = 0) -> Any:
        """value with every string in it (nested dicts, lists, models; dict keys too) masked; the same object
        when nothing needed masking."""
        if isinstance(value, str):
            return self(value)
        if depth > _DEPTH:
            return _TOO_DEEP
        if isinstance(value, list):
            if len(value) > 8 and all(type(item) is str for item in value) and self._pattern is not None \
                    and not self._pattern.search("\n".join(value)):
                return value  # an output batch with no secret in it: one scan instead of one per line
            items = [self.value(item, depth + 1) for item in value]
            return value if all(a is b for a, b in zip(items, value)) else items
        if isinstance(value, tuple):
            items = [self.value(item, depth + 1) for item in value]
            return value if all(a is b for a, b in zip(items, value)) else tuple(items)
        if isinstance(value, dict):
            pairs = [(self.value(key, depth + 1), self.value(item, depth + 1)) for key, item in value.items()]
            same = all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items()))
            return value if same else dict(pairs)
        if isinstance(value, BaseModel):
            return self.model(value, depth + 1)
        return value

    def model(self, model: M, depth: int = 0) -> M:
        """A copy of a pydantic model (an event) with every free-text field masked; the model itself when clean.
        Literal fields (type, status, stream, choice) are vocabulary, never free text: they are left alone."""
        if self._pattern is None:
            return model
        fields = self._fields.get(type(model))
        if fields is None:
            fields = tuple(name for name, info in type(model).model_fields.items()
                           if get_origin(info.annotation) is not Literal)
            self._fields[type(model)] = fields
        update = {}
        for name in fields:
            current = getattr(model, name)
            masked = self.value(current, depth)
            if masked is not current:
                update[name] = masked
        return model.model_copy(update=update) if update else model


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
