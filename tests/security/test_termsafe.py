"""termsafe: every control, bidi and zero-width character an attacker can put in text is shown, never emitted."""

from __future__ import annotations

import io
import subprocess
import sys
import unicodedata
from datetime import datetime, timezone

import pytest

from rollback_tui.termsafe import SafeWriter, one_line, safe, scrub

OSC52 = "\x1b]52;c;SGVsbG8=\x07"


def emitted_controls(text: str) -> list[str]:
    """Characters of `text` a terminal would act on or hide (what termsafe must never let through)."""
    return [f"U+{ord(ch):04X}" for ch in text
            if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


def test_osc52_clipboard_write_is_shown_not_sent() -> None:
    assert safe(f"name{OSC52}end") == "name␛]52;c;SGVsbG8=␇end"
    assert one_line(OSC52) == "␛]52;c;SGVsbG8=␇"


def test_osc_terminated_by_string_terminator() -> None:
    assert safe("\x1b]8;;https://evil.invalid\x1b\\click\x1b]8;;\x1b\\") == "␛]8;;https://evil.invalid␛\\click␛]8;;␛\\"


@pytest.mark.parametrize("sequence, shown", [
    ("\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),  # CSI SGR
    ("\x1b[2J\x1b[H", "␛[2J␛[H"),  # clear screen, cursor home
    ("\x1b[8m", "␛[8m"),  # concealed text
    ("\x1bP+q544e\x1b\\", "␛P+q544e␛\\"),  # DCS (XTGETTCAP)
    ("\x1b_payload\x1b\\", "␛_payload␛\\"),  # APC
    ("\x1b^pm\x1b\\", "␛^pm␛\\"),  # PM
    ("\x1bXsos\x1b\\", "␛Xsos␛\\"),  # SOS
    ("\x1bc", "␛c"),  # RIS: full reset
])
def test_escape_sequences_are_shown_whole(sequence: str, shown: str) -> None:
    assert safe(sequence) == shown
    assert one_line(sequence) == shown


def test_c1_controls_are_escaped() -> None:
    assert safe("a\x9b31mb") == "a<U+009B>31mb"  # 8-bit CSI
    assert safe("\x9d52;c;SGVsbG8=\x9c") == "<U+009D>52;c;SGVsbG8=<U+009C>"  # 8-bit OSC ... ST
    assert safe("\x85") == "<U+0085>"  # NEL
    assert all(safe(chr(code)) == f"<U+{code:04X}>" for code in range(0x80, 0xA0))


def test_every_c0_control_and_del_become_control_pictures() -> None:
    for code in range(0x20):
        if chr(code) in "\n\t":
            continue
        if code == 0x0D:
            assert safe("\r") == "␍"
            continue
        assert safe(chr(code)) == chr(0x2400 + code)
    assert safe("\x7f") == "␡"
    assert safe("bell\x07 backspace\x08") == "bell␇ backspace␈"


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
                                  "\u2069", "\u200e", "\u200f", "\u061c"])
def test_bidi_controls_are_escaped(char: str) -> None:
    assert safe(f"invoice{char}fdp.exe") == f"invoice<U+{ord(char):04X}>fdp.exe"


@pytest.mark.parametrize("char", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u3164",
                                  "\U000e0041"])
def test_zero_width_and_invisible_characters_are_escaped(char: str) -> None:
    assert one_line(f"da{char}na") == f"da<U+{ord(char):04X}>na"


def test_carriage_return_cannot_overwrite_a_line() -> None:
    assert safe("result: FAILED\rresult: OK    ") == "result: FAILED␍result: OK    "
    assert safe("progress 10%\r") == "progress 10%␍"
    assert safe("windows\r\nline\r\n") == "windows\nline\n"  # a CRLF line ending is only a line ending


def test_one_line_keeps_text_on_its_row() -> None:
    assert one_line("step\n 12:00:00 session finished: COMPLETED") == "step␊ 12:00:00 session finished: COMPLETED"
    assert one_line("a\r\nb\rc\td") == "a␊b␍c d"
    assert one_line("\u2028\u2029\x0b\x0c\x1c") == "<U+2028><U+2029>␋␌␜"


def test_multi_line_keeps_newlines_and_tabs_unless_told() -> None:
    assert safe("a\n\tb") == "a\n\tb"
    assert safe("a\n\tb", tabs=False) == "a\n b"


def test_lone_surrogates_from_undecodable_bytes_are_escaped() -> None:
    text = b"name\x9b\xff".decode("utf-8", "surrogateescape")
    assert safe(text) == "name<U+DC9B><U+DCFF>"
    safe(text).encode("utf-8")  # printable on any UTF-8 terminal: no UnicodeEncodeError


