"""The ansible action on real ansible-runner / ansible-core against real OpenSSH sshd hosts on loopback ports."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from rollback_tui.adapters.base import run_safely, verify_safely
from rollback_tui.loopback.openssh import available
from rollback_tui.secrets import MASK

from .conftest import CANARY, Fleet, Recorder, ansible_plan, cmdlines, kill_remote, leftovers, make_ctx, playbook, \
    wait_until

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "-")


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a killed fork waits for its reaper as a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def port(spec: str) -> int:
    return int(spec.rsplit(":", 1)[1])


async def test_a_playbook_on_three_hosts_reports_ok_and_changed_per_host_and_task(fleet: Fleet, tmp_path: Path
                                                                                  ) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    book = playbook(tmp_path, f"""\
    - name: read the release
      command: echo release v1.4.2 on {{{{ inventory_hostname }}}}
      changed_when: false
    - name: pin the release
      copy: {{content: "v1.4.2\\n", dest: "{marks}/{{{{ ansible_port }}}}"}}
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book), "verify_args": f"grep -qx v1.4.2 {marks}/{{{{ ansible_port }}}}"},
                        fleet.group())
    recorder = Recorder()
    ctx = make_ctx(plan, recorder, work, wave=2)
    result = await run_safely(plan.steps[0].actions[0], ctx)
    assert result.status == "ok", (result.error, recorder.lines())
    assert [(h.host, h.status) for h in result.hosts] == [(host, "ok") for host in fleet.hosts]
    assert recorder.tasks("read the release") == {host: "ok" for host in fleet.hosts}
    assert recorder.tasks("pin the release") == {host: "changed" for host in fleet.hosts}
    assert {e.wave for e in recorder.events} == {2} and {e.step for e in recorder.events} == {"code"}
    for host in fleet.hosts:  # stdout lines carry the host they are about, under the plan's name for it
        assert any(f"release v1.4.2 on 127.0.0.1_{port(host)}" in line for line in recorder.lines(host=host))
    assert any("PLAY RECAP" in line for line in recorder.lines(host=""))
    assert sorted(p.name for p in marks.iterdir()) == sorted(str(port(h)) for h in fleet.hosts)
    assert result.details["changed_tasks"] == 3 and result.exit_code == 0
    assert leftovers(work) == []

    checks = await verify_safely(plan.steps[0].actions[0], ctx)
    assert checks[0].ok and checks[0].readback == "target" and checks[0].observed == "3/3 hosts ok"
    (marks / str(port(fleet.hosts[1]))).write_text("v1.5.0\n")  # one host drifted back: the read-back says which
    checks = await verify_safely(plan.steps[0].actions[0], ctx)
    assert not checks[0].ok and [c.check for c in checks[1:]] == [
        f"`command grep -qx v1.4.2 {marks}/{{{{ ansible_port }}}}` on {fleet.hosts[1]}"]
    assert leftovers(work) == []


async def test_a_failing_task_and_an_unreachable_host_are_per_host_results(fleet: Fleet, tmp_path: Path) -> None:
    bad = port(fleet.hosts[1])
    book = playbook(tmp_path, f"""\
    - name: stop the bad release
      command: "sh -c 'test {{{{ ansible_port }}}} != {bad} || {{ echo disk full >&2; exit 3; }}'"
    - name: after
      command: "true"
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book)}, fleet.group([*fleet.hosts, fleet.dead]))
    recorder = Recorder()
    result = await run_safely(plan.steps[0].actions[0], make_ctx(plan, recorder, work))
    assert result.status == "failed"
    status = {h.host: h.status for h in result.hosts}
    assert status == {fleet.hosts[0]: "ok", fleet.hosts[1]: "failed", fleet.hosts[2]: "ok", fleet.dead: "unreachable"}
    assert recorder.tasks("stop the bad release") == {fleet.hosts[0]: "changed", fleet.hosts[1]: "failed",
                                                      fleet.hosts[2]: "changed", fleet.dead: "unreachable"}
    assert set(recorder.tasks("after")) == {fleet.hosts[0], fleet.hosts[2]}  # ansible drops a failed host
    failed = next(e for e in recorder.events if e.status == "failed")
    assert "non-zero return code" in failed.detail
    errors = {h.host: h.error for h in result.hosts}
    assert "task 'stop the bad release' failed" in errors[fleet.hosts[1]]
    # ansible's own words: "Connection refused", or under load its ssh multiplexer's "Broken pipe" on the same port
    assert "unreachable" in errors[fleet.dead] and fleet.dead.split(":")[0] in errors[fleet.dead]
    assert result.error.startswith("2 of 4 hosts failed: ")
    assert sorted(result.failed_hosts) == sorted([fleet.hosts[1], fleet.dead])
    assert leftovers(work) == []


async def test_only_hosts_becomes_limit(fleet: Fleet, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    book = playbook(tmp_path, f"""\
    - name: mark
      command: touch {marks}/{{{{ ansible_port }}}}
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book)}, fleet.group())
    recorder = Recorder()
    wave = [fleet.hosts[2], fleet.hosts[0]]
    result = await run_safely(plan.steps[0].actions[0], make_ctx(plan, recorder, work, only_hosts=wave, wave=1))
    assert result.status == "ok", result.error
    assert [h.host for h in result.hosts] == [fleet.hosts[0], fleet.hosts[2]]  # group order
    assert sorted(p.name for p in marks.iterdir()) == sorted([str(port(fleet.hosts[0])), str(port(fleet.hosts[2]))])
    assert set(recorder.tasks()) == set(wave)
    outside = await run_safely(plan.steps[0].actions[0], make_ctx(plan, Recorder(), work, only_hosts=["10.9.9.9"]))
    assert outside.status == "failed" and "hosts not in group 'web': 10.9.9.9" in outside.error


