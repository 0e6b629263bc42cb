"""Load a plan file: safe YAML, ${variable} substitution, strict models, cross-references, file:line:col errors."""

from __future__ import annotations

import difflib
import hashlib
import re
import shlex
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rollback_tui.errors import PlanError
from rollback_tui.plan.models import Plan
from rollback_tui.plan.typed import Refused, VarStr
from rollback_tui.plan.types import DEFAULT_ORDER, SCOPE_STEP, STEP_ORDER, Scope
from rollback_tui.plan.waves import group_of
from rollback_tui.plan.yamlpos import Path_, YamlDocument
from rollback_tui.safeio import FileRefused, read_regular

_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class LoadedPlan:
    """A validated plan and where it came from."""

    plan: Plan
    path: Path
    sha256: str
    text: str
    variables: dict[str, str]

    @property
    def base_dir(self) -> Path:
        return self.path.parent


class _Problems:
    def __init__(self, label: str, doc: YamlDocument) -> None:
        self.label = label
        self.doc = doc
        self.items: list[tuple[int, int, str]] = []

    def at(self, path: Path_, message: str, *, key: bool = False) -> None:
        line, col = self.doc.positions.key(path) if key else self.doc.positions.value(path)
        self.items.append((line, col, message))

    def add(self, line: int, col: int, message: str) -> None:
        self.items.append((line, col, message))

    def render(self) -> list[str]:
        unique = sorted(set(self.items))
        return [f"{self.label}:{line}:{col}: {message}" for line, col, message in unique]


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------- variables


_SHELL_LINES = {"command", "verify_command"}  # strings that a (remote) shell interprets
_SHELL_KINDS = {"ssh", "shell"}


