"""Typed plan fields and `${variables}`: the one rule that `validate` and the published JSON Schema share.

A field typed integer, number or boolean takes a YAML value of that type, or a whole `${name}` reference (the
variable's text is then read as that type); any other string is refused, as the schema refuses it (YAML 1.2:
`yes` and `on` are strings, not booleans; `"42"` is a string). Durations take their usual forms or a whole
reference. A field that chooses among fixed words (an enum, `kind`) cannot come from a variable."""

from __future__ import annotations

import enum
import re
import types
import typing
from typing import Any, Literal, Union

#: A value that is exactly one `${name}` reference (what the schema accepts for typed fields).
VAR_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_.-]*\}$"
VAR_SCHEMA: dict[str, Any] = {"type": "string", "pattern": VAR_PATTERN,
                              "description": "A whole ${variable} reference, read as this field's type."}
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class Refused:
    """A value the schema refuses for its field: pydantic then fails on it at the field's position, and the
    loader shows `message` instead of pydantic's words."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"<refused: {self.message}>"


class VarStr(str):
    """The text of a variable that stood alone as a value (`port: "${ssh_port}"`), with the variable's name."""

    name: str = ""

    def __new__(cls, value: str, name: str = "") -> VarStr:
        made = super().__new__(cls, value)
        made.name = name
        return made


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without Optional, whether it is a list of it)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
        return annotation, False
    if origin is list:
        args = typing.get_args(annotation)
        inner, _ = _unwrap(args[0]) if args else (Any, False)
        return inner, True
    return annotation, False


def _fixed_words(annotation: Any) -> bool:
    return typing.get_origin(annotation) is Literal or (isinstance(annotation, type) and issubclass(annotation, enum.Enum))


def _one(value: Any, annotation: Any, is_duration: bool) -> Any:
    try:
        return _convert(value, annotation, is_duration)
    except ValueError as exc:
        return Refused(str(exc))


def _convert(value: Any, annotation: Any, is_duration: bool) -> Any:
    if isinstance(value, VarStr):
        if _fixed_words(annotation):
            raise ValueError(f"${{{value.name}}}: this field chooses among fixed words and cannot come from a "
                             "variable; write the word itself")
        text = value.strip()
        if annotation is bool:
            if text not in ("true", "false"):
                raise ValueError(f"${{{value.name}}} is {str(value)!r}: a boolean variable must be true or false")
            return text == "true"
        if annotation is int and not is_duration:
            if not _INT.match(text) or len(text) > 30:
                raise ValueError(f"${{{value.name}}} is {str(value)!r}, not an integer")
            return int(text)
        if annotation is float and not is_duration:
            if not _FLOAT.match(text) or len(text) > 60:
                raise ValueError(f"${{{value.name}}} is {str(value)!r}, not a number")
            return float(text)
        return value
    if is_duration:
        return value
    if annotation is bool and not isinstance(value, bool):
        raise ValueError(f"expected true or false, not {value!r} (YAML 1.2: yes/no/on/off are strings)")
    if annotation in (int, float) and (isinstance(value, (str, bool))):
        kind = "an integer" if annotation is int else "a number"
        raise ValueError(f"expected {kind}, not {value!r}; a variable is written as a whole value: \"${{name}}\"")
    return value


def check_typed(value: Any, annotation: Any, metadata: list[Any]) -> Any:
    """Apply the rule above to one field's raw value (before pydantic's own validation)."""
    inner, many = _unwrap(annotation)
    is_duration = any(getattr(item, "func", None).__name__ == "parse_duration" for item in metadata
                      if getattr(item, "func", None) is not None)
    if many and isinstance(value, list):
        return [_one(item, inner, is_duration) for item in value]
    if many:
        return value
    return _one(value, inner, is_duration)
