"""The ansible action in a plan: validation of its paths, the plan review's check mode, a headless session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rollback_tui.adapters.base import describe_safely
from rollback_tui.errors import PlanError
from rollback_tui.loopback.openssh import available
from rollback_tui.plan.loader import load_plan

from .conftest import CANARY, PYTHON, Fleet, Recorder, ansible_plan, leftovers, make_ctx, playbook

CLI = [sys.executable, "-m", "rollback_tui"]
needs_sshd = pytest.mark.skipif(bool(available()), reason=available() or "-")


def plan_file(folder: Path, action: dict, group: dict | None = None, name: str = "plan.yaml") -> Path:
    data = {
        "metadata": {"name": "fleet rollback"},
        "rollback": {"scope": ["code"]},
        "secrets": {"canary": {"env": "CANARY_TOKEN"}},
        "host_groups": {"web": group or {"hosts": ["127.0.0.1:2201"]}},
        "steps": [{"id": "code", "actions": [{"kind": "ansible", "id": "roll", **action}]}],
    }
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return [line for line in str(caught.value.args[0]).splitlines() if line.strip()]


def test_paths_are_relative_to_the_plan_and_may_not_escape_it(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    loaded = load_plan(plan_file(tmp_path, {"playbook": "site.yml", "hosts": "web"}))
    assert loaded.plan.steps[0].actions[0].playbook == str((tmp_path / "site.yml").resolve())

    outside = tmp_path.parent / f"{tmp_path.name}-outside.yml"
    outside.write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "escape.yml").symlink_to(outside)
    path = plan_file(tmp_path, {"playbook": "escape.yml", "hosts": "web"})
    [line] = errors(path)
    assert line.startswith(f"{path}:18:15: steps[0].actions[0].playbook: ") and "outside the plan's folder" in line and "symlink" in line
    [line] = errors(plan_file(tmp_path, {"playbook": "../" + outside.name, "hosts": "web"}))
    assert "outside the plan's folder" in line
    [line] = errors(plan_file(tmp_path, {"playbook": "missing.yml", "hosts": "web"}))
    assert "playbook 'missing.yml' does not exist" in line
    [line] = errors(plan_file(tmp_path, {"playbook": "site.yml", "hosts": "wbe"}))
    assert "unknown host group 'wbe'; did you mean 'web'?" in line
    (tmp_path / "inventory").mkdir()
    loaded = load_plan(plan_file(tmp_path, {"module": "ping", "inventory": "inventory", "pattern": "db"}))
    assert loaded.plan.steps[0].actions[0].inventory == str((tmp_path / "inventory").resolve())


@pytest.mark.parametrize(("action", "message"), [
    ({"module": "command", "args": "echo ${secrets.canary}", "hosts": "web"}, "would put a secret on ansible's"),
    ({"hosts": "web"}, "exactly one of 'playbook'"),
    ({"module": "ping"}, "exactly one of 'hosts'"),
    ({"module": "ping", "hosts": "web", "check_review": True}, "an ad hoc module has none"),
    ({"module": "ping", "hosts": "web", "extra_vars": {"bad-name": 1}}, "extra_vars"),
])
def test_the_action_s_form_is_checked_with_a_position(tmp_path: Path, action: dict, message: str) -> None:
    lines = errors(plan_file(tmp_path, action))
    assert any(message in line and line.startswith(f"{tmp_path / 'plan.yaml'}:") for line in lines), lines


@needs_sshd
async def test_check_review_shows_the_playbook_s_diff_and_changes_nothing(fleet: Fleet, tmp_path: Path) -> None:
    target = tmp_path / "release.txt"
    target.write_text("v1.5.0\n")
    book = playbook(tmp_path, f"""\
    - name: pin the release
      copy: {{content: "v1.4.2\\n", dest: "{target}"}}
