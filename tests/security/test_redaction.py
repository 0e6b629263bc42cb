"""Redaction at the record path: every encoded form, each line of a multi-line secret, operator-typed text."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import yaml

from rollback_tui.record.events import ActionFinished, ActionOutput, DecisionMade, DecisionRequested, Evidence
from rollback_tui.engine.output import CONTINUES
from rollback_tui.secrets import MASK, Redactor

TOKEN = "Tok3n+/Sécret&<x>?~"
PEM_LINES = ["-----BEGIN TEST PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
             "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbv", "AgMBAAE=",
             "-----END TEST PRIVATE KEY-----"]
PEM = "\n".join(PEM_LINES)


def encodings(value: str) -> list[str]:
    """The forms a secret leaks in, computed here independently of the code under test."""
    raw = value.encode()
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    percent = quote(value, safe="")
    lower = re.sub("%[0-9A-F]{2}", lambda match: match.group(0).lower(), percent)
    return [value, percent, lower, quote(value), quote_plus(value), std, std.rstrip("="), url,
            url.rstrip("="), raw.hex(), raw.hex().upper(), json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1], "".join(f"\\u{ord(c):04x}" for c in value),
            "".join(f"\\u{ord(c):04X}" for c in value)]


def embedded_blobs(value: str) -> list[str]:
    """The secret inside larger base64 blobs, at the three alignments (and with a trailing newline)."""
    blobs = []
    for prefix in (b"", b"u:", b"user:"):
        for suffix in (b"", b"\n", b"!tail"):
            data = prefix + value.encode() + suffix
            blobs += [base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("=")]
    return blobs


def leaks(text: str, value: str) -> list[str]:
    """Forms of value (and the secret-bearing middle of its blobs) found in text."""
    found = [form for form in encodings(value) if form in text]
    found += [blob for blob in embedded_blobs(value) if blob[4:-4] in text]
    return found


def test_every_form_is_masked_in_text() -> None:
    redactor = Redactor([TOKEN])
    for form in encodings(TOKEN) + embedded_blobs(TOKEN):
        masked = redactor(f"before {form} after")
        assert MASK in masked and not leaks(masked, TOKEN), (form, masked)
        assert masked.startswith("before ") and masked.endswith(" after")  # only the secret goes


def test_each_line_of_a_multi_line_secret_is_masked_and_short_lines_are_not() -> None:
    redactor = Redactor([PEM])
    assert redactor(PEM) == MASK
    for line in (line for line in PEM_LINES if len(line) > 8):
        assert redactor(f"line: {line}") == f"line: {MASK}"
        assert redactor(json.dumps(line)) == f"\"{MASK}\""
    assert MASK in redactor(base64.b64encode(PEM.encode()).decode())  # the whole one in every form
    assert redactor("ok AgMBAAE= ok") == "ok AgMBAAE= ok"  # 8 characters: would mask ordinary words
    assert redactor(json.dumps({"key": PEM})) == json.dumps({"key": "X"}).replace("X", MASK)


def test_events_are_masked_field_by_field_and_vocabulary_is_left_alone() -> None:
    redactor = Redactor(["done-secret-1", TOKEN])
    made = DecisionMade(request_id=1, kind="gate", step="code", choice="override", by=f"Dana {TOKEN}",
                        reason=f"the token {quote(TOKEN)} was in the log", actor=TOKEN)
    masked = redactor.model(made)
    assert (masked.by, masked.actor, masked.choice, masked.kind) == (f"Dana {MASK}", MASK, "override", "gate")
    assert masked.reason == f"the token {MASK} was in the log"
    finished = ActionFinished(step="code", action="a", status="failed", error="x",
                              details={"nested": [{"deep": {TOKEN: f"v {TOKEN}"}}], "n": 3})
    assert redactor.model(finished).details == {"nested": [{"deep": {MASK: f"v {MASK}"}}], "n": 3}
    request = DecisionRequested(request_id=2, kind="gate", question="q", options=["go"],
                                evidence=Evidence(detail=f"plan with {TOKEN}",
                                                  verifications=[{"observed": TOKEN, "ok": False}]))
    shown = redactor.model(request)
    assert shown.evidence.detail == f"plan with {MASK}" and shown.evidence.verifications[0]["observed"] == MASK
    clean = ActionOutput(step="code", action="a", lines=["nothing here"] * 50)
    assert redactor.model(clean) is clean  # nothing to mask: no copy
    assert TOKEN not in redactor.model(ActionOutput(step="code", action="a", lines=["x"] * 40 + [TOKEN])).lines[-1]


def test_deep_nesting_cannot_hide_a_secret_or_crash() -> None:
    redactor = Redactor([TOKEN])
    value: object = TOKEN
    for _ in range(5000):
        value = [value]
    masked = redactor.value({"v": value})
    assert TOKEN not in repr(masked)


def test_safe_cut_never_splits_a_secret() -> None:
    redactor = Redactor([TOKEN, PEM])
    rng = random.Random(7)
    forms = encodings(TOKEN) + PEM_LINES
    for _ in range(300):
        text = "".join(rng.choice(["a", "b ", rng.choice(forms)]) for _ in range(rng.randint(1, 400)))
        rest = text[rng.randint(0, len(text)):]
        pieces, carry = [], ""
        for start in range(0, len(text), 97):  # the batcher's loop: cut, keep the rest for the next piece
            chunk = carry + text[start:start + 97]
            cut = redactor.safe_cut(chunk)
            pieces.append(chunk[:cut])
            carry = chunk[cut:]
        pieces.append(carry)
        assert "".join(pieces) == text
        assert "".join(map(redactor, pieces)) == redactor(text), rest


def run_headless(tmp_path: Path, plan: dict[str, object], answers: dict[str, object] | str,
                 env: dict[str, str], timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    if isinstance(answers, dict):
        (tmp_path / "answers.yaml").write_text(yaml.safe_dump(answers, sort_keys=False))
        answers = str(tmp_path / "answers.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "rollback_tui", "run", str(tmp_path / "plan.yaml"), "--headless", "--answers", answers,
         "--no-sign", "--journal", str(tmp_path / "s.journal.jsonl"), "--report", str(tmp_path / "s.md")],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env={**os.environ, **env})
    texts = {"stdout": result.stdout, "stderr": result.stderr, "journal": (tmp_path / "s.journal.jsonl").read_text(),
             "report": (tmp_path / "s.md").read_text()}
    return result, texts


PRINT_FORMS = """
import base64, json, os, re, sys
from urllib.parse import quote, quote_plus
value = os.environ["TOKEN"]
raw = value.encode()
forms = [value, quote(value, safe=""), re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(value, safe="")), quote(value), quote_plus(value),
         base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("="),
         base64.urlsafe_b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="),
         raw.hex(), raw.hex().upper(), json.dumps(value)[1:-1], "".join(f"\\\\u{ord(c):04x}" for c in value)]
