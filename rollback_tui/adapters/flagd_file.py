"""flagd flag-definition files, JSON or YAML: bounded parsing, positions for messages, writing in the same format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rollback_tui.adapters.config import read_bytes
from rollback_tui.errors import AdapterError
from rollback_tui.plan.yamlpos import StrictLoader, YamlDocument

MAX_BYTES = 4 * 1024 * 1024  # a flag file is hostile input; real ones are a few kilobytes
_FIX = "fix the file (nothing was changed), or restore it from the deployment snapshot"


def is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _text(path: Path) -> str:
    data = read_bytes(path, "flagd file")
    if len(data) > MAX_BYTES:
        raise AdapterError(f"{path}: {len(data)} bytes, more than the {MAX_BYTES} accepted for a flagd file",
                           hint=_FIX)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AdapterError(f"{path}: not UTF-8 text, so not a flagd file") from None


def _refuse_aliases(path: Path, text: str) -> None:
    """YAML anchors and aliases can expand a small file into a huge document: a flag file has no use for them."""
    try:
        for event in yaml.parse(text, Loader=StrictLoader):
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor:
                mark = event.start_mark
                raise AdapterError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML anchor or alias "
                                   f"{'*' if isinstance(event, yaml.AliasEvent) else '&'}{anchor}: not accepted in "
                                   "a flagd file", hint="write the value out in full")
    except yaml.YAMLError:
        return  # the parse below reports it with its position


def load_flagd(path: Path) -> dict[str, Any]:
    """Parse a flagd flag-definition file (YAML by suffix, else JSON); errors are reported as path:line:col."""
    text = _text(path)
    if is_yaml(path):
        _refuse_aliases(path, text)
        document = YamlDocument(text)
        if document.problems:
            problem = document.problems[0]
            raise AdapterError(f"{path}:{problem.line}:{problem.col}: not valid flagd YAML: {problem.message}",
                               hint=_FIX)
        doc = document.data
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdapterError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", hint=_FIX) from None
        except RecursionError:
            raise AdapterError(f"{path}: JSON nested too deeply", hint=_FIX) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("flags"), dict):
        raise AdapterError(f"{path}: no top-level 'flags' object: not a flagd flag-definition file")
    return doc


def dump_flagd(path: Path, doc: dict[str, Any]) -> bytes:
    """The document in the file's own format: YAML stays YAML (block style, key order kept), JSON indent 2."""
    if is_yaml(path):
        # SafeDumper quotes strings such as 'on'/'off' that YAML 1.1 readers would take for booleans
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False).encode()
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def where(path: Path, keys: tuple[Any, ...]) -> str:
    """`path:line:col` of a value inside the file (JSON is read as YAML for positions); `path` if unknown."""
    try:
        document = YamlDocument(_text(path))
    except (AdapterError, RecursionError):
        return str(path)
    if document.problems and document.data is None:
        return str(path)
    line, col = document.positions.value(keys)
    return f"{path}:{line}:{col}"
