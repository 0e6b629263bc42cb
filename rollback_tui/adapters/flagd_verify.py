"""Is a flagd flag off for everyone? Evaluate it as flagd does over a spread of contexts drawn from its rules."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from rollback_tui.adapters.flagd_eval import (
    Outcome,
    Undecidable,
    evaluate,
    constant_operation,
    unknown_operator,
    parse_semver,
    resolve_refs,
    unresolved_ref,
)

TARGETING_KEYS = 400  # keys tried with the attribute-free context; fractional buckets below ~1 % are checked by weight
KEYS_PER_ATTRIBUTES = 8
MAX_PATHS = 8
MAX_VALUES = 12
MAX_CONTEXTS = 4_000
_COMPARISONS = ("==", "!=", "===", "!==", "<", "<=", ">", ">=", "in", "starts_with", "ends_with", "sem_ver")


@dataclass
class Verdict:
    """Result of checking one flag: `off`, `on` (a context gets another value) or `unverified`."""

    status: str
    detail: str
    contexts: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome | None] = field(default_factory=list)  # None: undecidable for that context


def targeting_of(doc: dict[str, Any], flag: dict[str, Any]) -> Any:
    """The flag's targeting with `$ref`s to top-level `$evaluators` resolved."""
    evaluators = doc.get("$evaluators") if isinstance(doc.get("$evaluators"), dict) else {}
    return resolve_refs(flag.get("targeting"), evaluators)


def _var_path(node: Any) -> str | None:
    if isinstance(node, dict) and len(node) == 1 and "var" in node:
        raw = node["var"]
        key = raw[0] if isinstance(raw, list) and raw else raw
        if isinstance(key, str) and key and not key.startswith("$flagd") and key != "targetingKey":
            return key
    return None