""")
    work = tmp_path / "session"
    work.mkdir()
    plan = ansible_plan({"playbook": str(book), "check_review": True, "extra_vars": {"t": "${secrets.canary}"}},
                        fleet.group([fleet.hosts[0]]))
    description = await describe_safely(plan.steps[0].actions[0], make_ctx(plan, Recorder(), work))
    text = "\n".join(description.details)
    assert description.summary.startswith(f"run ansible playbook {book} on 1 host(s) of host group web as root")
    assert "check mode (--check --diff), ansible rc 0:" in text
    assert f"--- before: {target}" in text and f"+++ after: {target}" in text
    assert "-v1.5.0" in text and "+v1.4.2" in text
    assert "extra vars (in a 0600 file, never on the command line): t" in text
    assert target.read_text() == "v1.5.0\n"  # check mode changed nothing
    assert leftovers(work) == []


@needs_sshd
def test_a_headless_session_runs_an_ansible_action_end_to_end(fleet: Fleet, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "site.yml").write_text(f"""\
- hosts: all
  gather_facts: false
  tasks:
    - name: roll back to v1.4.2
      copy: {{content: "v1.4.2 {{{{ token | length }}}}\\n", dest: "{marks}/{{{{ ansible_port }}}}"}}
    - name: say the token
      debug: {{msg: "token {{{{ token }}}}"}}
""")
    group = {**fleet.group(), "key_file": str(fleet.key)}
    plan = plan_file(tmp_path, {"playbook": "site.yml", "hosts": "web", "python_interpreter": PYTHON,
                                "check_review": True, "extra_vars": {"token": "${secrets.canary}"},
                                "verify_args": f"grep -q v1.4.2 {marks}/{{{{ ansible_port }}}}"}, group)
    key = tmp_path / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "olivia", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'olivia namespaces="rollback-tui" {key.with_suffix(".pub").read_text()}')
    env = {**os.environ, "CANARY_TOKEN": CANARY}
    review = subprocess.run([*CLI, "plan", str(plan)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert review.returncode == 0, review.stderr
    assert "check mode (--check --diff)" in review.stdout, review.stdout[-4000:]
    assert "+++ after" in review.stdout and "+v1.4.2 25" in review.stdout  # 25 = len(token): the real value ran
    assert CANARY not in review.stdout
    done = subprocess.run([*CLI, "run", str(plan), "--headless", "--answers", "auto", "--operator", "olivia",
                           "--sign-key", str(key), "--journal", "j.jsonl"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"code/roll [{fleet.hosts[0]}]: task 'roll back to v1.4.2' changed" in done.stdout
    journal = (tmp_path / "j.jsonl").read_text()
    assert CANARY not in journal and CANARY not in done.stdout
    events = [json.loads(line) for line in journal.splitlines()]
    tasks = [e for e in events if e["type"] == "host_task"]
    assert {(e["host"], e["task"], e["status"]) for e in tasks} == {
        *((host, "roll back to v1.4.2", "changed") for host in fleet.hosts),
        *((host, "say the token", "ok") for host in fleet.hosts)}
    finished = [e for e in events if e["type"] == "action_finished" and e["action"] == "roll"]
    assert finished[-1]["status"] == "ok" and {h["host"] for h in finished[-1]["hosts"]} == set(fleet.hosts)
    checks = [e for e in events if e["type"] == "verification" and e.get("action") == "roll"]
    assert checks and checks[0]["ok"] and checks[0]["observed"] == "3/3 hosts ok"
    outputs = [line for e in events if e["type"] == "action_output" for line in e["lines"]]
    assert any("token •••" in line for line in outputs)
    report = tmp_path / "j.md"
    text = report.read_text()
    assert CANARY not in text and "`roll`" in text
    verified = subprocess.run([*CLI, "verify", str(report), "--allowed-signers", str(allowed), "--identity",
                               "olivia"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert list(tmp_path.glob("*/ansible-*")) == [] and list(tmp_path.glob("ansible-*")) == []
    assert [line for line in leftovers(tmp_path) if line[0].isdigit()] == []  # no process names the session



@needs_sshd
def test_retry_failed_hosts_runs_ansible_again_on_those_hosts_only(fleet: Fleet, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    flaky = int(fleet.hosts[1].rsplit(":", 1)[1])
    (tmp_path / "site.yml").write_text(f"""\
