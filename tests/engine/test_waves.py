"""Waves of an ssh action against real asyncssh servers on 127.0.0.1 (in another process): order, canary, the
wave gate, pauses, the failure budget, unreachable hosts, retry of failed hosts, exclusion, answers, SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_tui.engine.decisions import AnswersDecisions, Decision
from rollback_tui.engine.answers import parse_answers
from rollback_tui.errors import PlanError
from rollback_tui.loopback.sshd import write_known_hosts
from rollback_tui.plan.loader import load_plan
from rollback_tui.procedure.states import HostState, IllegalTransition, host_transition
from rollback_tui.record.events import DecisionRequested
from rollback_tui.report.render import render_report

from .conftest import Scripted, approving, check_journal, of_type, run_plan

HERE = Path(__file__).parent
COUNT = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Fleet:
    def __init__(self, ports: list[int], key: Path, known_hosts: Path) -> None:
        self.ports, self.key, self.known_hosts = ports, key, known_hosts
        self.hosts = [f"127.0.0.1:{port}" for port in ports]
        self.name = {host: f"h{n}" for n, host in enumerate(self.hosts, 1)}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Six asyncssh servers (HOST_NAME h1..h6) in a child process; stopped afterwards."""
    import asyncssh

    tmp = tmp_path_factory.mktemp("fleet")
    for name in ("client", "host"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    port_file = tmp / "ports"
    server = subprocess.Popen([sys.executable, str(HERE / "wave_fleet.py"), str(port_file), str(tmp / "host"),
                               str(tmp / "client.pub"), str(COUNT)])
    try:
        end = time.monotonic() + 30
        while not port_file.exists():
            assert server.poll() is None and time.monotonic() < end, "the loopback fleet did not start"
            time.sleep(0.05)
        ports = [int(line) for line in port_file.read_text().split()]
        host_key = asyncssh.read_private_key(str(tmp / "host"))
        write_known_hosts(tmp / "known_hosts", [("127.0.0.1", port, host_key) for port in ports])
        yield Fleet(ports, tmp / "client", tmp / "known_hosts")
    finally:
        server.terminate()
        server.wait(10)


def command(marks: Path) -> str:
    """Every run appends its host to `runs`; a host listed in `fail` exits 3, in `fail_once` once, in `slow_once`
    sleeps 30 s once."""
    return (f"cd {marks} && echo $HOST_NAME >> runs; "
            "if grep -qx $HOST_NAME fail_once 2>/dev/null; then grep -vx $HOST_NAME fail_once > f.$HOST_NAME; "
            "mv f.$HOST_NAME fail_once; exit 3; fi; "
            "if grep -qx $HOST_NAME slow_once 2>/dev/null; then grep -vx $HOST_NAME slow_once > s.$HOST_NAME; "
            "mv s.$HOST_NAME slow_once; sleep 30; fi; "
            "if grep -qx $HOST_NAME fail 2>/dev/null; then exit 3; fi; echo rolled back on $HOST_NAME")


def write_plan(tmp: Path, fleet: Fleet, waves: dict[str, Any], *, hosts: list[str] | None = None,
               health: list[dict[str, Any]] | None = None, **marks: list[str]) -> Path:
    work = tmp / "marks"
    work.mkdir(exist_ok=True)
    for name, names in marks.items():
        (work / name).write_text("".join(f"{n}\n" for n in names))
    data = {
        "version": 1, "metadata": {"name": "waves test"}, "rollback": {"scope": ["code"]},
        "host_groups": {"fleet": {"hosts": hosts or fleet.hosts, "user": "root", "key_file": str(fleet.key),
                                  "known_hosts": str(fleet.known_hosts), "connect_timeout": 5}},
        "health": health or [],
        "steps": [{"id": "code", "actions": [{"id": "restart", "kind": "ssh", "group": "fleet",
                                              "command": command(work), "timeout": 60, "waves": waves}]}],
    }
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def runs(tmp: Path) -> list[str]:
    path = tmp / "marks" / "runs"
    return path.read_text().split() if path.exists() else []


def scripted(**by_kind: Any) -> Scripted:
    """approving(), with a function per decision kind (wave, action_failed, no_go, interrupted)."""
    base = approving()

    def answer(request: DecisionRequested) -> Decision:
        if request.kind in by_kind:
            return by_kind[request.kind](request)
        return base(request)

    return Scripted(answer)


def go(request: DecisionRequested) -> Decision:
    return Decision("go")


def names(fleet: Fleet, hosts: list[str]) -> list[str]:
    return [fleet.name.get(host, host) for host in hosts]


async def test_waves_run_in_order_canary_first_with_a_go_between(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 2, "first": 1})
    source = scripted(wave=go)
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed"
    [planned] = of_type(events, "waves_planned")
    assert [names(fleet, wave) for wave in planned.waves] == [["h1"], ["h2", "h3"], ["h4", "h5"], ["h6"]]
    assert planned.failure_budget == 0
    started = of_type(events, "action_started")
    assert [(e.wave, names(fleet, e.hosts)) for e in started] == [(n, w) for n, w in enumerate(
        [["h1"], ["h2", "h3"], ["h4", "h5"], ["h6"]], 1)]
    assert [e.wave for e in of_type(events, "action_finished")] == [1, 2, 3, 4]
    order = runs(tmp_path)
    assert order[0] == "h1" and sorted(order) == [f"h{n}" for n in range(1, 7)]  # each host once, canary first
    assert order.index("h3") < order.index("h4") and order.index("h5") < order.index("h6")
    gates = [r for r in source.seen if r.kind == "wave"]
    assert [r.subject for r in gates] == ["wave-1", "wave-2", "wave-3"]  # none after the last wave
    assert gates[0].options == ["go", "no_go", "abort", "halt"]
    assert gates[1].evidence.detail == "wave 2 of 4: 2 ok; failure budget 0 of 0 used"
    assert len(of_type(events, "host_finished")) == 6  # each host journaled as it finished


