"""SSH fan-out: `echo ok` on 200 loopback SSH servers through the ssh adapter, Ansible and parallel-ssh.

Usage: python benchmarks/bench_ssh.py [--quick]
The servers (rollback_tui.loopback.sshd, asyncssh) run in a separate process with pre-loaded keys; the
three clients take turns against the same servers in each round. The adapter and parallel-ssh are timed
around the fan-out itself; Ansible as the whole `ansible all -m raw -f 50` command an operator would run
(it has no in-process API worth comparing), with SSH connection sharing off so every run connects afresh.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOSTS = 200
CONCURRENCY = 50

_PSSH_SCRIPT = """
import sys, time
from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig
key, ports, pool = sys.argv[1], [int(p) for p in sys.argv[2].split(',')], int(sys.argv[3])
configs = [HostConfig(port=port, user='root', private_key=key) for port in ports]
client = ParallelSSHClient(['127.0.0.1'] * len(ports), host_config=configs, pool_size=pool, num_retries=1, timeout=60)
started, cpu = time.monotonic(), time.process_time()
output = client.run_command('echo ok', stop_on_errors=False)
client.join(output)
ok = sum(1 for host in output if host.exception is None and list(host.stdout) == ['ok'] and host.exit_code == 0)
print(time.monotonic() - started, ok, time.process_time() - cpu)
"""


def _row(name: str, values: list[float], unit: str, target: str, met: bool | None) -> dict:
    return {"name": name, "median": statistics.median(values), "min": min(values), "max": max(values),
            "unit": unit, "target": target, "met": met}


class Servers:
    """200 loopback asyncssh servers in their own process, with a client key and a known_hosts file."""

    def __init__(self, count: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-ssh-"))
        self.key = self.tmp / "client"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        from rollback_tui.loopback.sshd import generate_host_key

        self.host_key = generate_host_key(self.tmp / "host_key")
        port_file = self.tmp / "ports"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rollback_tui.loopback.sshd", "--port-file", str(port_file),
             "--host-key", str(self.tmp / "host_key"), "--authorized-keys", str(self.key) + ".pub",
             "--count", str(count)])
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the loopback SSH servers did not start")
            time.sleep(0.05)
        self.ports = [int(line) for line in port_file.read_text().split()]
        from rollback_tui.loopback.sshd import write_known_hosts

        self.known_hosts = write_known_hosts(self.tmp / "known_hosts",
                                             [("127.0.0.1", port, self.host_key) for port in self.ports])

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_adapter(servers: Servers, concurrency: int) -> tuple[float, int, float]:
    """Seconds for the ssh adapter (through run_safely, as the runner calls it), hosts that said ok, CPU s."""
    from rollback_tui.adapters.base import ActionContext, run_safely
    from rollback_tui.plan.models import Plan
    from rollback_tui.secrets import SecretStore

    plan = Plan.model_validate({
        "metadata": {"name": "bench"}, "rollback": {"scope": ["code"]},
        "host_groups": {"fleet": {"hosts": [f"127.0.0.1:{port}" for port in servers.ports], "user": "root",
                                  "key_file": str(servers.key), "known_hosts": str(servers.known_hosts),
                                  "concurrency": concurrency}},
        "steps": [{"id": "code", "actions": [{"kind": "ssh", "id": "echo", "group": "fleet", "command": "echo ok"}]}],
    })
    said_ok: set[str] = set()

    def sink(host: str, stream: str, lines: list[str]) -> None:
        if stream == "stdout" and lines == ["ok"]:
            said_ok.add(host)

    ctx = ActionContext(plan=plan, step="code", action_id="echo", secrets=SecretStore({}), output=sink)

    async def fan_out() -> tuple[float, int, float]:
        started, cpu = time.monotonic(), time.process_time()
        result = await run_safely(plan.steps[0].actions[0], ctx)
        elapsed = time.monotonic() - started
        return elapsed, sum(h.status == "ok" and h.host in said_ok for h in result.hosts), time.process_time() - cpu

    return asyncio.run(fan_out())


def run_ansible(servers: Servers) -> tuple[float, int, float]:
    inventory = servers.tmp / "inventory.ini"
    inventory.write_text("[fleet]\n" + "".join(
        f"h{i} ansible_host=127.0.0.1 ansible_port={port}\n" for i, port in enumerate(servers.ports)))
    env = {**os.environ, "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPersist=no",
           "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_LOCAL_TEMP": str(servers.tmp / "ansible-tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}
    argv = ["ansible", "all", "-i", str(inventory), "-m", "raw", "-a", "echo ok", "-f", str(CONCURRENCY),
            "-u", "root", "--private-key", str(servers.key),
            f"--ssh-common-args=-o UserKnownHostsFile={servers.known_hosts} -o StrictHostKeyChecking=yes"]
    started, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    # its CPU includes the forks and the ssh client processes: all of it is the client's cost
    return elapsed, done.stdout.count("| CHANGED | rc=0"), _children_cpu() - cpu


def run_pssh(servers: Servers) -> tuple[float, int, float]:
    ports = ",".join(str(port) for port in servers.ports)
    done = subprocess.run([sys.executable, "-c", _PSSH_SCRIPT, str(servers.key), ports, str(CONCURRENCY)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"parallel-ssh failed: {done.stderr.strip().splitlines()[-1:]}")
    elapsed, ok, cpu = done.stdout.split()
    return float(elapsed), int(ok), float(cpu)


def main(quick: bool = False) -> list[dict]:
    rounds = 3 if quick else 5
    have_ansible = shutil.which("ansible") is not None
    have_pssh = importlib.util.find_spec("pssh") is not None
    if not have_ansible:
        print("ansible is not installed (pip install ansible-core): reporting without it")
    if not have_pssh:
        print("parallel-ssh is not installed (pip install parallel-ssh): reporting without it")
    servers = Servers(HOSTS)
    times: dict[str, list[float]] = {}
    cpu_ms: dict[str, list[float]] = {}
    short: dict[str, int] = {}
    try:
        run_adapter(servers, CONCURRENCY)  # warm-up: imports, first-use caches
        for index in range(rounds):
            contenders = [(f"adapter, concurrency {CONCURRENCY}", lambda: run_adapter(servers, CONCURRENCY)),
                          ("adapter, default concurrency 20", lambda: run_adapter(servers, 20))]
            if have_pssh:
                contenders.append((f"parallel-ssh, pool {CONCURRENCY}", lambda: run_pssh(servers)))
            if have_ansible:
                contenders.append((f"ansible -m raw -f {CONCURRENCY}", lambda: run_ansible(servers)))
            for name, contender in contenders:
                elapsed, ok, cpu = contender()
                times.setdefault(name, []).append(elapsed)
                cpu_ms.setdefault(name, []).append(cpu * 1000 / HOSTS)
                if ok != HOSTS:
                    short[name] = min(short.get(name, HOSTS), ok)
                print(f"round {index + 1}: {name}: {elapsed:.2f} s, {ok}/{HOSTS} ok, client CPU {cpu:.2f} s",
                      flush=True)
    finally:
        servers.close()
    adapter = f"adapter, concurrency {CONCURRENCY}"
    rows = []
    for name, values in times.items():
        target, met = ("< 2 s", statistics.median(values) < 2.0) if name.startswith("adapter") else ("-", None)
        if name in short:
            target, met = f"all {HOSTS} ok (worst run: {short[name]})", False
        rows.append(_row(f"echo ok on {HOSTS} hosts: {name}", values, "s", target, met))
    for name, values in cpu_ms.items():
        # CPU per host depends far less on the neighbours' load than wall time does on this shared machine
        rows.append(_row(f"client CPU per host: {name}", values, "ms", "-", None))
    for name, values in times.items():
        if name.startswith("adapter"):
            continue
        ratios = [other / mine for other, mine in zip(values, times[adapter])]
        goal = name.startswith("ansible")
        rows.append(_row(f"{name} / adapter time", ratios, "x", ">= 10x" if goal else "-",
                         statistics.median(ratios) >= 10 if goal else None))
    for row in rows:
        print(f"{row['name']}: median {row['median']:.3g} {row['unit']} ({row['min']:.3g}-{row['max']:.3g}) "
              f"target {row['target']}: {({True: 'met', False: 'NOT MET', None: '-'})[row['met']]}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 5")
    main(quick=parser.parse_args().quick)
