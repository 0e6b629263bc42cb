"""An attacker's files: planted symlinks (report temp file, JOURNAL.lock, the journal), a file that is no journal,
a journal with a seq gap or a repeat, and a FIFO or /dev/zero given to every command. Nothing is overwritten,
nothing is truncated, nothing hangs: each is refused with one line and exit 2."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rollback_tui.record.events import StepStarted
from rollback_tui.report.writer import write_private

CLI = [sys.executable, "-m", "rollback_tui"]
PLAN = """\
version: 1
metadata: {name: safe files}
rollback: {scope: [flags, code]}
steps:
- id: assess
  actions: [{id: look, kind: shell, argv: [echo, assessing]}]
- id: flags
  actions: [{id: "off", kind: shell, argv: [echo, flag off]}]
- id: code
  actions: [{id: checkout, kind: shell, argv: [echo, checked out]}]
"""
VICTIM = b"precious data that no session may overwrite\n"


def cli(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The CLI with stdin closed and a timeout: a command that blocks on a FIFO fails the test, never hangs it."""
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def fingerprint(path: Path) -> tuple[str, int, int]:
    info = os.lstat(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mtime_ns, info.st_size


@pytest.fixture(scope="module")
def finished_journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real journal: a headless run of a three-step plan."""
    work = tmp_path_factory.mktemp("journal")
    (work / "plan.yaml").write_text(PLAN)
    done = cli("run", "plan.yaml", "--headless", "--answers", "auto", "--no-sign", "--journal", "j.jsonl", cwd=work,
               timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return (work / "j.jsonl").read_bytes()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "victim.txt").write_bytes(VICTIM)
    os.chmod(tmp_path / "victim.txt", 0o644)
    return tmp_path


# ---------------------------------------------------------------- planted symlinks


def test_a_symlink_at_the_reports_old_predictable_temp_name_is_not_written_through(work: Path) -> None:
    report = work / "r.md"
    victim = work / "victim.txt"
    before = fingerprint(victim)
    for name in (f".r.md.tmp-{os.getpid()}", ".r.md.tmp", "r.md.tmp"):  # every name the writer ever used
        (work / name).symlink_to(victim)
    write_private(report, b"# the report\n")
    assert report.read_bytes() == b"# the report\n" and not report.is_symlink()
    assert fingerprint(victim) == before
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".r.md.")) == [".r.md.tmp",
                                                                                    f".r.md.tmp-{os.getpid()}"]


def test_a_report_path_that_is_a_symlink_is_replaced_not_followed(work: Path) -> None:
    victim = work / "victim.txt"
    before = fingerprint(victim)
    (work / "r.md").symlink_to(victim)
    done = cli("run", "plan.yaml", "--headless", "--answers", "auto", "--no-sign", "--journal", "j.jsonl",
               "--report", "r.md", cwd=work, timeout=120)
    assert done.returncode == 0, done.stderr
    assert fingerprint(victim) == before
    assert not (work / "r.md").is_symlink() and (work / "r.md").read_text().startswith("#")


def test_a_symlink_planted_at_journal_lock_is_refused_on_run(work: Path) -> None:
    victim = work / "victim.txt"
    before = fingerprint(victim)
    (work / "j.jsonl.lock").symlink_to(victim)
    done = cli("run", "plan.yaml", "--headless", "--answers", "auto", "--no-sign", "--journal", "j.jsonl", cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "j.jsonl.lock: the journal's lock file is a symbolic link; refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert fingerprint(victim) == before
    assert not (work / "j.jsonl").exists()  # nothing was started


def test_a_symlink_planted_at_journal_lock_is_refused_on_resume(work: Path, finished_journal: bytes) -> None:
    journal = work / "j.jsonl"
    journal.write_bytes(finished_journal)
    victim = work / "victim.txt"
    before, journal_before = fingerprint(victim), fingerprint(journal)
    (work / "j.jsonl.lock").symlink_to(victim)
    done = cli("resume", "j.jsonl", "--headless", "--answers", "auto", "--no-sign", cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the journal's lock file is a symbolic link; refused" in done.stderr
    assert fingerprint(victim) == before and fingerprint(journal) == journal_before


def test_a_dangling_symlink_at_journal_lock_creates_nothing(work: Path) -> None:
    (work / "j.jsonl.lock").symlink_to(work / "created-by-the-attackers-link")
    done = cli("run", "plan.yaml", "--headless", "--answers", "auto", "--no-sign", "--journal", "j.jsonl", cwd=work)
    assert done.returncode == 2 and "symbolic link" in done.stderr
    assert not (work / "created-by-the-attackers-link").exists()


def test_a_stale_lock_file_of_our_own_is_reused_but_never_truncated_through_a_hard_link(work: Path,
                                                                                        finished_journal: bytes) -> None:
    from rollback_tui.record.journal import Journal
    from rollback_tui.errors import JournalError

    journal = work / "j.jsonl"
    (work / "j.jsonl.lock").write_text("pid=1 host=old since=2026-01-01T00:00:00Z\n")  # left by a SIGKILL
    with Journal.create(journal) as created:
        created.append(StepStarted(step="assess"))
        assert f"pid={os.getpid()}" in (work / "j.jsonl.lock").read_text()
    victim = work / "victim.txt"
    os.link(victim, work / "j.jsonl.lock")  # a second name for a file that must not be truncated
    before = fingerprint(victim)
    with pytest.raises(JournalError, match="not a plain file of this user"):
        Journal.open_existing(journal)
    assert fingerprint(victim) == before and victim.read_bytes() == VICTIM


def test_a_journal_that_is_a_symlink_is_refused(work: Path, finished_journal: bytes) -> None:
    victim = work / "victim.txt"
    before = fingerprint(victim)
    (work / "new.jsonl").symlink_to(victim)
    done = cli("run", "plan.yaml", "--headless", "--answers", "auto", "--no-sign", "--journal", "new.jsonl", cwd=work)
    assert done.returncode == 2 and "journal new.jsonl is a symbolic link; refused" in done.stderr
    (work / "dangling.jsonl").symlink_to(work / "nowhere.jsonl")
    done = cli("run", "plan.yaml", "--headless", "--answers", "auto", "--no-sign", "--journal", "dangling.jsonl",
               cwd=work)
    assert done.returncode == 2 and "symbolic link" in done.stderr and not (work / "nowhere.jsonl").exists()

    real = work / "real.jsonl"
    real.write_bytes(finished_journal)
    real_before = fingerprint(real)
    (work / "link.jsonl").symlink_to(real)
    for headless in (["--headless", "--answers", "auto"], []):
        done = cli("resume", "link.jsonl", "--no-sign", *headless, cwd=work)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.splitlines()[0] == "rollback-tui: link.jsonl: is a symbolic link, not a regular file; " \
                                              "refused (give the path of a journal)"
    for command in (["follow", "link.jsonl"], ["replay", "link.jsonl"]):
        done = cli(*command, cwd=work)
        assert done.returncode == 2 and "is a symbolic link" in done.stderr, command
    assert fingerprint(victim) == before and fingerprint(real) == real_before
    assert not (work / "real.jsonl.lock").exists() and not (work / "link.jsonl.lock").exists()


# ---------------------------------------------------------------- resume: not a journal, bad sequence


@pytest.mark.parametrize("content", [
    b"hello world\n",  # one line of text: it once looked like a torn tail and was truncated to nothing
    b"line one\nline two\nline three",
    b'{"a": 1}\n',
    b'{"schema_version":1,"seq":1,"ts":"2026-',  # only half a first line
    b"",
    b"\x00" * 64,
], ids=["one-text-line", "text-lines", "other-json", "half-a-first-line", "empty", "nul-bytes"])
def test_resume_refuses_a_file_that_is_not_a_journal_and_leaves_it_untouched(work: Path, content: bytes) -> None:
    target = work / "notes.txt"
    target.write_bytes(content)
    os.utime(target, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = fingerprint(target)
    for headless in (["--headless", "--answers", "auto"], []):
        done = cli("resume", "notes.txt", "--no-sign", *headless, cwd=work)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith("rollback-tui: notes.txt: not a rollback-tui journal ("), done.stderr
        assert "Traceback" not in done.stderr
        assert fingerprint(target) == before  # sha256, mtime and size
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "plan.yaml", "victim.txt"]  # no lock, no report


def test_resume_refuses_a_journal_whose_first_event_is_not_session_started(work: Path, finished_journal: bytes) -> None:
    lines = finished_journal.split(b"\n")
    target = work / "j.jsonl"
    target.write_bytes(b"\n".join(lines[1:]))
    before = fingerprint(target)
    done = cli("resume", "j.jsonl", "--headless", "--answers", "auto", "--no-sign", cwd=work)
    assert done.returncode == 2
    assert "j.jsonl: not a rollback-tui journal (line 1 is a" in done.stderr
    assert "event, not session_started)" in done.stderr
    assert fingerprint(target) == before


def test_resume_names_the_first_line_of_a_gap_in_seq(work: Path, finished_journal: bytes) -> None:
    lines = finished_journal.split(b"\n")
    del lines[4]  # the event with seq 5
    target = work / "j.jsonl"
    target.write_bytes(b"\n".join(lines))
    before = fingerprint(target)
    done = cli("resume", "j.jsonl", "--headless", "--answers", "auto", "--no-sign", cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("rollback-tui: j.jsonl:5: sequence 6 follows 4 "), done.stderr
    assert fingerprint(target) == before


def test_resume_names_the_first_line_of_a_repeated_seq(work: Path, finished_journal: bytes) -> None:
    lines = finished_journal.split(b"\n")
    lines.insert(7, lines[6])  # seq 7 twice: lines 7 and 8
    target = work / "j.jsonl"
    target.write_bytes(b"\n".join(lines))
    before = fingerprint(target)
    done = cli("resume", "j.jsonl", "--headless", "--answers", "auto", "--no-sign", cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("rollback-tui: j.jsonl:8: sequence 7 follows 7 "), done.stderr
    assert fingerprint(target) == before


def test_resume_refuses_a_seq_that_does_not_start_at_one(work: Path, finished_journal: bytes) -> None:
    from rollback_tui.record.journal import Journal
    from rollback_tui.errors import JournalError

    target = work / "j.jsonl"
    target.write_bytes(finished_journal.replace(b'"seq":1,', b'"seq":0,', 1))
    before = fingerprint(target)
    with pytest.raises(JournalError, match=r"j.jsonl:1: sequence 0 follows 0"):
        Journal.open_existing(target, require_start=True)
    assert fingerprint(target) == before


# ---------------------------------------------------------------- FIFOs and devices


def _commands(special: str) -> list[list[str]]:
    return [
        ["validate", special],
        ["plan", special],
        ["run", special, "--headless", "--answers", "auto", "--no-sign"],
        ["run", special, "--no-sign"],
        ["run", "plan.yaml", "--headless", "--answers", special, "--no-sign", "--journal", "a.jsonl"],
        ["resume", special, "--headless", "--answers", "auto", "--no-sign"],
        ["resume", special, "--no-sign"],
        ["follow", special],
        ["replay", special],
    ]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "socket"])
def test_special_files_are_refused_by_every_command_without_blocking(work: Path, kind: str) -> None:
    if kind == "fifo":
        special = work / "pipe"
        os.mkfifo(special)
    elif kind == "dev-zero":
        special = Path("/dev/zero")
    elif kind == "directory":
        special = work / "folder"
        special.mkdir()
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(work / "sock"))
        special = work / "sock"
    for command in _commands(str(special)):
        done = cli(*command, cwd=work, timeout=20)  # a blocking open or an endless read fails here
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        lines = done.stderr.splitlines()
        assert f"{special}: " in lines[0] and "not a regular file" in lines[0], (command, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, command
        assert len(lines) <= 2, (command, done.stderr)  # the refusal, and at most a hint or a count of problems
    assert not (work / "a.jsonl").exists()


@pytest.mark.parametrize("kind,words", [("fifo", "is a FIFO (named pipe)"), ("dev-zero", "is a character device"),
                                        ("directory", "is a directory"), ("socket", "is a socket"),
                                        ("symlink", "is a symbolic link")])
def test_the_refusal_says_what_the_file_is(work: Path, kind: str, words: str) -> None:
    from rollback_tui.safeio import FileRefused, read_regular

    special = {"dev-zero": Path("/dev/zero"), "directory": work}.get(kind, work / kind)
    if kind == "fifo":
        os.mkfifo(special)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(special))
    elif kind == "symlink":
        special.symlink_to(work / "victim.txt")
    with pytest.raises(FileRefused) as info:
        read_regular(special, follow=kind != "symlink", what="plan file")
    assert str(info.value) == f"{special}: {words}, not a regular file; refused (give the path of a plan file)"
    for command in (["validate", str(special)], ["resume", str(special), "--headless", "--answers", "auto"]):
        if kind == "symlink" and command[0] == "validate":
            continue  # a plan may be a link to a regular file: it is read, never written
        done = cli(*command, cwd=work, timeout=20)
        assert done.returncode == 2 and words in done.stderr.splitlines()[0], (command, done.stderr)


def test_a_plan_larger_than_the_cap_is_refused(work: Path) -> None:
    big = work / "big.yaml"
    with big.open("wb") as handle:
        handle.write(b"# " + b"x" * (11 * 1024 * 1024) + b"\n")
    done = cli("validate", "big.yaml", cwd=work)
    assert done.returncode == 2 and "big.yaml: larger than 10 MB; refused" in done.stderr


def test_torn_tail_recovery_still_works_through_the_cli(work: Path, finished_journal: bytes) -> None:
    """The checks above must not refuse what a crash leaves: a journal cut in its last line resumes."""
    lines = finished_journal.split(b"\n")
    keep = len(lines) // 2
    target = work / "j.jsonl"
    target.write_bytes(b"\n".join(lines[:keep]) + b"\n" + lines[keep][:25])
    done = cli("resume", "j.jsonl", "--headless", "--answers", "auto", "--no-sign", cwd=work, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "journal recovery: dropped line" in done.stderr


def test_a_secret_file_that_is_a_device_or_fifo_is_refused_not_read_for_ever(work: Path) -> None:
    os.mkfifo(work / "secret-pipe")
    for source in ("/dev/zero", str(work / "secret-pipe")):
        (work / "s.yaml").write_text(PLAN.replace("rollback: {scope: [flags, code]}\n",
                                                  f"rollback: {{scope: [flags, code]}}\nsecrets:\n"
                                                  f"  tok: {{file: {source}}}\n"))
        done = cli("validate", "s.yaml", cwd=work, timeout=20)
        assert done.returncode == 3, done.stdout + done.stderr  # blocked: a declared secret cannot be read
        assert f"MISSING tok: {source}: is a" in done.stdout and "not a regular file" in done.stdout