async def test_a_no_go_at_a_wave_stops_the_waves_then_asks_what_next(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 3, "first": 1})
    source = scripted(wave=lambda r: Decision("no_go", "latency up on the canary"),
                      no_go=lambda r: Decision("abort", "canary bad"))
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "aborted"
    assert runs(tmp_path) == ["h1"]  # no further wave was launched
    follow = [r for r in source.seen if r.kind == "no_go"][0]
    assert (follow.step, follow.action, follow.subject) == ("code", "restart", "wave-1")
    assert follow.options == ["retry", "reassess", "abort", "halt"]
    assert "No-go after wave 1 of 3 of code/restart" in follow.question


async def test_a_pause_waits_journaled_and_goes_on_unless_health_is_down(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 2, "between": "pause 0.3s"})
    source = scripted()
    started = time.monotonic()
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed" and time.monotonic() - started >= 0.6
    assert [(e.wave, e.seconds) for e in of_type(events, "wave_paused")] == [(1, 0.3), (2, 0.3)]
    assert not [r for r in source.seen if r.kind == "wave"]

    down = tmp_path / "down"
    down.mkdir()
    probe = {"id": "db", "kind": "tcp", "host": "127.0.0.1", "port": _free_port(), "interval": "50ms",
             "timeout": "1s", "down_after": 1}
    plan = write_plan(down, fleet, {"size": 3, "between": "pause 0.3s"}, health=[probe])
    source = scripted(wave=lambda r: Decision("go", "db is down for maintenance, known"))
    result, events = await run_plan(plan, source, down)
    assert result.exit_state == "completed" and not of_type(events, "wave_paused")
    [gate] = [r for r in source.seen if r.kind == "wave"]
    assert gate.evidence.health["db"]["state"] == "down"
    assert "health is down (db)" in gate.evidence.detail


