"""The embedded event log: canonical JSON Lines, each line carrying the SHA-256 of the line before."""

from __future__ import annotations

import gc
import hashlib
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from rollback_tui.record import events as ev
from rollback_tui.record.events import Event, dump_event, parse_event
from rollback_tui.record.lightevents import Held, light_output

#: The `prev` of the first line: the hash of a fixed label, so an empty log still has a defined head.
GENESIS = hashlib.sha256(b"rollback-tui event log v1").hexdigest()
_PREFIX = '{"prev":"'
_MIDDLE = '","event":'
_HASH_LEN = 64
_EVENT_AT = len(_PREFIX) + _HASH_LEN + len(_MIDDLE)

_CLASSES: dict[str, type[BaseModel]] = {
    cls.model_fields["type"].default: cls for cls in typing.get_args(typing.get_args(ev.Event)[0])
}


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def encode_log(events: list[Event]) -> tuple[list[str], str]:
    """The log lines and the chain head (the hash of the last line, or GENESIS when empty)."""
    lines: list[str] = []
    prev = GENESIS
    sha = hashlib.sha256
    for event in events:
        line = f"{_PREFIX}{prev}{_MIDDLE}{dump_event(event)}}}"
        lines.append(line)
        prev = sha(line.encode("utf-8")).hexdigest()
    return lines, prev


def iter_log(events: list[Event], heads: list[str]) -> typing.Iterator[bytes]:
    """The log lines as UTF-8 (what encode_log makes, one at a time: a long log is never all in memory); the chain
    head is appended to `heads` once the last line is out. Light output batches give their journal bytes."""
    prev = GENESIS
    sha = hashlib.sha256
    prefix, middle = _PREFIX.encode(), _MIDDLE.encode()
    for event in events:
        raw = getattr(event, "raw", None)
        dumped = raw if isinstance(raw, bytes) else dump_event(event).encode("utf-8")
        line = b"".join((prefix, prev.encode("ascii"), middle, dumped, b"}"))
        yield line
        prev = sha(line).hexdigest()
    heads.append(prev)


def _parse_one(text: str, cache: dict[Any, Any] | None = None) -> Event:
    """Parse an event; peeking at its type first is faster than letting the union try (and gives the same result).
    With a `cache`, a canonical output batch is read light (record/lightevents.py: the same event, its bytes kept)."""
    if cache is not None and text.startswith('{"schema_version":') and '"type":"action_output"' in text:
        data = text.encode("utf-8")
        ref = light_output(data, 0, Held(data), cache)
        if ref is not None:
            return typing.cast(Event, ref)
    at = text.find('"type":"')
    if at >= 0:
        end = text.find('"', at + 8)
        cls = _CLASSES.get(text[at + 8:end])
        if cls is not None:
            try:
                return typing.cast(Event, cls.model_validate_json(text))
            except ValidationError:
                pass  # fall through for the union's error message
    return parse_event(text)


@dataclass
class DecodedLog:
    events: list[Event] = field(default_factory=list)
    event_lines: list[int] = field(default_factory=list)
    """For each event, its index among the log lines (0-based)."""
    head: str = GENESIS
    broken: list[str] = field(default_factory=list)
    """Chain and format problems, first broken event first."""
    dropped: list[str] = field(default_factory=list)
    """Lines that could not be parsed into an event."""


def _describe(event: Event | None, index: int, first_line: int) -> str:
    where = f"line {first_line + index}"
    if event is None:
        return f"log entry {index + 1} ({where})"
    return f"event seq {event.seq} ({event.type}, {where})"


def decode_log(lines: list[str], first_line: int = 1) -> DecodedLog:
    """Parse and check the chain; `first_line` is the file line number of lines[0], for messages."""
    was_enabled = gc.isenabled()
    gc.disable()  # 100k small models: the cyclic GC would run hundreds of times for nothing
    try:
        return _decode(lines, first_line)
    finally:
        if was_enabled:
            gc.enable()


def _decode(lines: list[str], first_line: int) -> DecodedLog:
    out = DecodedLog()
    prev = GENESIS
    sha = hashlib.sha256
    previous: Event | None = None
    hash_at, hash_end, middle_at = len(_PREFIX), len(_PREFIX) + _HASH_LEN, _EVENT_AT - len(_MIDDLE)
    events, event_lines = out.events, out.event_lines
    cache: dict[Any, Any] = {}
    for index, line in enumerate(lines):
        event: Event | None = None
        if line.startswith(_PREFIX) and line[middle_at:_EVENT_AT] == _MIDDLE and line[-1:] == "}":
            try:
                event = _parse_one(line[_EVENT_AT:-1], cache)
                events.append(event)
                event_lines.append(index)
            except (ValidationError, ValueError) as exc:
                out.dropped.append(f"line {first_line + index}: not an event ({str(exc).splitlines()[0]})")
            if line[hash_at:hash_end] != prev and len(out.broken) < 5:
                before = _describe(previous, index - 1, first_line) if index else "the start of the log"
                out.broken.append(f"the hash chain breaks between {before} and {_describe(event, index, first_line)}: "
                                  "the first was changed, or entries were removed, inserted or reordered there")
        else:
            out.dropped.append(f"line {first_line + index}: not a hash-chained log line")
        prev = sha(line.encode("utf-8")).hexdigest()
        previous = event
    out.head = prev
    seqs = [event.seq for event in events]
    if seqs != list(range(1, len(seqs) + 1)):
        out.broken.extend(_seq_problems(events, [first_line + i for i in event_lines]))
    return out


def _seq_problems(events: list[Event], line_numbers: list[int]) -> list[str]:
    """Sequence numbers are gap-free from 1 (DESIGN): a gap names a removed event, a step back a reordered one."""
    problems: list[str] = []
    if not events or events[0].seq == 0:
        return problems  # events that were never numbered (hand-made sessions) carry no order to check
    present = {event.seq for event in events}
    seen: set[int] = set()
    expected = 1
    for event, line in zip(events, line_numbers):
        where = f"event seq {event.seq} ({event.type}, line {line})"
        if event.seq in seen:
            problems.append(f"{where} appears twice")
        elif event.seq < expected:
            problems.append(f"{where} comes after seq {expected - 1}: events were reordered")
        elif event.seq > expected:
            missing = [n for n in range(expected, event.seq) if n not in present]
            if missing:
                shown = f"seq {missing[0]}" if len(missing) == 1 else f"seq {missing[0]}-{missing[-1]}"
                problems.append(f"{where} follows seq {expected - 1}: {shown} is missing (removed)")
        seen.add(event.seq)
        expected = max(expected, event.seq + 1)
        if len(problems) >= 5:
            break
    return problems
