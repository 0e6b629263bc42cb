"""Feature-flag adapters: flagd flag-definition files (JSON or YAML) and a generic HTTP flag API (Unleash lives in
unleash.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.config import atomic_write, backup_file, resolve_path, utc_stamp
from rollback_tui.adapters.flagd_file import dump_flagd, load_flagd, where
from rollback_tui.adapters.flagd_verify import Verdict, check_flag
from rollback_tui.adapters.httputil import (
    dotted,
    expand_headers,
    expand_json,
    new_client,
    request_timeout,
    send,
    show_json,
)
from rollback_tui.errors import AdapterError, RollbackError
from rollback_tui.plan.actions import FlagdAction, HttpFlagAction

_DESCRIBE_TIMEOUT = 10.0  # describe only reads; a plan review must not hang on a slow flag service

# ---------------------------------------------------------------- flagd file format

_NO_OFF = object()  # a flag without the off variant: nothing to compare what flagd serves with


def _flag(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    flag = doc["flags"].get(key)
    if not isinstance(flag, dict):
        known = ", ".join(sorted(doc["flags"])) or "none"
        raise AdapterError(f"{path}: flag {key!r} is not defined (flags in the file: {known})",
                           hint="fix the flag key in the plan")
    return flag


def fractional_lists(node: Any, trail: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """(position, argument list) of every `fractional` inside a targeting rule (also nested in `if` and others)."""
    if len(trail) > 64:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "fractional" and isinstance(value, list):
                yield trail + (key,), value
            else:
                yield from fractional_lists(value, trail + (key,))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from fractional_lists(item, trail + (index,))


def _buckets(args: list[Any]) -> list[list[Any]]:
    # the first argument may be a bucketing expression (`{"cat": [...]}`); buckets are [variant, weight?]
    return [item for item in args if isinstance(item, list) and item]


def _weight(bucket: list[Any]) -> int:
    if len(bucket) < 2:
        return 1  # flagd's shorthand: a bucket without a weight weighs 1
    weight = bucket[1]
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError("computed weight")
    if weight != int(weight):
        raise ValueError(f"weight {weight:g}, not an integer")
    return max(0, int(weight))


def weight_problems(args: list[Any]) -> list[tuple[int, Any]]:
    """(index, weight) of buckets whose weight flagd refuses (not an integer): flagd then ignores the whole rule."""
    return [(index, item[1]) for index, item in enumerate(args)
            if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], float) and item[1] != int(item[1])]


def fractional_summary(args: list[Any]) -> str:
    """`on 25 %, off 75 %` for one fractional rule (weights are integers, shares of their sum)."""
    if weight_problems(args):
        shown = ", ".join(f"{weight:g}" for _, weight in weight_problems(args))
        return f"ignored by flagd (weight {shown} is not an integer)"
    try:
        buckets = [(bucket[0], _weight(bucket)) for bucket in _buckets(args)]
    except ValueError:
        return "computed weights"
    total = sum(weight for _, weight in buckets)
    if total <= 0:
        return ", ".join(f"{variant} 0 %" for variant, _ in buckets) or "no buckets"
    return ", ".join(f"{variant if isinstance(variant, str) else 'computed'} {weight * 100 / total:g} %"
                     for variant, weight in buckets)


def zero_fractional(args: list[Any], off: str) -> None:
    """Every non-off bucket weighs 0 and the off variant gets the whole weight (added when absent)."""
    buckets = _buckets(args)
    for bucket in buckets:
        if not isinstance(bucket[0], str):
            raise ValueError("a bucket with a computed variant")
        _weight(bucket)
    total = sum(_weight(bucket) for bucket in buckets) or 100
    has_off = False
    for bucket in buckets:
        if bucket[0] == off:
            bucket[1:] = [total]
            has_off = True
        else:
            bucket[1:] = [0]
    if not has_off:
        args.append([off, total])


def fractional_is_off(args: list[Any], off: str) -> bool:
    try:
        return all(bucket[0] == off or _weight(bucket) == 0 for bucket in _buckets(args)) and any(
            bucket[0] == off and _weight(bucket) > 0 for bucket in _buckets(args))
    except ValueError:
        return False


def apply_flagd(flag: dict[str, Any], key: str, action: FlagdAction, path: Path) -> list[str]:
    """Turn one flag off in place; returns the `before -> after` changes (empty when already off)."""
    off = action.off_variant
    variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
    changes: list[str] = []
    if action.mode == "disable":
        if flag.get("state") != "DISABLED":
            changes.append(f"state {flag.get('state', '(unset)')} -> DISABLED")
            flag["state"] = "DISABLED"
        return changes  # flagd ignores variants and targeting of a DISABLED flag
    if off not in variants:
        raise AdapterError(f"flag {key!r} has no variant {off!r} (variants: {', '.join(variants) or 'none'})",
                           hint="set off_variant in the plan to the variant that means off")
    if action.mode == "static_off" and flag.get("state") != "ENABLED":
        changes.append(f"state {flag.get('state', '(unset)')} -> ENABLED (DISABLED serves the application's default)")
        flag["state"] = "ENABLED"
    if flag.get("defaultVariant") != off:
        changes.append(f"defaultVariant {flag.get('defaultVariant', '(unset)')} -> {off}")
        flag["defaultVariant"] = off
    if action.mode == "static_off":
        if "targeting" in flag:
            changes.append("targeting removed" if flag["targeting"] else "empty targeting removed")
            del flag["targeting"]
        return changes
    for trail, args in fractional_lists(flag.get("targeting"), ("flags", key, "targeting")):
        if fractional_is_off(args, off):
            continue
        before = fractional_summary(args)
        try:
            zero_fractional(args, off)
        except ValueError as exc:
            bad = weight_problems(args)
            at = where(path, trail + (bad[0][0], 1)) if bad else where(path, trail)
            raise AdapterError(f"{at}: flag {key!r}: fractional rule has {exc}; cannot set it to 0 % automatically",
                               hint="use mode: static_off, or edit the rule by hand") from None
        changes.append(f"fractional {before} -> {fractional_summary(args)}")
    return changes


def off_value_of(flag: dict[str, Any], action: FlagdAction) -> Any:
    """The value that means off: the off variant's, or `false` for a boolean flag without one."""
    variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
    if action.off_variant in variants:
        return variants[action.off_variant]
    if variants and all(isinstance(value, bool) for value in variants.values()):
        return False
    return _NO_OFF