async def test_the_budget_exceeded_stops_the_waves_and_asks_action_failed(fleet: Fleet, tmp_path: Path) -> None:
    unreachable = f"127.0.0.1:{_free_port()}"  # nobody listens there
    hosts = [fleet.hosts[0], fleet.hosts[1], unreachable, *fleet.hosts[2:]]
    plan = write_plan(tmp_path, fleet, {"size": 3, "failure_budget": 1}, hosts=hosts, fail=["h2"])
    source = scripted(wave=go, action_failed=lambda r: Decision("abort", "two hosts down"))
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "aborted"
    assert sorted(runs(tmp_path)) == ["h1", "h2"]  # wave 2 was never launched
    [finished] = of_type(events, "action_finished")
    assert finished.error.startswith("failure budget exceeded: 2 hosts failed, budget 1; ")
    states = {fleet.name.get(h.host, "dead"): h.status for h in finished.hosts}
    assert states == {"h1": "ok", "h2": "failed", "dead": "unreachable"}
    [asked] = [r for r in source.seen if r.kind == "action_failed"]
    assert "failure budget exceeded: 2 hosts failed, budget 1" in asked.question
    assert asked.options == ["retry", "retry_failed", "exclude_failed", "manual", "abort", "halt"]
    assert names(fleet, asked.evidence.failed_hosts) == ["h2", unreachable]


async def test_an_unreachable_host_within_the_budget_is_a_failed_host_of_its_wave(fleet: Fleet, tmp_path: Path
                                                                                   ) -> None:
    unreachable = f"127.0.0.1:{_free_port()}"
    plan = write_plan(tmp_path, fleet, {"size": 2, "failure_budget": 1}, hosts=[fleet.hosts[0], unreachable,
                                                                                 fleet.hosts[1]])
    source = scripted(wave=go)
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed"
    [gate] = [r for r in source.seen if r.kind == "wave"]
    assert gate.evidence.failed_hosts == [unreachable]
    assert gate.evidence.detail.startswith("wave 1 of 2: 1 ok, 1 unreachable; failure budget 1 of 1 used\n"
                                           f"{unreachable}: host 127.0.0.1:")
    assert "retry_failed" in gate.options and "exclude_failed" in gate.options


async def test_retry_failed_runs_only_the_failed_hosts_again(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 3, "failure_budget": 1}, fail_once=["h2"])
    source = scripted(wave=lambda r: Decision("retry_failed" if r.evidence.failed_hosts else "go"))
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed"
    assert Counter(runs(tmp_path)) == {"h1": 1, "h2": 2, "h3": 1, "h4": 1, "h5": 1, "h6": 1}
    assert [(e.wave, names(fleet, e.hosts)) for e in of_type(events, "action_started")] == [
        (1, ["h1", "h2", "h3"]), (1, ["h2"]), (2, ["h4", "h5", "h6"])]
    assert [r.subject for r in source.seen if r.kind == "wave"] == ["wave-1", "wave-1"]  # asked again after it


async def test_excluded_hosts_are_never_run_again_and_do_not_count(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 2, "first": 1}, fail=["h2"])
    data = yaml.safe_load(plan.read_text())  # the step's read-back: every host but the excluded one
    data["steps"][0]["actions"][0]["verify_command"] = "test $HOST_NAME != h2"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    source = scripted(wave=go, action_failed=lambda r: Decision(
        "exclude_failed", "h2's disk is read-only; rebuilt from the image later") if "exclude_failed" in r.options
        else Decision("abort", "no"))
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed"
    [excluded] = of_type(events, "hosts_excluded")
    assert (excluded.wave, names(fleet, excluded.hosts), excluded.by) == (2, ["h2"], "olivia")
    assert excluded.reason == "h2's disk is read-only; rebuilt from the image later"
    assert Counter(runs(tmp_path))["h2"] == 1
    [readback] = of_type(events, "verification")
    assert readback.ok and readback.check.endswith("on 5 host(s) of fleet")
    gates = [r for r in source.seen if r.kind == "wave"]
    assert gates[1].evidence.detail.startswith("wave 2 of 4: 1 ok, 1 excluded; failure budget 0 of 0 used; "
                                               "1 host(s) excluded")
    # the report: hosts x waves with state words, counts per state and wave, the excluded host and its reason
    report = render_report(events)
    assert render_report(events) == report
    section = report.split("## Hosts in waves\n", 1)[1].split("\n## ", 1)[0]
    h2 = fleet.hosts[1]
    assert "- 6 host(s) in 4 wave(s); failure budget 0, 0 used; hosts: 5 ok, 1 excluded" in section
    assert "- wave 2: 2 host(s): 1 ok, 1 excluded" in section
    assert "| Host | Wave 1 | Wave 2 | Wave 3 | Wave 4 | Attempts | Detail |" in section
    assert f"| `{h2}` |   | excluded |   |   | 1 | h2's disk is read-only; rebuilt from the image later |" in section
    assert f"- `{h2}` (wave 2) by olivia: h2's disk is read-only; rebuilt from the image later" in section
    assert "## Hosts in waves" not in render_report([e for e in events if e.type != "waves_planned"])