- hosts: all
  gather_facts: false
  tasks:
    - name: count the run
      shell: echo run >> {marks}/{{{{ ansible_port }}}}.runs
    - name: restart the service
      shell: "test -f {marks}/{{{{ ansible_port }}}}.fixed || {{ touch {marks}/{{{{ ansible_port }}}}.fixed; echo stuck >&2; exit 1; }}"
      when: ansible_port | int == {flaky}
""")
    plan = plan_file(tmp_path, {"playbook": "site.yml", "hosts": "web", "python_interpreter": PYTHON}, fleet.group())
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({"inputs": "confirm", "plan_review": "approve",
                                       "approvals": {"devops-lead": "Dana Ops", "tech-lead": "Terry Tech"},
                                       "default_step": "go", "on_failed_action": "retry_failed"}))
    done = subprocess.run([*CLI, "run", str(plan), "--headless", "--answers", str(answers), "--no-sign",
                           "--journal", "j.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CANARY_TOKEN": CANARY})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    started = [e["hosts"] for e in events if e["type"] == "action_started" and e["action"] == "roll"]
    assert started == [fleet.hosts, [fleet.hosts[1]]]
    finished = [e for e in events if e["type"] == "action_finished" and e["action"] == "roll"]
    assert [f["status"] for f in finished] == ["failed", "ok"]
    assert [h["host"] for h in finished[1]["hosts"]] == [fleet.hosts[1]]
    asked = [e for e in events if e["type"] == "decision_requested" and e["kind"] == "action_failed"]
    assert asked[0]["evidence"]["failed_hosts"] == [fleet.hosts[1]] and "retry_failed" in asked[0]["options"]
    second = [e for e in events if e["type"] == "host_task" and e["seq"] > finished[0]["seq"]]
    assert {e["host"] for e in second} == {fleet.hosts[1]}
    runs = {p.name: p.read_text().count("run") for p in marks.glob("*.runs")}
    assert runs == {f"{port}.runs": 2 if port == flaky else 1
                    for port in (int(h.rsplit(":", 1)[1]) for h in fleet.hosts)}  # no other host ran twice


@needs_sshd
def test_an_ansible_action_runs_in_waves_with_a_canary_and_each_wave_limited_to_its_hosts(
        fleet: Fleet, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "site.yml").write_text(f"""\
- hosts: all
  gather_facts: false
  tasks:
    - name: count the run
      shell: echo run >> {marks}/{{{{ ansible_port }}}}.runs
""")
    plan = plan_file(tmp_path, {"playbook": "site.yml", "hosts": "web", "python_interpreter": PYTHON,
                                "waves": {"first": 1, "size": 2, "between": "decision"}}, fleet.group())
    review = subprocess.run([*CLI, "plan", str(plan)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CANARY_TOKEN": CANARY})
    assert review.returncode == 0, review.stderr
    assert fleet.hosts[0] in review.stdout and "wave" in review.stdout.lower()
    done = subprocess.run([*CLI, "run", str(plan), "--headless", "--answers", "auto", "--no-sign",
                           "--journal", "j.jsonl"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CANARY_TOKEN": CANARY})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    planned = [e for e in events if e["type"] == "waves_planned"]
    assert planned and planned[0]["waves"] == [fleet.hosts[:1], fleet.hosts[1:3]]
    started = [(e.get("wave", 0), e["hosts"]) for e in events if e["type"] == "action_started"
               and e["action"] == "roll"]
    assert started == [(1, fleet.hosts[:1]), (2, fleet.hosts[1:3])]
    gates = [e for e in events if e["type"] == "decision_requested" and e["kind"] == "wave"]
    assert len(gates) == 1 and "exclude_failed" not in gates[0]["options"]  # nothing failed in the canary
    tasks = [(e.get("wave", 0), e["host"]) for e in events if e["type"] == "host_task"]
    assert sorted(tasks) == sorted([(1, fleet.hosts[0]), (2, fleet.hosts[1]), (2, fleet.hosts[2])])
    runs = {p.name: p.read_text().count("run") for p in marks.glob("*.runs")}
    assert runs == {f"{h.rsplit(':', 1)[1]}.runs": 1 for h in fleet.hosts[:3]}  # each host once, by its wave
    assert "Hosts in waves" in (tmp_path / "j.md").read_text()
