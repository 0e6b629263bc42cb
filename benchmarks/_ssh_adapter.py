"""A tiny CLI entry that runs the ssh adapter once (`echo ok` on the given hosts), for bench_ssh.py.

Usage: python benchmarks/_ssh_adapter.py KEY KNOWN_HOSTS CONCURRENCY PORT[,PORT...]
Prints `seconds ok cpu` of the fan-out itself (after the imports): the in-process figure; the caller times the
whole command from outside.
"""

from __future__ import annotations

import asyncio
import sys
import time


def main(argv: list[str]) -> int:
    key, known_hosts, concurrency, ports = argv[0], argv[1], int(argv[2]), argv[3].split(",")
    from rollback_tui.adapters.base import ActionContext, run_safely
    from rollback_tui.plan.models import Plan
    from rollback_tui.secrets import SecretStore

    plan = Plan.model_validate({
        "metadata": {"name": "bench"}, "rollback": {"scope": ["code"]},
        "host_groups": {"fleet": {"hosts": [f"127.0.0.1:{port}" for port in ports], "user": "root",
                                  "key_file": key, "known_hosts": known_hosts, "concurrency": concurrency}},
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

    elapsed, ok, cpu = asyncio.run(fan_out())
    print(elapsed, ok, cpu)
    return 0 if ok == len(ports) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