def evaluate_off(doc: dict[str, Any], key: str, flag: dict[str, Any], action: FlagdAction) -> Verdict:
    """flagd's answers for the flag over a spread of contexts, judged against the off value."""
    off_value = off_value_of(flag, action)
    if off_value is _NO_OFF:
        return Verdict("unverified", f"no variant {action.off_variant!r} to compare what flagd serves with")
    return check_flag(doc, key, flag, off_value, action.app_default, action.app_default is not None)


def _default_note(action: FlagdAction) -> str:
    if action.app_default is None:
        return ("flagd then returns the application's own default value, which the plan does not declare "
                "(add app_default), so verify cannot pass")
    return f"flagd then returns the application's default ({show_json(action.app_default)}, declared by the plan)"


class FlagdAdapter:
    """Turns flags off in a flagd file (JSON or YAML): backup, atomic rewrite, read-back evaluated as flagd does."""

    kind: ClassVar[str] = "flagd"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    async def describe(self, action: FlagdAction, ctx: ActionContext) -> Description:
        path = resolve_path(ctx, action.file)
        doc = load_flagd(path)
        details: list[str] = []
        risks: list[str] = []
        for key in action.flags:
            original = _flag(doc, key, path)
            for trail, args in fractional_lists(original.get("targeting"), ("flags", key, "targeting")):
                for index, weight in weight_problems(args):
                    risks.append(f"{where(path, trail + (index, 1))}: flag {key}: fractional weight {weight:g} is "
                                 "not an integer: flagd ignores the whole rule and serves the default variant")
            flag = copy.deepcopy(original)
            try:
                changes = apply_flagd(flag, key, action, path)
            except AdapterError as exc:
                risks.append(str(exc).splitlines()[0])
                continue
            details.append(f"flag {key}: {'; '.join(changes) if changes else 'already off, no change'}")
            if action.mode == "disable":
                details.append(f"  state DISABLED: {_default_note(action)}")
            verdict = evaluate_off({**doc, "flags": {**doc["flags"], key: flag}}, key, flag, action)
            if verdict.status != "off":
                risks.append(f"flag {key}: after the change flagd still serves "
                             f"{'a non-off value' if verdict.status == 'on' else 'an unverified value'}: "
                             f"{verdict.detail}")
        summary = f"{path}: turn off {len(action.flags)} flag(s) ({action.mode}); backup kept"
        return Description(summary, details, risks)

    async def run(self, action: FlagdAction, ctx: ActionContext) -> ActionResult:
        path = resolve_path(ctx, action.file)
        doc = load_flagd(path)
        changed: dict[str, list[str]] = {}
        for key in action.flags:
            changes = apply_flagd(_flag(doc, key, path), key, action, path)
            if changes:
                changed[key] = changes
            for change in changes or ["already off, no change"]:
                ctx.log(f"flag {key}: {change}")
        if not changed:
            return ActionResult("ok", details={"file": str(path), "changed": {}, "backup": None})
        backup = backup_file(path, ctx.workdir / "backups", utc_stamp())
        ctx.log(f"{path}: backed up to {backup}")
        atomic_write(path, dump_flagd(path, doc), like=path)
        ctx.log(f"{path}: written ({len(changed)} flag(s) changed)")
        return ActionResult("ok", details={"file": str(path), "changed": changed, "backup": str(backup)})

    async def verify(self, action: FlagdAction, ctx: ActionContext) -> list[CheckResult]:
        path = resolve_path(ctx, action.file)
        doc = load_flagd(path)
        off = action.off_variant
        checks: list[CheckResult] = []
        for key in action.flags:
            flag = doc["flags"].get(key)
            if not isinstance(flag, dict):
                checks.append(CheckResult(f"flagd {key}", "defined", f"missing from {path}", False))
                continue
            if action.mode == "disable":
                state = flag.get("state", "(unset)")
                checks.append(CheckResult(f"flagd {key} state", "DISABLED", state, state == "DISABLED"))
            else:
                default = flag.get("defaultVariant", "(unset)")
                checks.append(CheckResult(f"flagd {key} defaultVariant", off, str(default), default == off))
            if action.mode == "default_off":
                for _, args in fractional_lists(flag.get("targeting")):
                    checks.append(CheckResult(f"flagd {key} fractional", f"{off} 100 %", fractional_summary(args),
                                              fractional_is_off(args, off)))
            verdict = evaluate_off(doc, key, flag, action)
            observed = verdict.detail if verdict.status != "unverified" else f"unverified: {verdict.detail}"
            checks.append(CheckResult(f"flagd {key} evaluation", "off for every context (evaluated as flagd does)",
                                      observed, verdict.status == "off"))
        return checks