async def test_a_cancel_mid_run_stops_ansible_and_leaves_no_process(fleet: Fleet, tmp_path: Path) -> None:
    marker = "41.7"  # the remote sleep's argument, to find what the test started on the hosts
    book = playbook(tmp_path, f"""\
    - name: drain
      command: sleep {marker}
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book)}, fleet.group())
    recorder = Recorder()
    task = asyncio.ensure_future(run_safely(plan.steps[0].actions[0], make_ctx(plan, recorder, work)))
    try:
        await wait_until(lambda: sum(f"sleep {marker}" in line for line in cmdlines().values()) >= 3,
                         what="the sleep running on the three hosts")
        playbooks = [pid for pid, line in cmdlines().items() if "ansible-playbook" in line and str(work) in line]
        assert playbooks
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 20
        assert not [pid for pid in playbooks if alive(pid)]  # ansible-playbook and its forks
        assert leftovers(work) == []  # no ansible, no ssh ControlMaster, no private folder
        said = [line for line in recorder.lines(stream="info") if "cancelled" in line]
        assert said and all(host in said[0] for host in fleet.hosts), recorder.lines(stream="info")
        assert "cancel callback" in said[0] and "drain" in said[0]
    finally:
        if not task.done():
            task.cancel()
        kill_remote(f"sleep {marker}")


async def test_secrets_reach_ansible_in_a_file_never_in_argv_and_are_masked(fleet: Fleet, tmp_path: Path) -> None:
    book = playbook(tmp_path, """\
    - name: wait a little
      command: sleep 2
    - name: use the token
      command: echo token={{ token }}
    - name: show it
      debug: {msg: "the token is {{ token }}"}
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book), "extra_vars": {"token": "${secrets.canary}", "n": 3}}, fleet.group())
    recorder = Recorder()
    task = asyncio.ensure_future(run_safely(plan.steps[0].actions[0], make_ctx(plan, recorder, work)))
    seen_playbook: list[str] = []
    modes: set[int] = set()
    while not task.done():
        lines = cmdlines()
        ours = descendants(os.getpid()) | {pid for pid, line in lines.items() if str(work) in line}
        for pid in ours & set(lines):  # ansible-playbook, its forks, ssh clients and masters (not the hosts' side)
            assert CANARY not in lines[pid], f"the secret is in the command line of {pid}: {lines[pid]}"
            if "ansible-playbook" in lines[pid] and str(work) in lines[pid]:
                seen_playbook.append(lines[pid])
        for path in work.glob("*/env/extravars"):
            try:
                modes.add(path.stat().st_mode & 0o777)
            except FileNotFoundError:
                pass
        await asyncio.sleep(0.02)
    result = task.result()
    assert result.status == "ok", result.error
    assert len(seen_playbook) > 5  # it was watched while it ran
    assert "-e @" in seen_playbook[0] and "/env/extravars" in seen_playbook[0]
    assert modes == {0o600}
    text = "\n".join(recorder.lines()) + "".join(e.detail + e.task for e in recorder.events)
    assert CANARY not in text
    assert f"token={MASK}" in text and f"the token is {MASK}" in text
    assert leftovers(work) == []


async def test_the_action_s_timeout_stops_ansible_and_reports_every_host(fleet: Fleet, tmp_path: Path) -> None:
    marker = "43.3"
    book = playbook(tmp_path, f"""\
    - name: quick
      command: "true"
      when: ansible_port | int != {port(fleet.hosts[2])}
    - name: hang
      command: sleep {marker}
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book), "timeout": 15}, fleet.group())
    recorder = Recorder()
    try:
        result = await run_safely(plan.steps[0].actions[0], make_ctx(plan, recorder, work))
    finally:
        kill_remote(f"sleep {marker}")
    assert result.status == "timeout", result.error
    assert result.error.startswith("timed out after 14") and "stopped through its cancel callback" in result.error
    assert {h.status for h in result.hosts} == {"timeout"} and len(result.hosts) == 3
    assert all("while task 'hang' ran" in h.error for h in result.hosts), [h.error for h in result.hosts]
    assert recorder.tasks("quick") == {fleet.hosts[0]: "changed", fleet.hosts[1]: "changed",
                                       fleet.hosts[2]: "skipped"}
    assert leftovers(work) == []
