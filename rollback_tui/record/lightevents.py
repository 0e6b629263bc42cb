"""Output batches of a long journal kept light: the fields that are read everywhere, the lines fetched on demand.

A resumed session's journal is mostly `action_output` batches that only get counted (the fold), skipped (the
replay matches procedure events only) or copied (the report's log). `light_output` recognises a line that is
exactly what `dump_event` writes for an ActionOutput (canonical field order, UTC `Z` time, JSON strings with
only the escapes pydantic writes) with one regular expression; such a line is a valid event whose canonical
dump is the line itself, so the report can embed those bytes as they are. Anything else is parsed in full.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

_STR = rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\nrtbf]|u00(?:0[0-7]|0b|0e|0f|1[0-9a-f]))[^"\\\x00-\x1f]*)*"'
_INT = rb"-?(?:0|[1-9][0-9]*)"
_PRE = re.compile(rb'\{"schema_version":(' + _INT + rb'),"seq":(' + _INT + rb'),"ts":"([0-9]{4}-[0-9]{2}-[0-9]{2}T'
                  rb'[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.(?!000000)[0-9]{6})?)Z"')
_MIDDLE = re.compile(rb',"actor":(' + _STR + rb'),"type":"action_output","step":(' + _STR + rb'),"action":(' + _STR +
                     rb'),"host":(' + _STR + rb'),"stream":"(stdout|stderr|info)","lines":\[')
_LINES = b',"lines":['
_ARRAY = re.compile(rb'(?:' + _STR + rb'(?:,' + _STR + rb')*)?')
_CONTROLS = bytes(range(32))
#: Only lines starting like this are tried (cheap test before the expression).
PREFIX = b'{"schema_version":'
MARK = b'"type":"action_output"'
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Source:
    """Where the bytes of light events are: a read-only descriptor of the journal (its own, closed with it)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, offset: int, length: int) -> bytes:
        if self.fd < 0:
            raise OSError("the journal source is closed")
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


class Held:
    """A Source for one line held in memory (an event log read from a report: no file to read it back from)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]


def _text(raw: bytes, cache: dict[bytes, Any]) -> str:
    """A canonical JSON string's value, shared between events (step, action and host repeat a million times)."""
    value = cache.get(raw)
    if value is None:
        value = json.loads(raw) if b"\\" in raw else raw[1:-1].decode("utf-8")
        cache[raw] = value
    return value


def _count(array: bytes) -> int:
    """Strings in an already-validated JSON array body (no brackets): with the escapes taken out, every quote left
    opens or closes one."""
    if b"\\" in array:
        array = array.replace(b"\\\\", b"").replace(b'\\"', b"")
    return array.count(b'"') // 2


