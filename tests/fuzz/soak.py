"""A timed fuzz soak of everything a user or a host can hand the tool: plans, answers files, journals.

Not part of the suite (no `test_` prefix): `python tests/fuzz/soak.py --minutes 10` splits the time over the
classes below and prints, per class, how many inputs were tried and how many crashed (an exception other than the
tool's own refusal), hung (over --hang seconds) or were refused without a position. Failing inputs are saved
under --out. Exit 1 when anything crashed or hung."""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rollback_tui.engine.answers import parse_answers  # noqa: E402
from rollback_tui.record.events import ActionOutput, DecisionMade, Signal, StepStarted  # noqa: E402
from rollback_tui.record.journal import Journal, read_journal  # noqa: E402
from rollback_tui.errors import RollbackError  # noqa: E402
from rollback_tui.plan.loader import parse_plan  # noqa: E402

SAMPLES = [p.read_text() for p in sorted((ROOT / "sample_plans").glob("*.yaml"))]
BROKEN = [p.read_text() for p in sorted((ROOT / "tests" / "plan" / "broken").glob("*.yaml"))]
ANSWERS = """\
operator: Dana Ops
inputs: confirm
missing_inputs: halt
plan_review: approve
approvals: {devops-lead: Dana Ops, tech-lead: Terry Tech}
steps:
  assess: go
  flags:
    - {choice: no_go, reason: EU flag still on, then: retry}
    - go
  code: {choice: override, reason: cached}
default_step: go
on_failed_action: halt
on_interrupted: rerun
manual: {database/restore: restored by hand}
"""
VARIABLES = {"sandbox": "/tmp/sb", "web_port": "8080", "ssh_port": "2222", "hook_port": "8081",
             "watch_seconds": "4"}
TOKENS = ["[", "]", "{", "}", ":", "- ", "&a ", "*a", "!!python/object:os.system x", "\t", "'", '"', "${nope}",
          "${sandbox}", "${secrets.x}", "kind: nonsense", "99999999", "9" * 5000, ".inf", ".nan", "-1", "1e309",
          "\x1b]52;c;SGk=\x07", "\u202e", "\u200b", "\x00", "\ufeff", "? ", "|", ">", "%YAML 1.1", "---", "...",
          "<<: *a", "0x10", "0o7", "yes", "on", "~", "!!binary aGk=", "@", "`"]
KEYS = ["metadata", "name", "rollback", "scope", "steps", "id", "kind", "actions", "argv", "verify", "health", "url",
        "group", "host_groups", "hosts", "secrets", "env", "file", "variables", "timeout", "retry", "attempts",
        "delay", "inputs", "artifacts", "check", "path", "approvals", "roles", "probe", "window", "constraints",
        "port", "concurrency", "budget", "mode", "flags", "revision", "bogus"]


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def bomb(rng: random.Random) -> str:
    choice = rng.randrange(5)
    if choice == 0:
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 12)]
        return "\n".join(lines) + "\nsteps: *a11\n"
    if choice == 1:
        depth = rng.choice([100, 1000, 5000, 20000])
        return "metadata: " + "[" * depth + "]" * rng.choice([0, depth]) + "\n"
    if choice == 2:
        return "metadata: &m {name: *m}\n"
    if choice == 3:
        return f"metadata: {{name: x}}\nrollback: {{scope: [code]}}\nsteps: [{{id: code, actions: [{{id: a, kind: shell, argv: [x], retry: {{attempts: 3, delay: {rng.choice(['1e300', '.inf', '-5', '9'*400, '999999999h'])}}}}}]}}]\n"
    return "x: " + "y" * rng.choice([10_000, 1_000_000, 12_000_000]) + "\n"


def random_doc(rng: random.Random, depth: int = 0) -> str:
    def value(d: int) -> str:
        pick = rng.random()
        if d > 3 or pick < 0.5:
            return rng.choice(TOKENS[:20] + ["30s", "5m", "code", "shell", "ssh", "true", "42", "x"])
        if pick < 0.75:
            return "[" + ", ".join(value(d + 1) for _ in range(rng.randrange(4))) + "]"
        return "{" + ", ".join(f"{rng.choice(KEYS)}: {value(d + 1)}" for _ in range(rng.randrange(4))) + "}"

    return "\n".join(f"{rng.choice(KEYS)}: {value(0)}" for _ in range(rng.randrange(1, 8))) + "\n"


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines() or [""]
    for _ in range(rng.randint(1, 6)):
        index = rng.randrange(len(lines))
        op = rng.randrange(7)
        line = lines[index]
        if op == 0 and len(lines) > 1:
            del lines[index]
        elif op == 1:
            lines.insert(index, line)
        elif op == 2:
            lines[index] = line[: rng.randint(0, len(line))]
        elif op == 3:
            lines[index] = "  " + line
        elif op == 4:
            lines[index] = line[2:] if line.startswith("  ") else line
        else:
            position = rng.randint(0, len(line))
            lines[index] = line[:position] + rng.choice(TOKENS) + line[position:]
    return "\n".join(lines) + "\n"


