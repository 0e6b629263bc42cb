"""User key remapping: ~/.config/rollback-tui/keymap.yaml maps binding ids to keys (strict, positioned errors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rollback_tui.ui.themes import config_dir


@dataclass
class Keymap:
    """binding id -> comma-separated keys, and the problems found reading the file."""

    keys: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def keymap_path() -> Path:
    return config_dir() / "keymap.yaml"


def parse_keymap(text: str, path: Path, known_ids: set[str]) -> Keymap:
    """Read `binding.id: "key[,key]"` lines; unknown ids and non-string keys are problems, the rest applies."""
    from rollback_tui.plan.yamlpos import YamlDocument  # only when there is a keymap file: yaml is slow to import

    out = Keymap()
    doc = YamlDocument(text)
    if doc.problems:
        out.problems += [f"{path}:{p.line}:{p.col}: {p.message}" for p in doc.problems]
        return out
    if not isinstance(doc.data, dict):
        out.problems.append(f"{path}:1:1: the keymap is a mapping of binding id to keys, e.g. 'decide.go: g'")
        return out
    for binding_id, keys in doc.data.items():
        line, col = doc.positions.key((binding_id,))
        if binding_id not in known_ids:
            out.problems.append(f"{path}:{line}:{col}: unknown binding id {binding_id!r}; "
                                f"known: {', '.join(sorted(known_ids))}")
            continue
        if not isinstance(keys, str) or not keys.strip():
            line, col = doc.positions.value((binding_id,))
            out.problems.append(f"{path}:{line}:{col}: {binding_id}: keys are a string such as 'f5' or 'g,ctrl+g'")
            continue
        out.keys[str(binding_id)] = keys.strip()
    return out


def load_keymap(known_ids: set[str] | Callable[[], set[str]], path: Path | None = None) -> Keymap:
    """The user's keymap, if there is one; `known_ids` may be a callable, then only called when there is."""
    path = path or keymap_path()
    if not path.is_file():
        return Keymap()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Keymap(problems=[f"{path}:1:1: cannot read keymap: {exc}"])
    return parse_keymap(text, path, known_ids() if callable(known_ids) else known_ids)
