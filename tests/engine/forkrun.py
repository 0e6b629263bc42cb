"""Crash-and-resume driver: import the tool once, then fork a real process per run (start-up cost paid once).

Usage: python forkrun.py JOBS.json  ->  prints JSON results. Each job: {"dir", "kill_at", "run": [...], "resume": [...]}.
For each job a forked child runs the CLI `run` and SIGKILLs itself right after journal event `kill_at` is durable;
then another forked child runs the CLI `resume`. At most 4 jobs run at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from rollback_tui.cli import main
from rollback_tui.record import journal as journal_module

# imported before any fork: the children start with everything loaded
import rollback_tui.adapters.shell  # noqa: F401,E402
import rollback_tui.review.render  # noqa: F401,E402
import rollback_tui.report.writer  # noqa: F401,E402  (used by the children)


def _child(directory: str, args: list[str], kill_at: int | None) -> None:
    os.chdir(directory)
    name = "run" if kill_at is not None else "resume"
    out = os.open(f"{name}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    if kill_at is not None:
        append_many = journal_module.Journal.append_many

        def killing(self: journal_module.Journal, events: list) -> list:  # type: ignore[type-arg]
            done = append_many(self, events)
            if self.last_seq >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return done

        journal_module.Journal.append_many = killing  # type: ignore[method-assign]
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    os._exit(code)


def _spawn(directory: str, args: list[str], kill_at: int | None) -> int:
    pid = os.fork()
    if pid == 0:
        _child(directory, args, kill_at)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _job(job: dict) -> dict:  # type: ignore[type-arg]
    killed = _spawn(job["dir"], job["run"], job["kill_at"])
    resumed = _spawn(job["dir"], job["resume"], None)
    return {"dir": job["dir"], "killed": killed, "resumed": resumed}


def run_jobs(jobs: list[dict], width: int = 4) -> list[dict]:  # type: ignore[type-arg]
    results: dict[int, dict] = {}  # type: ignore[type-arg]
    running: dict[int, int] = {}
    pending = list(enumerate(jobs))
    while pending or running:
        while pending and len(running) < width:
            index, job = pending.pop(0)
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                os.write(write_end, json.dumps(_job(job)).encode())
                os._exit(0)
            os.close(write_end)
            running[pid] = index
            jobs[index]["_pipe"] = read_end
        pid, _ = os.wait()
        index = running.pop(pid)
        with os.fdopen(jobs[index].pop("_pipe"), "rb") as pipe:
            results[index] = json.loads(pipe.read() or b"{}")
    return [results[index] for index in range(len(jobs))]


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(run_jobs(json.load(handle))))