def _derived(op: str, literal: Any, var_first: bool) -> list[Any]:
    """Values of an attribute around a literal it is compared with, on both sides of the comparison."""
    values: list[Any] = []
    if isinstance(literal, list):
        return [item for item in literal if not isinstance(item, (list, dict))][:MAX_VALUES] + ["not-listed"]
    if isinstance(literal, bool) or literal is None:
        return [literal, not literal]
    if isinstance(literal, (int, float)):
        return [literal, literal - 1, literal + 1, str(literal)]
    text = str(literal)
    values.append(text)
    if op == "starts_with":
        values += [text + "-x", "x-" + text]
    elif op == "ends_with":
        values += ["x-" + text, text + "-x"]
    elif op == "in" and not var_first:
        values += [f"x{text}x", text[:1]]
    elif op == "in":
        values += [text[: max(1, len(text) // 2)], ""]
    elif op in ("<", "<=", ">", ">="):
        values += ["", text + "~", "~" + text]
    elif op == "sem_ver":
        version = parse_semver(text)
        if version:
            major, minor, patch, _ = version
            values += [f"{major}.{minor}.{patch + 1}", f"{major}.{minor + 1}.0", f"{major + 1}.0.0",
                       f"{major}.{minor}.{patch}-rc.1", "0.0.1" if (major, minor, patch) > (0, 0, 1) else "0.0.0"]
            if patch:
                values.append(f"{major}.{minor}.{patch - 1}")
            if minor:
                values.append(f"{major}.{minor - 1}.9")
    return values


def attribute_values(rule: Any) -> dict[str, list[Any]]:
    """Every context attribute a rule reads, with candidate values taken from what it is compared with."""
    found: dict[str, list[Any]] = {}
    budget = [10_000]

    def add(path: str, values: list[Any]) -> None:
        bucket = found.setdefault(path, [None, "other"])
        for value in values:
            if len(bucket) < MAX_VALUES and value not in bucket:
                bucket.append(value)

    def walk(node: Any) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        path = _var_path(node)
        if path is not None:
            add(path, [])
            return
        for op, args in node.items():
            if op == "missing":
                names = args[0] if isinstance(args, list) and len(args) == 1 and isinstance(args[0], list) else args
                for name in names if isinstance(names, list) else [names]:
                    if isinstance(name, str) and name:
                        add(name, [])
            if op in _COMPARISONS and isinstance(args, list):
                for index, arg in enumerate(args):
                    path = _var_path(arg)
                    if path is None:
                        continue
                    for other_index, other in enumerate(args):
                        if other_index != index and _var_path(other) is None and not isinstance(other, dict):
                            if op == "sem_ver" and other_index == 1:
                                continue
                            add(path, _derived(op, other, index < other_index))
            walk(args)

    walk(rule)
    return dict(itertools.islice(found.items(), MAX_PATHS))


def _with_path(context: dict[str, Any], path: str, value: Any) -> None:
    if value is None:
        return  # the attribute is absent
    parts = path.split(".")
    node = context
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else node
    node[parts[-1]] = value


def context_spread(rule: Any) -> list[dict[str, Any]]:
    """Contexts to evaluate: many targeting keys, and the rule's attributes singly and combined (bounded)."""
    values = attribute_values(rule)
    assignments: list[dict[str, Any]] = [{}]
    paths = list(values)
    product_size = 1
    for path in paths:
        product_size *= len(values[path])
    if paths and product_size <= 512:
        assignments += [dict(zip(paths, combo)) for combo in itertools.product(*(values[p] for p in paths))]
    else:
        for path in paths:
            assignments += [{path: value} for value in values[path]]
        widest = max((len(v) for v in values.values()), default=0)
        assignments += [{p: values[p][i % len(values[p])] for p in paths} for i in range(widest)]
    contexts: list[dict[str, Any]] = [{}]
    for index, assignment in enumerate(assignments):
        keys = TARGETING_KEYS if index == 0 else KEYS_PER_ATTRIBUTES
        for n in range(keys):
            context: dict[str, Any] = {"targetingKey": f"user-{n}"} if index == 0 else {
                "targetingKey": f"user-{(index * 7919 + n * 104729) % 100_000}"}
            for path, value in assignment.items():
                _with_path(context, path, value)
            contexts.append(context)
            if len(contexts) >= MAX_CONTEXTS:
                return contexts
    return contexts


def _result_fractionals(rule: Any) -> set[int]:
    """ids of fractional rules whose result is the flag's variant (root, `if` branches, `and`/`or` operands)."""
    found: set[int] = set()

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 64 or not isinstance(node, dict) or len(node) != 1:
            return
        op, args = next(iter(node.items()))
        if op == "fractional":
            found.add(id(node))
        elif op in ("if", "?:") and isinstance(args, list):
            for index, arg in enumerate(args):
                if index % 2 == 1 or index == len(args) - 1:
                    walk(arg, depth + 1)
        elif op in ("and", "or") and isinstance(args, list):
            for arg in args:
                walk(arg, depth + 1)

    walk(rule)
    return found


def check_flag(doc: dict[str, Any], key: str, flag: dict[str, Any], off_value: Any,
               app_default: Any = None, has_app_default: bool = False) -> Verdict:
    """Evaluate the flag over the spread; `off` only if every context is served the off value."""
    variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
    try:
        rule = targeting_of(doc, flag)
        contexts = context_spread(rule)
        if flag.get("state") != "DISABLED":
            unknown = unknown_operator(rule)
            if unknown is not None:
                raise Undecidable(f"operator {unknown!r} is not one flagd ships (custom operator?)")
            constant = constant_operation(rule)
            if constant is not None:
                raise Undecidable(f"the rule has a {constant!r} operation that reads no context (flagd-core "
                                  "evaluates those when it loads the file, with its own coercions)")
    except Undecidable as exc:
        return Verdict("unverified", f"cannot evaluate as flagd does: {exc}")
    hits: list[tuple[int, list[tuple[Any, int]], bool]] = []
    outcomes: list[Outcome | None] = []
    undecided: list[str] = []
    for context in contexts:
        try:
            outcomes.append(evaluate(key, flag, rule, context, hits))
        except Undecidable as exc:
            outcomes.append(None)
            undecided.append(f"{exc} (e.g. {_show(context)})")
            if str(exc).startswith(("targeting nested", "more than")):
                return Verdict("unverified", f"cannot evaluate as flagd does: {exc}")
    for context, outcome in zip(contexts, outcomes):
        if outcome is not None and outcome.variant is not None and not same_value(variants.get(outcome.variant),
                                                                                    off_value):
            return Verdict("on", f"{outcome.variant} for {_show(context)} ({outcome.reason})", contexts, outcomes)
    if undecided:
        return Verdict("unverified", f"cannot evaluate as flagd does for {len(undecided)} of {len(contexts)} "
                       f"contexts: {undecided[0]}", contexts, outcomes)
    served_default = [o for o in outcomes if o is not None and o.variant is None]
    if served_default:
        reasons = ", ".join(sorted({o.reason for o in served_default}))
        missing = unresolved_ref(rule)
        if missing is not None:
            reasons += f": $ref {missing!r} is not resolved, flagd cannot build the rule"
        if not has_app_default:
            return Verdict("unverified", f"returns the application's default ({reasons}) for "
                           f"{len(served_default)} of {len(contexts)} contexts; the plan does not declare "
                           "app_default", contexts, outcomes)
        if not same_value(app_default, off_value):
            return Verdict("on", f"returns the application's default {app_default!r} ({reasons})", contexts, outcomes)
    seen = {o.variant for o in outcomes if o is not None}
    result_nodes = _result_fractionals(rule)
    for node_id, buckets, constant in hits:
        if node_id not in result_nodes or constant:
            continue
        total = sum(weight for _, weight in buckets)
        for variant, weight in buckets:
            name = str(variant)
            if weight and name in variants and name not in seen and not same_value(variants[name], off_value):
                return Verdict("on", f"fractional gives {name} {weight} of {total} (some targeting keys; none of "
                               f"the {len(contexts)} sampled)", contexts, outcomes)
    return Verdict("off", f"off for all {len(contexts)} contexts evaluated", contexts, outcomes)


def same_value(left: Any, right: Any) -> bool:
    """JSON equality: `false` is not `0`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return left == right


def _show(context: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in context.items()) or "an empty context"
    return text if len(text) <= 120 else text[:117] + "..."
