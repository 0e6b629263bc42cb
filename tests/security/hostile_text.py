"""A plan whose every shown string carries terminal attacks, and the checks that none reached a terminal."""

from __future__ import annotations

import unicodedata

#: Written into the plan with YAML escapes; the shell action prints the same bytes with printf.
OSC52 = "\x1b]52;c;SGVsbG8=\x07"
SHOWN_OSC52 = "␛]52;c;SGVsbG8=␇"
#: CSI markers, one per place, so a leak names where it came from.
MARKERS = ("[31mTITLE", "[2JINCIDENT", "[42mROLE", "[5mINPUT", "[41mSTEP", "[43mQUESTION", "[44mOUTPUT",
           "[45mPATH")

HOSTILE_PLAN = r"""
version: 1
metadata:
  name: "evil\e]52;c;SGVsbG8=\aplan\e[31mTITLE"
  incident: "INC\e[2JINCIDENT\x9b31m [runbook](https://evil.invalid/steal)"
  environment: "env\u202Egnp.exe\u200b"
approvals:
  allow_same_person: true
  roles:
    - {id: lead, title: "Lead\e]52;c;SGVsbG8=\a\e[42mROLE", approves: [execution, validation]}
inputs:
  artifacts:
    - id: art
      description: "desc\e]52;c;SGVsbG8=\a\e[5mINPUT"
      check: {path: "/nonexistent\e[45mPATH"}
      remediation: proceed
rollback:
  scope: [flags]
  risks: ["see [the runbook](https://evil.invalid/steal) before approving"]
steps:
  - id: flags
    title: "Flags\e]52;c;SGVsbG8=\a\e[41mSTEP"
    question: "Go?\e]52;c;SGVsbG8=\a\e[43mQUESTION"
    actions:
      - id: off
        kind: shell
        argv: ["printf", "out\\033]52;c;SGVsbG8=\\007 and \\033[44mOUTPUT \\302\\233 c1\\r overwrite\\n"]
"""


def leaks(data: bytes) -> list[str]:
    """What of the plan's payload reached the terminal raw: an OSC 52, a marker's CSI, a C1 character."""
    found = [repr(marker) for marker in ("\x1b]52", *(f"\x1b{m}" for m in MARKERS)) if marker.encode() in data]
    text = data.decode("utf-8", "surrogateescape")
    found += [f"U+{ord(ch):04X}" for ch in text if 0x80 <= ord(ch) <= 0x9F or 0xDC80 <= ord(ch) <= 0xDCFF]
    found += [f"U+{ord(ch):04X}" for ch in text if ch in "\u202e\u200b"]
    return found


def stray_controls(data: bytes) -> list[str]:
    """Any control character at all besides LF and TAB (for output with no terminal UI of its own)."""
    text = data.decode("utf-8", "surrogateescape")
    return sorted({f"U+{ord(ch):04X}" for ch in text
                   if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")})