class OutputRef:
    """An ActionOutput read from a journal: counted and matched without its lines; `lines` and `raw` read them.
    About 170 bytes each: the fields every batch of an action repeats are one shared tuple."""

    __slots__ = ("seq", "_us", "_head", "line_count", "_span", "_source")
    type = "action_output"

    def __init__(self, seq: int, us: int, head: tuple[str, str, str, str, str, int], line_count: int, offset: int,
                 length: int, source: Source | Held) -> None:
        self.seq, self._us, self._head, self.line_count = seq, us, head, line_count
        self._span = offset << _SPAN_BITS | length
        self._source = source

    actor = property(lambda self: self._head[0])
    step = property(lambda self: self._head[1])
    action = property(lambda self: self._head[2])
    host = property(lambda self: self._head[3])
    stream = property(lambda self: self._head[4])
    schema_version = property(lambda self: self._head[5])

    @property
    def ts(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._us)

    @property
    def raw(self) -> bytes:
        """The journal line (without its newline): the event's canonical JSON."""
        length = self._span & _SPAN_MASK
        data = self._source.read(self._span >> _SPAN_BITS, length)
        if len(data) != length or b"\n" in data or not data.startswith(PREFIX):
            raise OSError(f"journal line of event {self.seq} changed on disk")
        return data

    @property
    def lines(self) -> list[str]:
        data = self.raw
        return list(json.loads(data[data.index(b'"lines":') + 8:-1]))

    def model_dump_json(self) -> str:
        return self.raw.decode("utf-8")

    def full(self) -> Any:
        """The pydantic ActionOutput."""
        from rollback_tui.record.events import parse_event

        return parse_event(self.raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OutputRef):
            return self.raw == other.raw
        if getattr(other, "type", None) == "action_output":
            return bool(self.full() == other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OutputRef(seq={self.seq}, step={self.step!r}, action={self.action!r}, lines={self.line_count})"


_SPAN_BITS = 24
_SPAN_MASK = (1 << _SPAN_BITS) - 1
"""A line's offset and length packed in one int; a line of 16 MB or more is parsed in full instead."""


def _array_count(line: bytes, start: int, clean: bool) -> int:
    """The number of strings in the JSON array `line[start:-2]` if it is as pydantic writes it, else -1. `clean`:
    the line is known to hold no control character and no byte outside ASCII."""
    end = len(line) - 2
    if start == end:
        return 0
    if line.find(b"\\", start) < 0:  # the common case, no expression: without escapes no string holds a quote
        if line[start] != 34 or line[end - 1] != 34 or end - start < 2:
            return -1
        if not clean and len(line[start:end].translate(None, _CONTROLS)) != end - start:
            return -1
        separators = line.count(b'","', start, end)  # valid when every quote is an end or part of a separator
        return separators + 1 if line.count(b'"', start, end) == 2 * separators + 2 else -1
    array = line[start:end]
    return _count(array) if _ARRAY.fullmatch(array) else -1


def _heads(middle: bytes, version: bytes, cache: dict[bytes, Any]) -> tuple[str, str, str, str, str, int] | None:
    """The fields an action's batches repeat (actor, step, action, host, stream, schema version), checked once."""
    key = version + middle
    head = cache.get(key)
    if head is None:
        match = _MIDDLE.fullmatch(middle)
        if match is None:
            return None
        actor, step, action, host, stream = match.groups()
        head = (*(_text(part, cache) for part in (actor, step, action, host)), stream.decode("ascii"), int(version))
        cache[key] = head
    return head  # type: ignore[no-any-return]


def _micros(ts: bytes, cache: dict[bytes, Any]) -> int:
    """Microseconds since the epoch of a canonical UTC time (the second is looked up once: a flood shares it)."""
    second = ts[:19]
    base = cache.get(second)
    if base is None:
        delta = datetime.fromisoformat(second.decode("ascii") + "+00:00") - _EPOCH  # ValueError: no such time
        base = cache[second] = (delta.days * 86400 + delta.seconds) * 1_000_000
    return base + int(ts[20:]) if len(ts) > 19 else base  # type: ignore[no-any-return]


def light_output(line: bytes, offset: int, source: Source | Held, cache: dict[bytes, Any], clean: bool = False
                 ) -> OutputRef | None:
    """An OutputRef when `line` is a canonical ActionOutput (valid UTF-8, a real time), else None. `clean`: the
    caller checked that the line has no control character and no byte outside ASCII."""
    pre = _PRE.match(line)
    if pre is None or line[-2:] != b"]}" or len(line) > _SPAN_MASK:
        return None
    lines_at = line.find(_LINES, pre.end())
    if lines_at < 0:
        return None
    if clean:  # the hot path of a flood, inlined: the action's fields and the second already seen, no escapes
        version, seq, ts = pre.groups()
        head = cache.get(version + line[pre.end():lines_at + 10])
        base = cache.get(ts[:19])
        start, end = lines_at + 10, len(line) - 2
        if head is not None and base is not None and end - start >= 2 and line[start] == 34 and \
                line[end - 1] == 34 and line.find(b"\\", start) < 0:
            separators = line.count(b'","', start, end)
            if line.count(b'"', start, end) == 2 * separators + 2:
                return OutputRef(int(seq), base + int(ts[20:]) if len(ts) > 19 else base, head, separators + 1,
                                 offset, len(line), source)
    count = _array_count(line, lines_at + len(_LINES), clean)
    if count < 0:
        return None
    try:
        if not clean and not line.isascii():
            line.decode("utf-8")  # strict: pydantic refuses invalid UTF-8
        head = _heads(line[pre.end():lines_at + len(_LINES)], pre.group(1), cache)
        us = _micros(pre.group(3), cache)
    except (ValueError, UnicodeDecodeError):
        return None
    if head is None:
        return None
    return OutputRef(int(pre.group(2)), us, head, count, offset, len(line), source)


def output_ref(event: Any, offset: int, length: int, source: Source, cache: dict[Any, Any]) -> Any:
    """The light form of an ActionOutput just written at `offset` (its line is `length` bytes), or the event
    itself when its time is not UTC (the light form knows UTC only)."""
    ts = event.ts
    if ts.utcoffset() != timedelta(0) or length > _SPAN_MASK:
        return event
    key = (event.actor, event.step, event.action, event.host, event.stream, event.schema_version)
    head = cache.setdefault(key, key)
    delta = ts - _EPOCH
    us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return OutputRef(event.seq, us, head, len(event.lines), offset, length, source)
