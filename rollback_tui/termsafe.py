"""Terminal safety: text from plans, hosts and files is shown with its control characters visible, never emitted.

Two variants, chosen by where the text lands:

* `safe(text)` for multi-line output (CLI stdout/stderr, the plan markdown, a question that wraps): keeps `\\n`
  (and `\\t` unless `tabs=False`), turns `\\r\\n` into `\\n`, and shows a lone `\\r` as `␍` so a host's output can
  never return the cursor and overwrite a line.
* `one_line(text)` for one-line places (header, step titles, key bar, table cells, log lines, headless event
  lines): also shows `\\n` as `␊` and `\\t` as a space, so text can neither break a row nor forge the next one.

C0 controls become their Unicode control pictures (ESC is `␛`, so OSC 52 shows as `␛]52;…`), DEL is `␡`; C1
controls, bidi controls, zero-width and other invisible format characters, line/paragraph separators and lone
surrogates are shown as `<U+XXXX>`. The markdown report keeps its own escaping (report/md.py). This module is
imported before the cockpit's first frame: it imports only `re` and `typing`, and compiles its patterns on first
use (printable ASCII, the common case, never needs them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TextIO

#: Characters never emitted, besides TAB and LF: C0 (with CR), DEL, C1, soft hyphen, bidi controls (U+061C,
#: U+200E/F, U+202A-E, U+2066-9), zero-width and invisible characters (U+200B-D, U+2060-4, U+FEFF, Hangul and
#: Mongolian fillers, tag characters), every other format character (Cf), U+2028/9, lone surrogates.
_INVISIBLE = ("\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
              "\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164"
              "\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
              "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f")
_CLASSES = {"keep_tabs": f"[{_INVISIBLE}]", "no_tabs": f"[\t{_INVISIBLE}]", "one_line": f"[\t\n{_INVISIBLE}]"}
_CLASSES["fillers"] = "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u3164\uffa0]"  # printable, yet invisible
_COMPILED: dict[str, re.Pattern[str]] = {}
_ASCII_CONTROLS = bytes([*range(0x20), 0x7F])

#: Keys whose string values may span lines in the cockpit (a decision's question, the plan markdown shown for
#: review); every other string of an event is drawn on one line.
MULTILINE_KEYS = frozenset({"question", "detail"})


def visible(char: str) -> str:
    """How one unsafe character is shown: a control picture for C0 and DEL, `<U+XXXX>` for the rest."""
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"<U+{code:04X}>"


def pattern(kind: str) -> re.Pattern[str]:
    """The compiled class of characters to show ("keep_tabs", "no_tabs", "one_line"), compiled on first use
    (printable ASCII never needs it)."""
    compiled = _COMPILED.get(kind)
    if compiled is None:
        compiled = _COMPILED[kind] = re.compile(_CLASSES[kind])
    return compiled


def _picture(match: re.Match[str]) -> str:
    return visible(match.group())


def _picture_tab_space(match: re.Match[str]) -> str:
    char = match.group()
    return " " if char == "\t" else visible(char)


def safe(text: str, *, tabs: bool = True) -> str:
    """Multi-line text made safe for a terminal: only LF (and TAB unless `tabs=False`) stay as they are."""
    if text.isascii() and text.isprintable():  # the common case, answered in C without the pattern
        return text
    unsafe = pattern("keep_tabs" if tabs else "no_tabs")
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if unsafe.search(text) is None:
        return text
    return unsafe.sub(_picture if tabs else _picture_tab_space, text)


def one_line(text: str) -> str:
    """Text made safe for one row of a terminal: as `safe`, and a line break shows as `␊`, a tab as a space."""
    if text.isascii() and text.isprintable():
        return text
    unsafe = pattern("one_line")
    if unsafe.search(text) is None:
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return unsafe.sub(_picture_tab_space, text)


def lines_one_line(lines: list[str]) -> list[str]:
    """`one_line` of each line; the same list when every line is already safe (checked in one C pass over the
    joined text, which keeps a 50k lines/s output flood cheap)."""
    joined = "".join(lines)
    if joined.isascii():  # bytes.translate deletes the controls ~3x faster than str.isprintable scans
        data = joined.encode("ascii")
        if len(data.translate(None, _ASCII_CONTROLS)) == len(data):
            return lines
    elif joined.isprintable() and pattern("fillers").search(joined) is None:
        return lines
    return [one_line(line) for line in lines]


def scrub(value: Any, key: str = "") -> Any:
    """A copy of an event (pydantic model, dict, list, tuple or str) whose every string is terminal-safe:
    one line, except under MULTILINE_KEYS. Unchanged parts are the same objects (nothing is copied for a clean
    event), so this is cheap on the cockpit's hot path."""
    if isinstance(value, str):
        return safe(value, tabs=False) if key in MULTILINE_KEYS else one_line(value)
    if isinstance(value, dict):
        items = [(scrub(k) if isinstance(k, str) else k, scrub(v, k if isinstance(k, str) else key))
                 for k, v in value.items()]
        if all(nk is k and nv is v for (nk, nv), (k, v) in zip(items, value.items())):
            return value
        return dict(items)
    if isinstance(value, list) and key not in MULTILINE_KEYS and all(isinstance(item, str) for item in value[:1]):
        try:
            return lines_one_line(value)  # a list of strings (an output batch's lines): the fast path
        except TypeError:  # not only strings after all
            pass
    if isinstance(value, (list, tuple)):
        cleaned = [scrub(item, key) for item in value]
        if all(new is old for new, old in zip(cleaned, value)):
            return value
        return cleaned if isinstance(value, list) else tuple(cleaned)
    fields = getattr(type(value), "model_fields", None)
    if fields is None:
        return value
    changes = {}
    for name in fields:
        old = getattr(value, name, None)
        new = scrub(old, name)
        if new is not old:
            changes[name] = new
    return value.model_copy(update=changes) if changes else value


class SafeWriter:
    """A text stream whose every write is made terminal-safe (`safe`); everything else is the wrapped stream's.

    `cli.main` puts one in front of sys.stdout and sys.stderr, so no subcommand, error message or argparse
    complaint can emit a control character that came from its input. (The cockpit writes to sys.__stderr__.)"""

    def __init__(self, stream: TextIO, clean: Callable[[str], str] = safe) -> None:
        self.stream = stream
        self.clean = clean

    def write(self, text: str) -> int:
        self.stream.write(self.clean(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
