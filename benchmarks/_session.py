"""Inputs of the command benchmarks: plans of N actions, signing keys, and long interrupted journals."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, tool

# Appends a log-flood mix to a real interrupted journal through the product's own writer
# (Journal.open_existing + append_many, one fsync per batch of 1,000) and event models, in its own process.
# The mix: output batches of 10 log lines (~100 chars each) on stdout, one stderr batch and one info line
# in every 50 events, as a long noisy action produces them.
GENERATE = r"""
import sys
from pathlib import Path
from rollback_tui.record.events import ActionOutput
from rollback_tui.record.journal import Journal

path, total, step, action = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
journal = Journal.open_existing(path)
have = journal.last_seq
n = 0
while have < total:
    batch = []
    for _ in range(min(1000, total - have)):
        if n % 50 == 48:
            event = ActionOutput(step=step, action=action, stream="stderr",
                                 lines=[f"WARN slow upstream response after {n % 900} ms (retrying)"])
        elif n % 50 == 49:
            event = ActionOutput(step=step, action=action, stream="info", lines=[f"progress {n}"])
        else:
            event = ActionOutput(step=step, action=action, lines=[
                f"2026-11-26T10:{n % 60:02d}:{k:02d}Z INFO GET /api/checkout/{n * 10 + k} 200 12ms "
                f"request_id=4f1c9a7e-{n:08x} user=u{(n + k) % 977}" for k in range(10)])
        batch.append(event)
        n += 1
    journal.append_many(batch)
    have += len(batch)
journal.close()
print(have)
"""


def write_plan(path: Path, actions: int, *, flood_step: bool = False) -> Path:
    """A plan with `actions` shell actions in the code step (and, with flood_step, an action after them that
    runs long the first time, when the session is killed, and finishes at once when resumed)."""
    body = "\n".join(f'      - {{id: a{i}, kind: shell, argv: ["true"], description: "action {i} of the fleet"}}'
                     for i in range(actions))
    marker = path.with_suffix(".ran")
    flood = (f'      - {{id: flood, kind: shell, argv: ["sh", "-c", "test -e {marker} || {{ touch {marker}; '
             f'sleep 600; }}"], timeout: 30s}}\n') if flood_step else ""
    path.write_text(f"""version: 1
metadata: {{name: bench, incident: INC-1, environment: production}}
rollback: {{scope: [code]}}
steps:
  - id: code
    actions:
{body}
{flood}  - id: validate
    actions: [{{id: smoke, kind: shell, argv: ["true"]}}]
""")
    return path


def make_key(directory: Path, principal: str = "bench") -> tuple[Path, Path]:
    """An ed25519 signing key and an allowed_signers file trusting it for `principal`."""
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)], check=True)
    allowed = directory / "allowed_signers"
    allowed.write_text(f'{principal} namespaces="rollback-tui" {Path(str(key) + ".pub").read_text().strip()}\n')
    return key, allowed


def interrupted_journal(directory: Path, events: int, env: dict[str, str]) -> tuple[Path, Path]:
    """(plan, journal): a real headless session killed (SIGKILL) while its long action runs, then padded with
    the log-flood mix up to `events` events. Resuming it asks first what to do with the interrupted action."""
    plan = write_plan(directory / f"long-{events}.yaml", 3, flood_step=True)
    journal = directory / f"long-{events}.journal.jsonl"
    process = subprocess.Popen([tool("rollback-tui"), "run", str(plan), "--headless", "--answers", "auto",
                                "--no-sign", "--operator", "bench", "--journal", str(journal),
                                "--report", str(directory / f"first-{events}.md")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    seen = []
    for raw in process.stdout:
        seen.append(raw.decode(errors="replace"))
        if "code/flood: started" in seen[-1] or time.monotonic() > deadline:
            break
    marker = plan.with_suffix(".ran")
    while not marker.exists() and time.monotonic() < deadline:  # the action's shell has really begun
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if not any("code/flood: started" in line for line in seen):
        raise RuntimeError("the session to interrupt never started its long action:\n" + "".join(seen[-20:]))
    subprocess.run([sys.executable, "-c", GENERATE, str(journal), str(events), "code", "flood"], check=True,
                   env=env, cwd=ROOT, capture_output=True)
    return plan, journal


_CACHE: dict[int, tuple[Path, Path]] = {}


def flood_journal(events: int, env: dict[str, str]) -> tuple[Path, Path]:
    """(plan, journal) of interrupted_journal, made once per process and shared by the benchmarks of one run;
    callers copy the journal before anything writes to it."""
    if events not in _CACHE:
        directory = Path(tempfile.mkdtemp(prefix=f"bench-journal-{events}-"))
        atexit.register(shutil.rmtree, directory, True)
        _CACHE[events] = interrupted_journal(directory, events, env)
    return _CACHE[events]


def copy_journal(source: Path, target: Path, events: int | None = None) -> Path:
    """A copy of a journal, or of its first `events` lines (a prefix of a journal is a journal)."""
    with source.open("rb") as src, target.open("wb") as dst:
        if events is None:
            shutil.copyfileobj(src, dst, 1 << 20)
        else:
            for _ in range(events):
                line = src.readline()
                if not line:
                    break
                dst.write(line)
    target.chmod(0o600)
    return target
