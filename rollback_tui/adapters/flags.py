"""Feature-flag adapters: flagd flag-definition files and a generic HTTP flag API (Unleash lives in unleash.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.config import atomic_write, backup_file, read_bytes, resolve_path, utc_stamp
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


def load_flagd(path: Path) -> dict[str, Any]:
    """Parse a flagd flag-definition file; invalid JSON is reported as path:line:col."""
    try:
        text = read_bytes(path, "flagd file").decode("utf-8")
    except UnicodeDecodeError:
        raise AdapterError(f"{path}: not UTF-8 text, so not a flagd JSON file") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
                           hint="fix the file (nothing was changed), or restore it from the deployment snapshot") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("flags"), dict):
        raise AdapterError(f"{path}: no top-level 'flags' object: not a flagd flag-definition file")
    return doc


def _flag(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    flag = doc["flags"].get(key)
    if not isinstance(flag, dict):
        known = ", ".join(sorted(doc["flags"])) or "none"
        raise AdapterError(f"{path}: flag {key!r} is not defined (flags in the file: {known})",
                           hint="fix the flag key in the plan")
    return flag


def fractional_lists(node: Any) -> Iterator[list[Any]]:
    """Every `fractional` argument list inside a targeting rule (also nested in `if` and other operators)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "fractional" and isinstance(value, list):
                yield value
            else:
                yield from fractional_lists(value)
    elif isinstance(node, list):
        for item in node:
            yield from fractional_lists(item)


def _buckets(args: list[Any]) -> list[list[Any]]:
    # the first argument may be a bucketing expression (`{"cat": [...]}`); buckets are [variant, weight?]
    return [item for item in args if isinstance(item, list) and item]


def _weight(bucket: list[Any]) -> float:
    if len(bucket) < 2:
        return 1.0  # flagd's shorthand: a bucket without a weight weighs 1
    weight = bucket[1]
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError("computed weight")
    return float(weight)


def fractional_summary(args: list[Any]) -> str:
    """`on 25 %, off 75 %` for one fractional rule."""
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
    total = sum(_weight(bucket) for bucket in buckets)
    total = int(total) if total == int(total) and total > 0 else (total or 100)
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


def other_variant_literals(targeting: Any, variants: dict[str, Any], off: str) -> list[str]:
    """Variant names other than `off` that a rule can return outside fractional buckets (e.g. an `if`)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("fractional", "var", "$ref"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and node in variants and node != off and node not in found:
            found.append(node)

    walk(targeting)
    return found


def apply_flagd(flag: dict[str, Any], key: str, action: FlagdAction) -> list[str]:
    """Turn one flag off in place; returns the `before -> after` changes (empty when already off)."""
    off = action.off_variant
    variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
    changes: list[str] = []
    if action.mode == "disable":
        if flag.get("state") != "DISABLED":
            changes.append(f"state {flag.get('state', '(unset)')} -> DISABLED")
            flag["state"] = "DISABLED"
    else:
        if off not in variants:
            raise AdapterError(f"flag {key!r} has no variant {off!r} (variants: {', '.join(variants) or 'none'})",
                               hint="set off_variant in the plan to the variant that means off")
        if flag.get("defaultVariant") != off:
            changes.append(f"defaultVariant {flag.get('defaultVariant', '(unset)')} -> {off}")
            flag["defaultVariant"] = off
    if off not in variants:
        return changes  # mode disable without an off variant: the state alone turns it off
    for args in fractional_lists(flag.get("targeting")):
        if fractional_is_off(args, off):
            continue
        before = fractional_summary(args)
        try:
            zero_fractional(args, off)
        except ValueError as exc:
            if action.mode == "disable":
                continue  # the DISABLED state wins over targeting
            raise AdapterError(f"flag {key!r}: fractional rule has {exc}; cannot set it to 0 % automatically",
                               hint="use mode: disable, or edit the rule by hand") from None
        changes.append(f"fractional {before} -> {fractional_summary(args)}")
    return changes


class FlagdAdapter:
    """Disables flags in a flagd JSON file: backup, atomic rewrite (indent 2, mode kept), read-back."""

    kind: ClassVar[str] = "flagd"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    async def describe(self, action: FlagdAction, ctx: ActionContext) -> Description:
        path = resolve_path(ctx, action.file)
        doc = load_flagd(path)
        details: list[str] = []
        risks: list[str] = []
        for key in action.flags:
            flag = copy.deepcopy(_flag(doc, key, path))
            variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
            targeting = flag.get("targeting")
            try:
                changes = apply_flagd(flag, key, action)
            except AdapterError as exc:
                risks.append(str(exc).splitlines()[0])
                continue
            details.append(f"flag {key}: {'; '.join(changes) if changes else 'already off, no change'}")
            if action.mode == "default_off":
                others = other_variant_literals(targeting, variants, action.off_variant)
                if others:
                    risks.append(f"flag {key}: a targeting rule can still return {', '.join(others)}; "
                                 "default_off does not change it (use mode: disable)")
            if "$ref" in json.dumps(targeting or {}):
                risks.append(f"flag {key}: targeting uses a shared $evaluators rule, which is not changed")
        summary = f"{path}: turn off {len(action.flags)} flag(s) ({action.mode}); backup kept"
        return Description(summary, details, risks)

    async def run(self, action: FlagdAction, ctx: ActionContext) -> ActionResult:
        path = resolve_path(ctx, action.file)
        doc = load_flagd(path)
        changed: dict[str, list[str]] = {}
        for key in action.flags:
            changes = apply_flagd(_flag(doc, key, path), key, action)
            if changes:
                changed[key] = changes
            for change in changes or ["already off, no change"]:
                ctx.log(f"flag {key}: {change}")
        if not changed:
            return ActionResult("ok", details={"file": str(path), "changed": {}, "backup": None})
        backup = backup_file(path, ctx.workdir / "backups", utc_stamp())
        ctx.log(f"{path}: backed up to {backup}")
        atomic_write(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode(), like=path)
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
                variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
                others = other_variant_literals(flag.get("targeting"), variants, off)
                checks.append(CheckResult(f"flagd {key} targeting", f"no rule returns a variant other than {off}",
                                          f"can return {', '.join(others)}" if others else "none", not others))
            for args in fractional_lists(flag.get("targeting")):
                checks.append(CheckResult(f"flagd {key} fractional", f"{off} 100 %", fractional_summary(args),
                                          fractional_is_off(args, off) or flag.get("state") == "DISABLED"))
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