def check_plan(text: str) -> str:
    try:
        parse_plan(text, path=Path("plan.yaml"), variables=VARIABLES, label="plan.yaml")
    except RollbackError as exc:
        problems = getattr(exc, "problems", []) or [str(exc)]
        if not all(p.startswith("plan.yaml:") and p.split(":")[1].isdigit() for p in problems):
            return f"unpositioned: {problems[:2]}"
        if any("\x1b" in p for p in problems):
            return "ESC in a message"
    return ""


def check_answers(text: str) -> str:
    try:
        parse_answers(text, Path("answers.yaml"))
    except RollbackError as exc:
        problems = getattr(exc, "problems", []) or [str(exc)]
        if not all(p.startswith("answers.yaml:") for p in problems):
            return f"unpositioned: {problems[:2]}"
    return ""


def journal_bytes(tmp: Path) -> bytes:
    path = tmp / "base.jsonl"
    if not path.exists():
        with Journal.create(path) as journal:
            for _ in range(5):
                journal.append(StepStarted(step="assess"))
                journal.append(ActionOutput(step="assess", action="look", lines=["one", "ünïcode ✔", "x" * 300]))
                journal.append(DecisionMade(request_id=1, kind="gate", step="assess", choice="go", reason="ok",
                                            by="olivia"))
                journal.append(Signal(name="Rollback complete"))
    return path.read_bytes()


def check_journal(blob: bytes, tmp: Path) -> str:
    path = tmp / "fuzz.jsonl"
    path.unlink(missing_ok=True)
    path.write_bytes(blob)
    read_journal(path)
    try:
        Journal.open_existing(path).close()
    except RollbackError:
        pass
    return ""


def mutate_bytes(blob: bytes, rng: random.Random) -> bytes:
    data = bytearray(blob)
    op = rng.randrange(4)
    if op == 0:
        return bytes(data[: rng.randint(0, len(data))])
    if op == 1:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op == 2:
        start = rng.randrange(len(data))
        return bytes(data[:start] + data[start:start + rng.randint(1, 400)] * rng.randint(1, 3) + data[start:])
    return bytes(data) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))


def run(classes: dict[str, Callable[[random.Random], tuple[object, Callable[[], str]]]], seconds: float,
        hang: float, out: Path, seed: int) -> int:
    signal.signal(signal.SIGALRM, _alarm)
    failed = 0
    print(f"{'class':<18} {'tried':>8} {'crashed':>8} {'hung':>6} {'bad msg':>8}")
    for name, make in classes.items():
        rng = random.Random(f"{seed}-{name}")
        tried = crashed = hung = bad = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sample, check = make(rng)
            tried += 1
            signal.setitimer(signal.ITIMER_REAL, hang)
            try:
                problem = check()
            except Hang:
                hung += 1
                problem = "hang"
            except Exception:  # a crash: anything but the tool's own refusal
                crashed += 1
                problem = "crash:\n" + traceback.format_exc()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if problem and not problem.startswith(("crash", "hang")):
                bad += 1
            if problem:
                failed += 1
                target = out / f"{name}-{tried}.txt"
                raw = sample if isinstance(sample, bytes) else str(sample).encode(errors="replace")
                target.write_bytes(raw[:200_000] + b"\n\n# " + problem.encode(errors="replace"))
        print(f"{name:<18} {tried:>8} {crashed:>8} {hung:>6} {bad:>8}", flush=True)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--hang", type=float, default=10.0, help="seconds after which one input counts as hung")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rollback-tui-soak")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    base = journal_bytes(tmp)

    def plan_generated(rng: random.Random) -> tuple[object, Callable[[], str]]:
        text = random_doc(rng)
        return text, lambda: check_plan(text)

    def plan_mutated(rng: random.Random) -> tuple[object, Callable[[], str]]:
        text = mutate(rng.choice(SAMPLES + BROKEN), rng)
        return text, lambda: check_plan(text)

    def plan_bombs(rng: random.Random) -> tuple[object, Callable[[], str]]:
        text = bomb(rng)
        return text, lambda: check_plan(text)

    def plan_bytes(rng: random.Random) -> tuple[object, Callable[[], str]]:
        text = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400))).decode("utf-8", errors="replace")
        return text, lambda: check_plan(text)

    def answers_mutated(rng: random.Random) -> tuple[object, Callable[[], str]]:
        text = mutate(ANSWERS, rng) if rng.random() < 0.7 else (bomb(rng) if rng.random() < 0.3 else random_doc(rng))
        return text, lambda: check_answers(text)

    def journal_mutated(rng: random.Random) -> tuple[object, Callable[[], str]]:
        blob = mutate_bytes(base, rng)
        return blob, lambda: check_journal(blob, tmp)

    classes = {"plan: generated": plan_generated, "plan: mutated": plan_mutated, "plan: bombs": plan_bombs,
               "plan: bytes": plan_bytes, "answers": answers_mutated, "journal": journal_mutated}
    print(f"seed {args.seed}; {args.minutes:g} min over {len(classes)} classes; failures saved in {args.out}")
    return run(classes, args.minutes * 60 / len(classes), args.hang, args.out, args.seed)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
