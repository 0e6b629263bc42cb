"""Evidence rows drawn in full: subject, observed and expected wrapped (never cut), long hashes shortened alike."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from rich.text import Text

#: A hexadecimal run this long is a digest (sha256, a commit id): shown shortened, the same way on both sides.
LONG_HEX = re.compile(r"\b[0-9a-fA-F]{21,}\b")
HEX_SHOWN = 12


def _shorten_pair(observed: str, expected: str) -> tuple[str, str]:
    """Shorten the long digests of observed and expected the same way: equal ones to their first 12 digits,
    differing ones to a window around the first difference (so the differing part stays visible)."""
    seen, wanted = LONG_HEX.findall(observed), LONG_HEX.findall(expected)
    if not seen and not wanted:
        return observed, expected
    pairs = dict(zip(seen, wanted))
    spans: dict[str, str] = {}
    for a, b in pairs.items():
        if a.lower() == b.lower():
            spans[a] = spans[b] = a[:HEX_SHOWN] + "…"
            continue
        first = next((i for i, (x, y) in enumerate(zip(a.lower(), b.lower())) if x != y), min(len(a), len(b)))
        start = max(0, first - 4)
        for token in (a, b):
            end = min(len(token), start + HEX_SHOWN)
            spans[token] = ("…" if start else "") + token[start:end] + ("…" if end < len(token) else "")
    for token in [*seen, *wanted]:
        spans.setdefault(token, token[:HEX_SHOWN] + "…")
    replace = lambda text: LONG_HEX.sub(lambda m: spans.get(m.group(0), m.group(0)), text)  # noqa: E731
    return replace(observed), replace(expected)


def check_word(check: dict[str, Any]) -> tuple[str, str, bool]:
    """(symbol, word, ok) of one verification: 'unverified' when nothing was read back."""
    ok = bool(check.get("ok"))
    if check.get("readback") == "none":
        return ("?" if ok else "✖"), "unverified", ok
    return ("✔" if ok else "✖"), ("pass" if ok else "FAIL"), ok


def _wrapped(label: str, value: str, width: int, indent: int) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(f"{label}{value}", max(10, width), initial_indent=pad, subsequent_indent=pad + "  ",
                         break_on_hyphens=False) or [pad + label]


def check_rows(check: dict[str, Any], width: int, colour: str, *, full: bool = False) -> list[Text]:
    """One verification as wrapped lines: the subject, then observed and expected (one line when they agree)."""
    symbol, word, _ok = check_word(check)
    observed, expected = str(check.get("observed", "") or ""), str(check.get("expected", "") or "")
    if not full:
        observed, expected = _shorten_pair(observed, expected)
    prefix = f"{symbol} {word} "
    subject = textwrap.wrap(str(check.get("check", "")), max(10, width), initial_indent=" " * len(prefix),
                            subsequent_indent="    ", break_on_hyphens=False) or [" " * len(prefix)]
    head = Text()
    head.append(prefix, style=f"bold {colour}")
    head.append(subject[0][len(prefix):])
    rows = [head, *(Text(line) for line in subject[1:])]
    if observed and observed == expected:
        rows += [Text(line) for line in _wrapped("observed = expected: ", observed, width, 4)]
    else:
        if observed or expected:
            rows += [Text(line) for line in _wrapped("observed: ", observed or "–", width, 4)]
        if expected:
            rows += [Text(line) for line in _wrapped("expected: ", expected, width, 4)]
    return rows
