"""Shell adapter: streaming, exit codes, timeout and cancel kill the whole group, cwd/env, injection, redaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rollback_tui.adapters.base import describe_safely, get_adapter, run_safely, verify_safely
from rollback_tui.plan.loader import load_plan
from rollback_tui.secrets import MASK

from .conftest import CANARY, Output, make_ctx, make_plan, process_alive, wait_until


def shell_action(**fields: object) -> dict[str, object]:
    return {"kind": "shell", "id": "cmd", **fields}


async def run(action: dict[str, object], output: Output | None = None):
    plan = make_plan([action])
    ctx = make_ctx(plan, output)
    return await run_safely(plan.steps[0].actions[0], ctx), ctx


async def test_stdout_and_stderr_arrive_line_by_line_while_the_command_runs(tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = f"echo first; echo oops >&2; while [ ! -e {go} ]; do sleep 0.02; done; printf 'second\\nlast-no-newline'"
    output = Output()
    task = asyncio.create_task(run(shell_action(argv=["sh", "-c", script]), output))
    # "first" is on screen while the command is still waiting: streamed, not collected at the end
    await wait_until(lambda: "first" in output.lines("stdout"), what="first line")
    assert not task.done()
    go.touch()
    result, _ = await task
    assert result.status == "ok" and result.exit_code == 0
    assert output.lines("stdout") == ["first", "second", "last-no-newline"]
    assert output.lines("stderr") == ["oops"]


async def test_exit_status_decides_and_the_last_stderr_line_explains() -> None:
    result, _ = await run(shell_action(argv=["sh", "-c", "echo 'disk full' >&2; exit 3"]))
    assert result.status == "failed" and result.exit_code == 3
    assert result.error == "exited with status 3 (expected 0): disk full"
    result, _ = await run(shell_action(argv=["sh", "-c", "exit 3"], expect_exit=3))
    assert result.status == "ok" and result.exit_code == 3


async def test_missing_program_is_a_readable_failure() -> None:
    result, _ = await run(shell_action(argv=["no-such-program-xyz", "arg"]))
    assert result.status == "failed"
    assert "cannot run 'no-such-program-xyz': no such program" in result.error
    assert "Traceback" not in result.error


async def test_timeout_kills_the_whole_group_even_a_grandchild_ignoring_sigterm(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # one grandchild dies on SIGTERM, the other ignores it and does not hold the output pipes: once the
    # leader is gone nothing waits on it, so only a SIGKILL of the whole group stops it
    command = (f"sleep 1000 >/dev/null 2>&1 & echo $! >> {pids}; "
               f"(trap '' TERM; exec sleep 1000 >/dev/null 2>&1) & echo $! >> {pids}; exec sleep 1000")
    result, _ = await run(shell_action(command=command, shell=True, timeout=3))
    assert result.status == "timeout"
    assert "timed out after 3s" in result.error
    grandchildren = [int(pid) for pid in pids.read_text().split()]
    assert len(grandchildren) == 2
    await wait_until(lambda: not any(process_alive(pid) for pid in grandchildren), what="grandchildren gone")


async def test_cancel_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    plan = make_plan([shell_action(command=f"sleep 1000 & echo $! > {pid_file}; wait", shell=True)])
    task = asyncio.create_task(run_safely(plan.steps[0].actions[0], make_ctx(plan)))
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "", what="pid file")
    pid = int(pid_file.read_text())
    assert process_alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not process_alive(pid), what="sleep killed")


async def test_cwd_and_env_come_from_the_plan(tmp_path: Path) -> None:
    output = Output()
    result, _ = await run(shell_action(argv=["sh", "-c", 'pwd; echo "$GREETING"'], cwd=str(tmp_path),
                                       env={"GREETING": "hello there"}), output)
    assert result.ok
    assert output.lines("stdout") == [str(tmp_path), "hello there"]
    result, _ = await run(shell_action(argv=["true"], cwd=str(tmp_path / "missing")))
    assert result.status == "failed" and f"working directory {tmp_path / 'missing'} does not exist" in result.error


async def test_a_plan_variable_reaches_argv_only_as_a_literal(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    victim = tmp_path / "x"
    victim.write_text("keep me")
    hostile = f"$(touch {marker}); rm -rf x"
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(f"""\
metadata: {{name: injection}}
rollback: {{scope: [code]}}
variables:
  target: "{hostile}"