def test_clean_text_is_returned_as_is() -> None:
    text = "checkout-service · v1.4.2 ✔ 日本語 naïve émoji 🙂 nbsp\u00a0"
    assert safe(text) is text and one_line(text) is text


def test_no_control_character_survives_anywhere_in_unicode() -> None:
    """Exhaustive over the running Python's Unicode database: the hard-coded class misses no Cc/Cf/Zl/Zp/Cs."""
    every = "".join(chr(code) for code in range(sys.maxunicode + 1))
    assert emitted_controls(safe(every)) == []
    assert emitted_controls(one_line(every)) == [] and "\n" not in one_line(every) and "\t" not in one_line(every)


def test_output_is_idempotent() -> None:
    hostile = f"{OSC52}\x9b\u202e\u200b\r\n\t\x00"
    assert safe(safe(hostile)) == safe(hostile)
    assert one_line(one_line(hostile)) == one_line(hostile)


def test_scrub_copies_events_with_every_string_safe_and_leaves_clean_ones_alone() -> None:
    from rollback_tui.record import events as ev

    ts = datetime(2026, 1, 1, tzinfo=timezone.utc)
    clean = ev.ActionOutput(step="flags", action="off", stream="stdout", lines=["fine"], ts=ts, seq=1)
    assert scrub(clean) is clean
    hostile = ev.DecisionRequested(request_id=1, kind="gate", step="flags", question=f"Go?\n{OSC52}",
                                   options=["go"], evidence={"detail": f"# Plan\n{OSC52}",
                                                             "verifications": [{"check": f"c{OSC52}\nx"}]},
                                   ts=ts, seq=2)
    shown = scrub(hostile)
    assert shown.question == "Go?\n␛]52;c;SGVsbG8=␇"  # a question may wrap
    assert shown.evidence.detail == "# Plan\n␛]52;c;SGVsbG8=␇"
    assert shown.evidence.verifications == [{"check": "c␛]52;c;SGVsbG8=␇␊x"}]  # a table cell stays one line
    assert hostile.question.startswith("Go?\n\x1b")  # the engine's event is untouched
    started = ev.SessionStarted(operator="op\x1b[8m", plan_path="/p", plan_sha256="0" * 64, plan_name=f"n{OSC52}",
                                host="h", pid=1, tool_version="0", ts=ts,
                                outline={"metadata": {"name": "n\u202e"}, "steps": [{"title": "t\r\nT"}]})
    shown_started = scrub(started)
    assert shown_started.operator == "op␛[8m" and shown_started.plan_name == "n␛]52;c;SGVsbG8=␇"
    assert shown_started.outline == {"metadata": {"name": "n<U+202E>"}, "steps": [{"title": "t␊T"}]}


def test_safe_writer_cleans_every_write_and_delegates_the_rest() -> None:
    target = io.StringIO()
    writer = SafeWriter(target)  # type: ignore[arg-type]
    print(f"report: r{OSC52}.md", file=writer)  # type: ignore[arg-type]
    writer.writelines(["a\x9b\n", "b\rc\n"])
    writer.flush()
    assert target.getvalue() == "report: r␛]52;c;SGVsbG8=␇.md\na<U+009B>\nb␍c\n"
    assert writer.getvalue() == target.getvalue()  # anything else is the stream's own


def test_module_is_cheap_to_import() -> None:
    """Imported before the cockpit's first frame: nothing but `re` (and typing/collections.abc) behind it."""
    code = ("import sys; before = set(sys.modules); import rollback_tui.termsafe; "
            "print(sorted(m for m in set(sys.modules) - before if not m.startswith('rollback_tui')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not ({"textual", "rich", "pydantic", "unicodedata"} & set(eval(done.stdout)))


def test_lines_one_line_returns_clean_batches_as_they_are() -> None:
    from rollback_tui.termsafe import lines_one_line

    ascii_batch = [f"{i} GET /api 200" for i in range(100)]
    utf8_batch = ["✔ naïve 日本語", "ok"]
    assert lines_one_line(ascii_batch) is ascii_batch and lines_one_line(utf8_batch) is utf8_batch
    assert lines_one_line(["ok", f"a{OSC52}", "b\rc", "t\tu", "da\u3164na", "x\x9b"]) == [
        "ok", "a␛]52;c;SGVsbG8=␇", "b␍c", "t u", "da<U+3164>na", "x<U+009B>"]