for prefix in (b"", b"u:", b"user:"):
    for suffix in (b"", b"\\n", b"!tail"):
        forms.append(base64.b64encode(prefix + raw + suffix).decode())
        forms.append(base64.urlsafe_b64encode(prefix + raw + suffix).decode().rstrip("="))
for form in forms:
    print("form:", form)
    print("form:", form, file=sys.stderr)
print(json.dumps({"token": value, "nested": {"pem": os.environ["PEM"]}}))
# a secret across the 8 KiB boundary of a long line must not be recorded in two halves
sys.stdout.write("a" * 8180 + value + "b" * 20000 + "\\n")
sys.exit(3)
"""


def test_no_form_of_a_secret_reaches_journal_report_or_stdout(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(PEM + "\n")
    plan = {
        "metadata": {"name": "redaction-forms"},
        "approvals": {"allow_same_person": True},
        "rollback": {"scope": ["code", "configuration"]},
        "secrets": {"token": {"env": "RB_SECURITY_TOKEN"}, "pem": {"file": "key.pem"}},
        "steps": [
            {"id": "code", "actions": [
                {"id": "forms", "kind": "shell", "argv": [sys.executable, "-c", PRINT_FORMS],
                 "env": {"TOKEN": "${secrets.token}", "PEM": "${secrets.pem}"}, "expect_exit": 3},
                {"id": "pem-lines", "kind": "shell", "shell": True,
                 "command": f"while IFS= read -r line; do echo \"line: $line\"; done < {tmp_path / 'key.pem'}"},
            ]},
            {"id": "configuration", "actions": [
                {"id": "by-hand", "kind": "shell", "argv": ["true"], "manual": True,
                 "description": "rotate the token by hand"}]},
        ],
    }
    answers = {
        "operator": "Dana Ops",
        "approvals": {"devops-lead": f"Dana {TOKEN}", "tech-lead": "Terry Tech"},
        "steps": {"code": [{"choice": "no_go", "reason": f"saw {quote(TOKEN)} and {TOKEN} in the log",
                            "then": "retry"}, "go"]},
        "manual": {"configuration/by-hand": f"rotated; the old one was {TOKEN} / {PEM_LINES[1]}"},
    }
    result, texts = run_headless(tmp_path, plan, answers, {"RB_SECURITY_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    for where, text in texts.items():
        assert not leaks(text, TOKEN), f"{where}: {leaks(text, TOKEN)}"
        for line in PEM_LINES:
            if len(line) > 8:
                assert line not in text, f"{where}: PEM line {line!r}"
        assert not leaks(text, PEM), where
    stdout = texts["stdout"]
    # printed one by one (twice: the step was retried), masked one by one
    assert stdout.count("code/pem-lines | line: " + MASK + "\n") == 2 * len([x for x in PEM_LINES if len(x) > 8])
    assert "code/pem-lines | line: AgMBAAE=" in stdout  # 8 characters: not masked on its own
    assert f"by Dana {MASK}" in stdout and f"saw {MASK} and {MASK} in the log" in stdout
    assert f"the old one was {MASK} / {MASK}" in texts["journal"]
    # the long line was recorded in pieces, and the secret at the piece boundary was not cut in two
    pieces = [line for line in stdout.splitlines() if "code/forms | a" in line or "code/forms | " + MASK in line
              or ("code/forms | " in line and line.endswith(CONTINUES))]
    assert any(line.endswith(CONTINUES) for line in pieces)
    joined = "".join(line.split(" | ", 1)[1].removesuffix(CONTINUES) for line in pieces if " | " in line)
    assert "a" * 100 + MASK + "b" * 100 in joined and TOKEN[:6] not in joined