def test_a_host_cannot_move_where_the_table_does_not_allow() -> None:
    assert host_transition(HostState.failed, HostState.excluded) == HostState.excluded
    assert host_transition(HostState.ok, HostState.running) == HostState.running  # a retry the operator chose
    with pytest.raises(IllegalTransition, match="host h2 cannot go from excluded to running"):
        host_transition(HostState.excluded, HostState.running, "host h2")
    with pytest.raises(IllegalTransition, match="from pending: running"):
        host_transition(HostState.pending, HostState.ok)
    with pytest.raises(IllegalTransition):
        host_transition(HostState.ok, HostState.excluded)  # only a failed host is excluded


# ---------------------------------------------------------------- headless: answers, auto, SIGKILL

ANSWERS = {"approvals": {"devops-lead": "Dana Ops", "tech-lead": "Terry Tech"}}
KILLER = """
import os, signal, sys
from rollback_tui.cli import main
from rollback_tui.record import journal
append_many = journal.Journal.append_many
wave, needed = int(sys.argv[1]), int(sys.argv[2])
seen = []
def killing(self, events):
    done = append_many(self, events)
    seen.extend(e for e in events if e.type == "host_finished" and e.wave == wave)
    if len(seen) >= needed:
        os.kill(os.getpid(), signal.SIGKILL)
    return done
journal.Journal.append_many = killing
sys.exit(main(sys.argv[3:]))
"""


def cli(args: list[str], cwd: Path, *, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *(prefix or ["-m", "rollback_tui"]), *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


def test_answers_file_answers_the_wave_gate_per_wave(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 2, "failure_budget": 1}, fail=["h4"])
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({**ANSWERS, "on_wave": {
        "code/restart": "go",
        "code/restart/wave-2": {"choice": "exclude_failed", "reason": "h4 is being decommissioned"}}}))
    done = cli(["run", str(plan), "--headless", "--answers", str(answers), "--no-sign", "--journal", "j.jsonl"],
               tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    events = check_journal(tmp_path / "j.jsonl")
    made = [(e.subject, e.choice, e.reason) for e in of_type(events, "decision_made") if e.kind == "wave"]
    assert made == [("wave-1", "go", ""), ("wave-2", "exclude_failed", "h4 is being decommissioned")]
    assert names(fleet, of_type(events, "hosts_excluded")[0].hosts) == ["h4"]
    # a key that names no waved action is refused with its position
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**ANSWERS, "on_wave": {"code/nothing/wave-1": "go"}}))
    refused = cli(["run", str(plan), "--headless", "--answers", str(bad), "--no-sign"], tmp_path)
    assert refused.returncode == 2 and "bad.yaml:" in refused.stderr + refused.stdout
    assert "no action 'code/nothing/wave-1'" in refused.stderr + refused.stdout