# ---------------------------------------------------------------- Unleash: its own module, re-exported here

from rollback_tui.adapters.unleash import UnleashAdapter  # noqa: E402,F401


# ---------------------------------------------------------------- generic HTTP flag API


class HttpFlagAdapter:
    """One request turns the flag off; a GET reads the state back from a JSON field."""

    kind: ClassVar[str] = "http_flag"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    async def _state(self, action: HttpFlagAction, ctx: ActionContext, client: Any, timeout: float,
                     log: bool = True) -> tuple[bool, Any]:
        url = ctx.expand(action.verify_url or action.url)
        answer = await send(ctx, client, "GET", url, headers=expand_headers(ctx, action.headers), timeout=timeout,
                            log=log)
        if not 200 <= answer.status < 300:
            raise answer.fail()
        return dotted(answer.json(), action.verify_field)

    async def describe(self, action: HttpFlagAction, ctx: ActionContext) -> Description:
        details = [f"{action.method.upper()} {action.url}"]
        details += [f"  {name}: {value}" for name, value in action.headers.items()]  # references, not values
        if action.body is not None:
            details.append(f"  body {show_json(action.body)}")
        risks: list[str] = []
        timeout = min(_DESCRIBE_TIMEOUT, action.timeout)
        try:
            async with new_client(timeout) as client:
                found, value = await self._state(action, ctx, client, timeout, log=False)
            current = show_json(value) if found else "(field missing)"
            details.append(f"flag {action.flag}: {action.verify_field} {current} -> {show_json(action.verify_equals)}")
        except RollbackError as exc:
            risks.append(f"cannot read flag {action.flag}: {str(exc).splitlines()[0]}")
        return Description(f"turn flag {action.flag} off: {action.method.upper()} {action.url}", details, risks)

    async def run(self, action: HttpFlagAction, ctx: ActionContext) -> ActionResult:
        timeout = request_timeout(action.timeout)
        async with new_client(timeout) as client:
            answer = await send(ctx, client, action.method, ctx.expand(action.url),
                                headers=expand_headers(ctx, action.headers),
                                json_body=expand_json(ctx, action.body), timeout=timeout)
        if not 200 <= answer.status < 300:
            raise answer.fail()
        ctx.log(f"flag {action.flag}: turned off")
        return ActionResult("ok", details={"flag": action.flag, "status": answer.status})

    async def verify(self, action: HttpFlagAction, ctx: ActionContext) -> list[CheckResult]:
        timeout = request_timeout(max(action.timeout, 5.0))
        name = f"{action.flag} {action.verify_field}"
        async with new_client(timeout) as client:
            try:
                found, value = await self._state(action, ctx, client, timeout)
            except RollbackError as exc:
                return [CheckResult(name, show_json(action.verify_equals),
                                    f"unreadable: {str(exc).splitlines()[0]}", False)]
        observed = show_json(value) if found else f"field {action.verify_field!r} missing from the answer"
        return [CheckResult(name, show_json(action.verify_equals), observed, found and same_json(value, action.verify_equals))]


def same_json(left: Any, right: Any) -> bool:
    """JSON equality: `false` is not `0`, `1` is `1.0`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return left == right
