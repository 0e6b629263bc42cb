"""Reading a report file back: its header, its event log lines and recorded chain head, its sections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollback_tui.errors import ReportError
from rollback_tui.report.render import (
    FENCE_CLOSE,
    FENCE_OPEN,
    FORMAT_MARK,
    HEAD_PREFIX,
    JOURNAL_PREFIX,
    LOG_HEADING,
    SIGNATURE_PREFIX,
    UNSIGNED_PREFIX,
    ReportHeader,
)

TITLE_PREFIX = "# Rollback report: "
LOG_LINE_PREFIX = '{"prev":"'


def unescape(text: str) -> str:
    """Undo md.inline's escapes, so rendering the result again gives the same text."""
    return text.replace("\\|", "|").replace("&lt;", "<")


def uncode(span: str) -> str:
    """The text inside a code span written by md.code."""
    fence = len(span) - len(span.lstrip("`"))
    inner = span[fence:len(span) - fence] if fence and span.endswith("`" * fence) else span
    if len(inner) >= 2 and inner[0] == " " and inner[-1] == " " and "`" in (inner[1], inner[-2]):
        inner = inner[1:-1]
    return inner.replace("\\|", "|")


def _index(lines: list[str], match: Callable[[str], bool], start: int) -> int | None:
    return next((i for i in range(start, len(lines)) if match(lines[i])), None)


@dataclass
class ParsedReport:
    text: str
    header: ReportHeader
    log_lines: list[str]
    log_first_line: int
    """1-based file line number of the first log line."""
    recorded_head: str
    without_log: str
    """The text with the log body cut out (what verify compares with the regenerated sections)."""


def parse_report(text: str, name: str = "the file") -> ParsedReport:
    """Split a (LF-normalised) report; raises ReportError when it is not a rollback-tui report at all."""
    lines = text.split("\n")
    looks = lines[0].startswith(TITLE_PREFIX) or FORMAT_MARK in lines[:5]
    heading = lines.index(LOG_HEADING) if LOG_HEADING in lines else 0
    start = _index(lines, lambda line: line == FENCE_OPEN, heading)
    if start is None:  # the fence line itself was damaged: the log starts at its first chained line
        start = _index(lines, lambda line: line.startswith(LOG_LINE_PREFIX), heading)
    else:
        start += 1
    if start is None or not looks and not lines[start].startswith(LOG_LINE_PREFIX):
        if not looks:
            raise ReportError(f"{name} is not a rollback-tui report (no '{TITLE_PREFIX}...' title, format mark or "
                              "event log)", hint="pass the <name>.md file the session wrote")
        raise ReportError(f"{name} has no embedded event log (a '{LOG_HEADING}' section with a ```jsonl block)",
                          hint="the report was cut short or edited; replay the journal instead")
    end = _index(lines, lambda line: line == FENCE_CLOSE, start)
    if end is None:
        end = _index(lines, lambda line: not line.startswith(LOG_LINE_PREFIX), start) or len(lines)
    unsigned = signature = journal = ""
    for line in lines[1:]:
        if line.startswith("## "):
            break
        if line.startswith(UNSIGNED_PREFIX):
            unsigned = unescape(line[len(UNSIGNED_PREFIX):])
        elif line.startswith(SIGNATURE_PREFIX):
            signature = line[len(SIGNATURE_PREFIX):]
        elif line.startswith(JOURNAL_PREFIX):
            journal = uncode(line[len(JOURNAL_PREFIX):])
    recorded = ""
    for line in lines[end:]:
        if line.startswith(HEAD_PREFIX) and line.endswith("`"):
            recorded = line[len(HEAD_PREFIX):-1]
            break
    return ParsedReport(text, ReportHeader(signature=signature, unsigned=unsigned, journal=journal),
                        lines[start:end], start + 1, recorded, "\n".join(lines[:start] + lines[end:]))