def _substitute(value: Any, path: Path_, env: Mapping[str, str], secrets: set[str], problems: _Problems,
                quote: bool = False) -> Any:
    if isinstance(value, dict):
        shell_line = isinstance(value.get("kind"), str) and value["kind"] in _SHELL_KINDS
        return {key: _substitute(item, path + (key,), env, secrets, problems,
                                 quote=shell_line and key in _SHELL_LINES)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, path + (index,), env, secrets, problems) for index, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2).strip()
        if escaped:  # $${x} is a literal ${x}
            return "${" + match.group(2) + "}"
        if name.startswith("secrets."):
            secret = name[len("secrets."):]
            if secret not in secrets:
                known = ", ".join(sorted(secrets)) or "none declared"
                problems.at(path, f"{_dotted(path)}: undefined secret {secret!r} (declared under 'secrets:': {known})")
            return match.group(0)
        if name in env:
            # a variable inside a shell command line arrives as one quoted word, never as shell syntax
            return shlex.quote(env[name]) if quote else env[name]
        hint = difflib.get_close_matches(name, list(env), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        problems.at(path, f"{_dotted(path)}: undefined variable ${{{name}}}: define it under 'variables:' or pass "
                          f"--var {name}=VALUE{suggestion}")
        return match.group(0)

    whole = _REF.fullmatch(value)
    result = _REF.sub(replace, value)
    if whole and not whole.group(1) and not quote and whole.group(2).strip() in env:
        return VarStr(result, whole.group(2).strip())  # a typed field may read it as its type (plan/typed.py)
    return result


def _variables(data: dict[str, Any], overrides: Mapping[str, str], plan_path: Path,
               problems: _Problems) -> dict[str, str]:
    builtins = {"plan_dir": str(plan_path.resolve().parent)}
    declared = data.get("variables") or {}
    env: dict[str, str] = dict(builtins)
    if not isinstance(declared, dict):
        return env  # the model reports the type problem
    for name, value in declared.items():
        if not isinstance(name, str) or not _NAME.match(name):
            problems.at(("variables", name), f"variables: {name!r} is not a valid variable name", key=True)
            continue
        if isinstance(value, (dict, list)) or value is None:
            continue  # reported by the model
        env[name] = str(value)
    env.update(overrides)
    # variables may use the built-ins and the caller's values, one level deep
    for name in list(declared) if isinstance(declared, dict) else []:
        if name in env and name not in overrides and "${" in env[name]:
            env[name] = _substitute(env[name], ("variables", name), {**builtins, **overrides}, set(), problems)
    return env


# ---------------------------------------------------------------- pydantic errors -> positions


def _inner(annotation: Any) -> list[Any]:
    """The concrete types inside Annotated / Optional / Union."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_inner(arg))
        return out
    return [annotation]


def _model_at(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, Path_]:
    """Walk an error location through the models; return the model at its end and the data path (tags removed)."""
    candidates: list[Any] = [Plan]
    path: list[Any] = []
    for part in loc:
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        containers = [c for c in candidates if typing.get_origin(c) in (list, dict)]
        if isinstance(part, str) and len(models) > 1:
            tagged = [m for m in models if _tag(m) == part]
            if tagged:
                candidates = tagged
                continue
        if models and isinstance(part, str):
            field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
            path.append(part)
            candidates = _inner(field.annotation) if field else []
            continue
        if containers:
            container = containers[0]
            args = typing.get_args(container)
            path.append(part)
            candidates = _inner(args[-1])
            continue
        path.append(part)
        candidates = []
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return (models[0] if len(models) == 1 else None), tuple(path)


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is not None:
        args = typing.get_args(field.annotation)
        if args:
            return str(args[0])
    return None


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _report_validation(exc: ValidationError, data: Any, problems: _Problems) -> None:
    secrets = data.get("secrets") if isinstance(data, dict) else None
    inline = {name for name, spec in secrets.items() if isinstance(spec, str) or (isinstance(spec, dict)
                                                                               and "value" in spec)} \
        if isinstance(secrets, dict) else set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        if loc[:1] == ("secrets",) and len(loc) > 1 and loc[1] in inline:
            continue  # already reported as an inline secret
        if kind == "extra_forbidden":
            model, path = _model_at(loc[:-1])
            key = loc[-1]
            expected = sorted(model.model_fields) if model else []
            expected = [name for name in expected if name != "kind"] if model and _tag(model) else expected
            close = difflib.get_close_matches(str(key), expected, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = _dotted(path) or "top level"
            problems.at(path + (key,), f"{where}: unknown key {key!r}{hint} (expected one of: {', '.join(expected)})",
                        key=True)
            continue
        _, path = _model_at(loc)
        if kind == "union_tag_invalid":
            ctx = error.get("ctx", {})
            tag = ctx.get("tag", "")
            expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
            close = difflib.get_close_matches(str(tag), expected, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.at(path + ("kind",), f"{_dotted(path)}.kind: unknown kind {tag!r}{hint} "
                                          f"(expected one of: {', '.join(expected)})")
            continue
        if kind == "union_tag_not_found":
            problems.at(path, f"{_dotted(path)}: missing 'kind' (what kind of action or check this is)")
            continue
        if kind == "missing":
            field = path[-1]
            problems.at(path[:-1], f"{_dotted(path[:-1]) or 'top level'}: missing required key {field!r}")
            continue
        given = error.get("input")
        if isinstance(given, Refused):  # refused as the published schema refuses it (plan/typed.py)
            problems.at(path, f"{_dotted(path)}: {given.message}")
            continue
        message = _clean(error["msg"])
        if kind == "enum" and isinstance(given, str):
            options = [o.strip(" '") for o in str(error.get("ctx", {}).get("expected", "")).replace(" or ", ", ").split(",")]
            close = difflib.get_close_matches(given, options, n=1)
            message += f"; did you mean {close[0]!r}?" if close else ""
        elif kind.endswith("_type") and given is not None:
            message += f" (got {type(given).__name__} {str(given)[:40]!r})"
        problems.at(path, f"{_dotted(path)}: {message}")


# ---------------------------------------------------------------- cross-references


def _inside(base: Path, raw: str, what: str, want_dir: bool | None) -> tuple[Path | None, str]:
    """A plan-relative path resolved (symlinks followed) and kept inside the plan's folder, or why not."""
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None, f"{what} {raw!r} does not exist (paths are relative to the plan's folder {base})"
    root = base.resolve()
    if real != root and root not in real.parents:
        return None, (f"{what} {raw!r} resolves to {real}, outside the plan's folder {root} (a symlink or '..'): "
                      "keep playbooks and inventories beside the plan")
    if want_dir is None and not (real.is_file() or real.is_dir()):
        return None, f"{what} {raw!r} is neither a file nor a folder"
    if want_dir is False and not real.is_file():
        return None, f"{what} {raw!r} is not a regular file"
    return real, ""


def _check_ansible(plan: Plan, action: Any, where: Path_, base: Path | None, problems: _Problems) -> None:
    """An `ansible` action's host group exists; its playbook and inventory stay inside the plan's folder (made
    absolute here, so the adapter never depends on the current directory)."""
    if action.hosts is not None and action.hosts not in plan.host_groups:
        _unknown(problems, where + ("hosts",), "host group", action.hosts, plan.host_groups)
    if base is None:
        return
    for name, want_dir in (("playbook", False), ("inventory", None)):
        raw = getattr(action, name)
        if raw is None:
            continue
        real, error = _inside(base, raw, name, want_dir)
        if real is None:
            problems.at(where + (name,), f"{_dotted(where + (name,))}: {error}")
        else:
            setattr(action, name, str(real))


def _check_references(plan: Plan, data: dict[str, Any], problems: _Problems, base: Path | None = None) -> None:
    # steps: the seed's order, no duplicates
    seen: dict[str, int] = {}
    last = -1
    for index, step in enumerate(plan.steps):
        rank = STEP_ORDER.index(step.id)
        if step.id.value in seen:
            problems.at(("steps", index, "id"), f"steps[{index}].id: step {step.id.value!r} appears twice "
                                                f"(first as steps[{seen[step.id.value]}])")
        elif rank < last:
            order = ", ".join(s.value for s in STEP_ORDER)
            problems.at(("steps", index, "id"), f"steps[{index}].id: step {step.id.value!r} is out of order; "
                                                f"the procedure's order is {order}")
        seen.setdefault(step.id.value, index)
        last = max(last, rank)

    # scope <-> steps, order
    scope = list(dict.fromkeys(plan.rollback.scope))
    for position, item in enumerate(plan.rollback.scope):
        if plan.step(SCOPE_STEP[item]) is None:
            problems.at(("rollback", "scope", position),
                        f"rollback.scope[{position}]: {item.value!r} is in scope but the plan has no "
                        f"{SCOPE_STEP[item].value!r} step; add the step or remove it from the scope")
    for index, step in enumerate(plan.steps):
        for item in Scope:
            if SCOPE_STEP[item] == step.id and item not in scope:
                problems.at(("steps", index, "id"), f"steps[{index}]: step {step.id.value!r} is not in "
                                                    f"rollback.scope; add {item.value!r} to the scope or drop the step")
    if "order" in (data.get("rollback") or {}):
        expected = [item for item in DEFAULT_ORDER if item in scope]
        if list(dict.fromkeys(plan.rollback.order)) != expected:
            problems.at(("rollback", "order"), "rollback.order: must list the scope in the procedure's order: "
                                               + ", ".join(item.value for item in expected))

    # approvals: unique ids, both gates covered
    role_ids = [role.id for role in plan.approvals.roles]
    for index, role in enumerate(plan.approvals.roles):
        if role_ids.count(role.id) > 1 and role_ids.index(role.id) != index:
            problems.at(("approvals", "roles", index, "id"), f"approvals.roles[{index}].id: duplicate role {role.id!r}")
    for gate in ("execution", "validation"):
        if not any(gate in role.approves for role in plan.approvals.roles):
            problems.at(("approvals", "roles"), f"approvals.roles: no role approves {gate!r}")

    # health probe ids
    probe_ids: list[str] = []
    for index, probe in enumerate(plan.health):
        if not probe.id:
            problems.at(("health", index), f"health[{index}]: a probe under 'health:' needs an 'id'")
        elif probe.id in probe_ids:
            problems.at(("health", index, "id"), f"health[{index}].id: duplicate probe id {probe.id!r}")
        else:
            probe_ids.append(probe.id)
        if getattr(probe, "kind", "") == "ssh" and probe.group not in plan.host_groups:
            _unknown(problems, ("health", index, "group"), "host group", probe.group, plan.host_groups)

    # step references
    for s_index, step in enumerate(plan.steps):
        for a_index, action in enumerate(step.actions):
            if action.kind == "ssh" and action.group not in plan.host_groups:
                _unknown(problems, ("steps", s_index, "actions", a_index, "group"), "host group", action.group,
                         plan.host_groups)
            if action.kind == "ansible":
                _check_ansible(plan, action, ("steps", s_index, "actions", a_index), base, problems)
            group_name = group_of(action)
            if getattr(action, "waves", None) is not None and group_name in plan.host_groups:
                _check_waves(action, group_name, plan.host_groups[group_name].hosts,
                             ("steps", s_index, "actions", a_index), problems)
        for c_index, check in enumerate(step.verify):
            where = ("steps", s_index, "verify", c_index)
            if check.kind == "probe" and check.probe not in probe_ids:
                _unknown(problems, where + ("probe",), "health probe", check.probe, probe_ids)
            if check.kind == "ssh" and check.group not in plan.host_groups:
                _unknown(problems, where + ("group",), "host group", check.group, plan.host_groups)


def _check_waves(action: Any, group: str, hosts: list[str], where: Path_, problems: _Problems) -> None:
    """Counts in hosts that the action's group cannot hold (percentages are bounded by the model)."""
    waves, total = action.waves, len(hosts)
    name = f"{_dotted(where)}.waves"
    if isinstance(waves.first, int) and waves.first > total:
        problems.at(where + ("waves", "first"), f"{name}.first: a canary of {waves.first} hosts is larger than host "
                                                f"group {group!r} ({total} hosts); give at most {total}")
    if isinstance(waves.failure_budget, int) and waves.failure_budget > total:
        problems.at(where + ("waves", "failure_budget"),
                    f"{name}.failure_budget: {waves.failure_budget} hosts is more than host group {group!r} "
                    f"has ({total}); give at most {total} (or a percentage)")


def _unknown(problems: _Problems, path: Path_, what: str, name: str, known: Any) -> None:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(names) or "none defined"
    problems.at(path, f"{_dotted(path)}: unknown {what} {name!r}{hint} (defined: {listed})")


def _check_inline_secrets(data: dict[str, Any], problems: _Problems) -> None:
    secrets = data.get("secrets")
    if not isinstance(secrets, dict):
        return
    for name, spec in secrets.items():
        if isinstance(spec, dict) and "value" in spec:
            problems.at(("secrets", name, "value"), f"secrets.{name}: inline secret values are not allowed; "
                                                    "read it from 'env: VARIABLE' or 'file: PATH'", key=True)
        elif isinstance(spec, str):
            problems.at(("secrets", name), f"secrets.{name}: inline secret values are not allowed; "
                                           "write 'env: VARIABLE' or 'file: PATH'")


# ---------------------------------------------------------------- entry points


def parse_plan(text: str, *, path: Path, variables: Mapping[str, str] | None = None,
               label: str | None = None) -> LoadedPlan:
    """Parse plan text; raise PlanError listing every problem as `label:line:col: message`."""
    doc = YamlDocument(text)
    problems = _Problems(label or str(path), doc)
    for problem in doc.problems:
        problems.add(problem.line, problem.col, problem.message)
    if doc.problems:
        raise PlanError(problems.render())
    if not isinstance(doc.data, dict):
        problems.add(1, 1, "a plan is a mapping with keys such as metadata, rollback and steps")
        raise PlanError(problems.render())
    data: dict[str, Any] = doc.data
    _check_inline_secrets(data, problems)
    env = _variables(data, variables or {}, path, problems)
    secret_names = set(data.get("secrets") or {}) if isinstance(data.get("secrets"), dict) else set()
    substituted = {
        key: value if key == "variables" else _substitute(value, (key,), env, secret_names, problems)
        for key, value in data.items()
    }
    plan: Plan | None = None
    try:
        plan = Plan.model_validate(substituted)
    except ValidationError as exc:
        _report_validation(exc, substituted, problems)
    if plan is not None:
        _check_references(plan, substituted, problems, path.parent if path.parent.is_dir() else None)
    if problems.items or plan is None:
        if not problems.items:  # never a silent refusal: every rejected plan says where
            problems.add(1, 1, "the plan does not fit the format (no more precise position is known)")
        raise PlanError(problems.render(), hint="fix the lines above; `rollback-tui schema` prints the format")
    return LoadedPlan(plan=plan, path=path, sha256=hashlib.sha256(text.encode()).hexdigest(), text=text,
                      variables=env)


def load_plan(path: Path, variables: Mapping[str, str] | None = None) -> LoadedPlan:
    """Read and parse a plan file."""
    try:
        raw = read_regular(path, what="plan file")  # never blocks on a FIFO or device, capped at 10 MB
    except FileNotFoundError:
        raise PlanError([f"{path}: no such file"]) from None
    except FileRefused as exc:
        raise PlanError([str(exc)]) from None
    except OSError as exc:
        raise PlanError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PlanError([f"{path}:{line}:{col}: not UTF-8 text"]) from None
    return parse_plan(text, path=path, variables=variables)
