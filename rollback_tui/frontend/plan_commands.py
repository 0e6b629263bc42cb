"""The `validate`, `plan` and `schema` subcommands."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rollback_tui.errors import PlanError
from rollback_tui.procedure.exits import EXIT_BLOCKED, EXIT_OK
from rollback_tui.procedure.exits import EXIT_USAGE as EXIT_INVALID
from rollback_tui.plan.loader import LoadedPlan, load_plan
from rollback_tui.plan.models import Plan
from rollback_tui.review.inputs import InputResult, check_inputs
from rollback_tui.secrets import SecretStore


def plan_schema() -> dict:
    from rollback_tui.plan.schema import published_schema

    return published_schema(Plan.model_json_schema())


def cmd_schema() -> int:
    json.dump(plan_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def _load(path: Path, variables: Mapping[str, str]) -> LoadedPlan | None:
    try:
        return load_plan(path, variables)
    except PlanError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was run", file=sys.stderr)
        return None


def _symbol(result: InputResult) -> str:
    return {True: "ok     ", False: "MISSING", None: "CONFIRM"}[result.ok]


def cmd_validate(path: Path, variables: Mapping[str, str]) -> int:
    loaded = _load(path, variables)
    if loaded is None:
        return EXIT_INVALID
    plan = loaded.plan
    actions = sum(len(step.actions) for step in plan.steps)
    print(f"{path}: valid plan {plan.metadata.name!r}: {len(plan.applicable_steps)} of 7 steps applicable, "
          f"{actions} actions, {len(plan.health)} health probes")
    results = asyncio.run(check_inputs(plan))
    halting: list[str] = []
    print("required inputs:")
    for result in results:
        line = f"  {_symbol(result)} {result.category:<10} {result.input_id}: {result.detail}"
        if result.ok is False:
            line += f"\n          remediation: {result.remediation_text}"
            if result.remediation == "halt":
                halting.append(result.input_id)
        print(line)
    secrets = SecretStore(plan.secrets, base_dir=loaded.base_dir)
    secret_problems = secrets.load_all()
    if plan.secrets:
        print("secrets:")
        for name in plan.secrets:
            problem = secret_problems.get(name)
            if problem is None:
                print(f"  ok      {name}")
            else:
                print(f"  MISSING {name}: {problem.args[0].split(': ', 1)[-1]}")
                if problem.hint:
                    print(f"          hint: {problem.hint}")
    if any(getattr(p, "kind", "") == "prometheus" for p in plan.health) or any(
            getattr(c, "kind", "") in ("prometheus", "analysis") for step in plan.steps for c in step.verify):
        from rollback_tui.health.promcheck import check_queries  # only plans with metrics queries pay for it

        query_errors, query_notes = asyncio.run(check_queries(plan, loaded.text, str(path), secrets))
        for line in query_notes:
            print(line)
        if query_errors:
            for line in query_errors:
                print(line, file=sys.stderr)
            print(f"{path}: {len(query_errors)} PromQL problem(s); nothing was run", file=sys.stderr)
            return EXIT_INVALID
    confirm = [r.input_id for r in results if r.ok is None]
    if confirm:
        print(f"the operator confirms at the start of the session: {', '.join(confirm)}")
    if halting or secret_problems:
        reasons = [f"missing input {name!r} halts the procedure" for name in halting]
        reasons += ["a declared secret cannot be read"] if secret_problems else []
        print(f"result: blocked ({'; '.join(reasons)}): exit 3")
        return EXIT_BLOCKED
    remediated = [r.input_id for r in results if r.ok is False]
    if remediated:
        print(f"result: valid; missing inputs take their remediation path: {', '.join(remediated)}")
    else:
        print("result: valid; every checked input is present")
    return EXIT_OK


def cmd_plan(path: Path, variables: Mapping[str, str], output: Path | None) -> int:
    from rollback_tui.review.render import render_plan

    loaded = _load(path, variables)
    if loaded is None:
        return EXIT_INVALID
    secrets = SecretStore(loaded.plan.secrets, base_dir=loaded.base_dir)
    with tempfile.TemporaryDirectory(prefix="rollback-plan-") as scratch:
        markdown = asyncio.run(render_plan(loaded.plan, secrets, Path(scratch)))
    if output is None:
        sys.stdout.write(markdown)
    else:
        try:
            output.write_text(markdown)
        except OSError as exc:
            print(f"rollback-tui: cannot write {output}: {exc.strerror}", file=sys.stderr)
            return EXIT_INVALID
        print(f"plan: {output}")
    return EXIT_OK