def test_answers_auto_retries_a_failed_wave_once_then_goes(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 3, "failure_budget": 1}, fail_once=["h2"])
    done = cli(["run", str(plan), "--headless", "--answers", "auto", "--no-sign", "--journal", "j.jsonl"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    events = check_journal(tmp_path / "j.jsonl")
    assert [e.choice for e in of_type(events, "decision_made") if e.kind == "wave"] == ["retry_failed", "go"]
    assert Counter(runs(tmp_path))["h2"] == 2


def test_the_answers_file_knows_the_wave_section() -> None:
    answers = parse_answers("on_wave: {code/restart: [go, {choice: no_go, reason: slow, then: halt}]}\n",
                            Path("a.yaml"))
    [first, second] = answers.on_wave["code/restart"]
    assert first.choice == "go" and second.then is not None and second.then.choice == "halt"
    with pytest.raises(PlanError, match="'exclude_failed' needs a reason"):
        parse_answers("on_wave: exclude_failed\n", Path("a.yaml"))
    assert isinstance(AnswersDecisions(answers, "o"), AnswersDecisions)


def test_sigkill_mid_wave_then_resume_runs_no_host_twice(fleet: Fleet, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, fleet, {"size": 3}, slow_once=["h6"])
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({**ANSWERS, "on_wave": "go", "on_interrupted": "rerun"}))
    common = ["--headless", "--answers", str(answers), "--no-sign"]
    killed = cli(["2", "2", "run", str(plan), *common, "--journal", "j.jsonl"], tmp_path, prefix=["-c", KILLER])
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    before = check_journal(tmp_path / "j.jsonl")
    assert sorted(names(fleet, [e.result.host for e in of_type(before, "host_finished") if e.wave == 2])) == [
        "h4", "h5"]
    time.sleep(0.2)  # the killed session's channel to h6 closes; its sleep goes on there, holding nothing
    resumed = cli(["resume", "j.jsonl", *common], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    events = check_journal(tmp_path / "j.jsonl")
    [asked] = [e for e in of_type(events, "decision_requested") if e.kind == "interrupted"]
    assert names(fleet, asked.evidence.failed_hosts) == ["h6"] and asked.subject == "wave-2"
    assert "2 host(s) of the wave finished ok and do not run again" in asked.evidence.detail
    # every host ran once; h6, whose outcome the crash left unknown, again because the answer said rerun
    assert Counter(runs(tmp_path)) == {"h1": 1, "h2": 1, "h3": 1, "h4": 1, "h5": 1, "h6": 2}
    last = [e for e in of_type(events, "action_started")][-1]
    assert (last.wave, names(fleet, last.hosts)) == (2, ["h6"])
    assert of_type(events, "session_finished")[0].exit_state == "completed"


async def test_an_interrupted_wave_resumed_with_verify_only_reads_back_only_its_unfinished_hosts(
        fleet: Fleet, tmp_path: Path) -> None:
    import asyncio

    from rollback_tui.engine.session import Session

    plan_path = write_plan(tmp_path, fleet, {"size": 3}, slow_once=["h6"])
    data = yaml.safe_load(plan_path.read_text())
    marks = tmp_path / "marks"
    data["steps"][0]["actions"][0]["verify_command"] = f"echo $HOST_NAME >> {marks}/verified"
    plan_path.write_text(yaml.safe_dump(data, sort_keys=False))
    journal = tmp_path / "j.jsonl"
    finished_in_wave_2: list[str] = []

    def listen(event: Any) -> None:
        if event.type == "host_finished" and event.wave == 2:
            finished_in_wave_2.append(event.result.host)
            if len(finished_in_wave_2) == 2:
                asyncio.get_running_loop().call_soon(session.interrupt, "SIGTERM")

    session = Session.start(load_plan(plan_path), decisions=scripted(wave=go), operator="olivia",
                            journal_path=journal, no_sign=True, listeners=[listen])
    assert (await asyncio.wait_for(session.run(), 60)).interrupted == "SIGTERM"
    source = scripted(wave=go, interrupted=lambda r: Decision("verify_only"))
    resumed = Session.resume(journal, decisions=source, operator="olivia", no_sign=True)
    result = await resumed.run()
    assert result.exit_state == "completed"
    events = check_journal(journal)
    [asked] = [r for r in source.seen if r.kind == "interrupted"]
    assert names(fleet, asked.evidence.failed_hosts) == ["h6"]
    verified = (marks / "verified").read_text().split()
    assert verified[0] == "h6"  # the interrupted host alone was read back first, then the whole group at the step
    assert sorted(verified[1:]) == [f"h{n}" for n in range(1, 7)]
    assert Counter(runs(tmp_path)) == {f"h{n}": 1 for n in range(1, 7)}  # nothing ran twice
    assert of_type(events, "verification")[0].check.endswith("on 1 host(s) of fleet")
