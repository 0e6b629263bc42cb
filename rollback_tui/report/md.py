"""Markdown helpers: every piece of recorded text is forced onto one safe line before it is rendered."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rollback_tui.plan.types import format_duration

MAX_TEXT = 300
_BREAKS = {"\r\n": " ⏎ ", "\n": " ⏎ ", "\r": " ⏎ "}
_SEPARATORS = "\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def inline(value: Any, limit: int = MAX_TEXT) -> str:
    """One line of recorded text: line breaks shown as ⏎, control characters escaped, pipes and '<' escaped,
    long text cut (the full value is in the event log)."""
    text = str(value)
    for brk, mark in _BREAKS.items():
        text = text.replace(brk, mark)
    if any(ch < " " or ch == "\x7f" or ch in _SEPARATORS for ch in text):
        text = "".join(f"\\x{ord(ch):02x}" if (ch < " " and ch != "\t") or ch == "\x7f" or ch in _SEPARATORS
                       else ch for ch in text)
    text = text.replace("\t", " ").strip()
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text.replace("|", "\\|").replace("<", "&lt;")


def code(value: Any, limit: int = MAX_TEXT) -> str:
    """A code span that survives backticks in the value."""
    text = inline(value, limit).replace("&lt;", "<")
    if not text:
        return "``"
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def when(ts: datetime | None) -> str:
    if ts is None:
        return "—"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def clock(ts: datetime | None) -> str:
    """Time of day only, for tables where the date is in the header."""
    if ts is None:
        return "—"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).strftime("%H:%M:%SZ")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return format_duration(max(0.0, float(seconds)))


def span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return duration((end - start).total_seconds())


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return out


def tick(done: bool) -> str:
    return "[x]" if done else "[ ]"


def mark(ok: bool | None) -> str:
    return {True: "✅", False: "❌", None: "➖"}[ok]