steps:
  - id: code
    actions:
      - kind: shell
        id: echo-target
        argv: [printf, "%s\\n", "${{target}}"]
        cwd: {tmp_path}
""")
    plan = load_plan(plan_file).plan
    output = Output()
    result = await run_safely(plan.steps[0].actions[0], make_ctx(plan, output))
    assert result.ok
    assert output.lines("stdout") == [hostile]
    assert not marker.exists()
    assert victim.read_text() == "keep me"


async def test_the_canary_secret_never_appears_in_output_errors_or_descriptions(tmp_path: Path) -> None:
    script = 'echo "token=$TOKEN"; printf %s "$TOKEN" | base64; echo "$TOKEN" >&2; echo "arg=$1"; exit 7'
    action = shell_action(argv=["sh", "-c", script, "sh", "${secrets.canary}"], env={"TOKEN": "${secrets.canary}"},
                          verify_argv=["sh", "-c", 'echo "still $TOKEN"; exit 1'])
    plan = make_plan([action])
    output = Output()
    ctx = make_ctx(plan, output)
    result = await run_safely(plan.steps[0].actions[0], ctx)
    checks = await verify_safely(plan.steps[0].actions[0], ctx)
    description = await describe_safely(plan.steps[0].actions[0], ctx)
    assert result.status == "failed" and result.exit_code == 7
    # adapters hand their text on as it is; the session's record path masks it (ctx.redactor), descriptions
    # are masked by describe_safely (`rollback-tui plan` prints them without events)
    mask = ctx.redactor
    everything = "\n".join([mask(output.text), mask(result.error),
                            *(mask(c.observed + c.expected + c.check) for c in checks),
                            description.summary, *description.details])
    assert CANARY not in everything
    assert "token=" + MASK in mask.lines(output.lines("stdout"))
    assert "arg=" + MASK in mask.lines(output.lines("stdout"))
    assert MASK in mask(result.error)
    assert mask(checks[0].observed) == f"exit 1: still {MASK}"


async def test_describe_shows_quoted_argv_or_the_shell_risk() -> None:
    plan = make_plan([shell_action(argv=["deploy", "--tag", "v1.2 final", "${secrets.canary}"])])
    description = await get_adapter("shell").describe(plan.steps[0].actions[0], make_ctx(plan))
    assert description.summary == "run deploy --tag 'v1.2 final' '${secrets.canary}'"
    assert description.risks == []
    plan = make_plan([shell_action(command="systemctl restart app && echo done", shell=True)])
    description = await get_adapter("shell").describe(plan.steps[0].actions[0], make_ctx(plan))
    assert description.summary == "run sh -c 'systemctl restart app && echo done'"
    assert any("runs through sh -c" in risk for risk in description.risks)


async def test_verify_reads_back_with_verify_argv(tmp_path: Path) -> None:
    flag = tmp_path / "rolled-back"
    plan = make_plan([shell_action(argv=["touch", str(flag)], verify_argv=["test", "-e", str(flag)])])
    action, ctx = plan.steps[0].actions[0], make_ctx(plan)
    before = await verify_safely(action, ctx)
    assert [check.ok for check in before] == [False]
    assert (await run_safely(action, ctx)).ok
    after = await verify_safely(action, ctx)
    assert [(check.ok, check.observed) for check in after] == [(True, "exit 0")]
    plan = make_plan([shell_action(argv=["true"])])
    assert await verify_safely(plan.steps[0].actions[0], make_ctx(plan)) == []
