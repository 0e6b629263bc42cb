"""A bounded re-implementation of flagd's flag evaluation (JsonLogic targeting, fractional, sem_ver, $ref)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 64  # nesting of a targeting rule; flag files are hostile input
MAX_OPS = 20_000  # operator applications per evaluation
MAX_WEIGHT = 2_147_483_647  # flagd refuses a fractional rule whose weights add up to more


class Undecidable(Exception):
    """The rule uses something this evaluator does not implement (a custom operator): no verdict."""


class EvalError(Exception):
    """flagd's engine would throw here: the evaluation ends with reason ERROR (the application's default)."""


@dataclass
class Outcome:
    """What flagd answers for one context: a variant, or None when the application's own default is served."""

    reason: str  # STATIC, DEFAULT, TARGETING_MATCH, DISABLED, ERROR
    variant: str | None


# ---------------------------------------------------------------- murmur3 (flagd buckets with murmur3 x86 32-bit, seed 0)


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, as flagd uses to bucket `fractional` (flagKey + targetingKey)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    end = len(data) & ~3
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[end:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


# ---------------------------------------------------------------- JavaScript value semantics used by json-logic


def js_str(value: Any) -> str:
    """`String(value)` for JSON values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, list):
        return ",".join("" if item is None else js_str(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _number_text(value: float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def truthy(value: Any) -> bool:
    """json-logic-engine's truthiness: empty arrays and empty objects are false."""
    if isinstance(value, (list, dict, str)):
        return len(value) > 0
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def _js_number(value: Any) -> float:
    """JavaScript `Number(value)` for JSON values (NaN for text that is not a number)."""
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, dict)):
        raise Undecidable("an array or object in a comparison")
    text = str(value).strip()
    if not text:
        return 0.0
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return float(int(text, 16))
    if re.fullmatch(r"[+-]?Infinity", text):
        return float(text.replace("Infinity", "inf"))
    return math.nan


def _precoerced_nan(value: Any) -> bool:
    """json-logic-engine's `isNaN(+precoerceNumber(value))` (objects throw as well)."""
    if isinstance(value, (list, dict)) and value:
        return True
    return math.isnan(_js_number(value)) if value not in (None, False, "", 0) else False


def js_compare(op: str, a: Any, b: Any) -> bool:
    """JavaScript's `a OP b` (loose) for JSON values."""
    if op in ("===", "!=="):
        same = _strict_eq(a, b)
        return same if op == "===" else not same
    if op in ("==", "!="):
        if a is None or b is None:
            same = a is None and b is None
        elif isinstance(a, str) and isinstance(b, str):
            same = a == b
        else:
            same = _js_number(a) == _js_number(b)
        return same if op == "==" else not same
    if isinstance(a, str) and isinstance(b, str):
        left: Any = a.encode("utf-16-be")
        right: Any = b.encode("utf-16-be")
    else:
        left, right = _js_number(a), _js_number(b)
        if math.isnan(left) or math.isnan(right):
            return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _strict_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b and not isinstance(a, (list, dict))


def compare_check(op: str, a: Any, b: Any) -> bool:
    """`a OP compareCheck(b, a)`: how flagd-core's compiled rules compare when the right side is not a `var`."""
    if op in ("===", "!=="):
        return js_compare(op, a, b)
    if (a is None or isinstance(a, str)) and (b is None or isinstance(b, str)):
        return js_compare(op, a, b)
    if _precoerced_nan(b) and a is not None:
        raise EvalError("a value that is not a number in a numeric comparison")
    if _precoerced_nan(a):
        raise EvalError("a value that is not a number in a numeric comparison")
    if a is None and not truthy_js(b):
        return js_compare(op, None, None)
    if b is None and not truthy_js(a):
        return js_compare(op, a, 0)
    return js_compare(op, a, b)


def truthy_js(value: Any) -> bool:
    """JavaScript truthiness (`[]` and `{}` are true here, unlike JsonLogic's)."""
    if isinstance(value, (list, dict)):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else "array or object"


def _compare(op: str, args: list[Any], plain: bool = False) -> bool:
    if len(args) < 2:
        raise EvalError(f"{op} needs two arguments")
    all_kinds = {_kind(arg) for arg in args}
    kinds = all_kinds - {"null"}
    if "null" in all_kinds and kinds - {"string"} and op not in ("===", "!=="):
        # a missing value against a number or boolean: flagd-core's compiled paths disagree (null == 0 or not)
        raise Undecidable(f"{op} compares a missing value with a {' / '.join(sorted(kinds))}")
    if len(kinds) > 1 or "array or object" in kinds or (kinds == {"boolean"} and op in ("<", "<=", ">", ">=")):
        # JavaScript coercion between kinds differs between flagd-core's compiled and interpreted paths
        raise Undecidable(f"{op} compares a {' with a '.join(sorted(kinds))}")
    if len(args) == 2 and plain:
        return js_compare(op, args[0], args[1])
    for a, b in zip(args, args[1:]):
        if not compare_check(op, a, b):
            return False
    return True


# ---------------------------------------------------------------- semantic versions (flagd's sem_ver)

_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*))*))?"
                     r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")


def parse_semver(raw: Any) -> tuple[int, int, int, tuple[Any, ...]] | None:
    """(major, minor, patch, prerelease) with flagd's leniency: a `v` prefix and `1` / `1.2` are accepted."""
    text = js_str(raw)
    if len(text) > 256:
        return None
    text = re.sub(r"^[vV]", "", text).strip()
    match = _SEMVER.match(text)
    if match:
        pre = tuple(int(p) if p.isdigit() else p for p in match.group(4).split(".")) if match.group(4) else ()
        return int(match.group(1)), int(match.group(2)), int(match.group(3)), pre
    partial = re.fullmatch(r"(\d+)(?:\.(\d+))?", text)
    if partial:
        return int(partial.group(1)), int(partial.group(2) or 0), 0, ()
    return None


def _semver_key(version: tuple[int, int, int, tuple[Any, ...]]) -> tuple[Any, ...]:
    major, minor, patch, pre = version
    # a release sorts after its prereleases; numeric identifiers sort before alphanumeric ones
    pre_key = tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in pre)
    return (major, minor, patch, 1 if not pre else 0, pre_key)


def sem_ver(args: Any) -> bool | None:
    if not isinstance(args, list) or len(args) != 3:
        return None
    left, right = parse_semver(args[0]), parse_semver(args[2])
    if left is None or right is None:
        return None
    a, b = _semver_key(left), _semver_key(right)
    op = js_str(args[1])
    table = {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
             "^": left[0] == right[0], "~": left[0] == right[0] and left[1] == right[1]}
    return table.get(op)


# ---------------------------------------------------------------- the evaluator


_LAZY = frozenset({"if", "?:", "and", "or"})
_EAGER = frozenset({"==", "!=", "===", "!==", "<", "<=", ">", ">=", "!", "!!", "in", "cat", "var", "missing",
                    "starts_with", "ends_with", "sem_ver", "fractional", "+", "-", "*", "%", "max", "min"})
KNOWN_OPERATORS = _LAZY | _EAGER
_COMPARATORS = frozenset({"==", "!=", "===", "!==", "<", "<=", ">", ">="})


class Evaluator:
    """One targeting evaluation for one context, bounded in depth and operator count."""

    def __init__(self, flag_key: str, context: dict[str, Any], now: int | None = None,
                 null_in_cat: str = "text") -> None:
        self.data = {**context, "$flagd": {"flagKey": flag_key, "timestamp": int(time.time()) if now is None else now}}
        self.ops = 0
        # flagd-core joins a missing value into `cat` as "null" on some compiled paths and skips it on others
        self.null_in_cat = null_in_cat
        self.saw_null_in_cat = False
        self.fractional_hits: list[tuple[int, list[tuple[Any, int]], bool]] = []  # (node id, buckets, constant)

    def run(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise Undecidable(f"targeting nested deeper than {MAX_DEPTH}")
        if isinstance(node, list):
            return [self.run(item, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            if not node:
                return node
            raise Undecidable(f"an object with {len(node)} keys is not a JsonLogic operation")
        self.ops += 1
        if self.ops > MAX_OPS:
            raise Undecidable(f"more than {MAX_OPS} operations in one evaluation")
        op, raw = next(iter(node.items()))
        if op not in KNOWN_OPERATORS:
            raise Undecidable(f"operator {op!r} is not one flagd ships (custom operator?)")
        if op in _LAZY:
            return self._lazy(op, raw if isinstance(raw, list) else [raw], depth)
        args = self.run(raw, depth + 1)
        if op == "fractional":
            return self._fractional(node, raw, args)
        if op in _COMPARATORS and isinstance(args, list):
            # flagd-core compiles `[x, {"var": ...}]` as plain JavaScript, anything else through compareCheck
            plain = isinstance(raw, list) and len(raw) == 2 and isinstance(raw[1], dict) and "var" in raw[1]
            return _compare(op, args, plain)
        return self._eager(op, args)

    def _lazy(self, op: str, args: list[Any], depth: int) -> Any:
        if op in ("if", "?:"):
            if len(args) == 1:
                return self.run(args[0], depth + 1)
            if len(args) < 2:
                return None
            for index in range(0, len(args) - 1, 2):
                if truthy(self.run(args[index], depth + 1)):
                    return self.run(args[index + 1], depth + 1)
            return self.run(args[-1], depth + 1) if len(args) % 2 else None
        if not args:
            return None
        item = None
        for arg in args:
            item = self.run(arg, depth + 1)
            if truthy(item) == (op == "or"):
                return item
        return item

    def _eager(self, op: str, args: Any) -> Any:
        if op in ("!", "!!"):
            value = args[0] if isinstance(args, list) and args else ([] if isinstance(args, list) else args)
            return truthy(value) if op == "!!" else not truthy(value)
        if op == "var":
            return self._var(args)
        if not isinstance(args, list):
            args = [args]
        if op in _COMPARATORS:
            return _compare(op, args)
        if op == "in":
            item, haystack = (args + [None, None])[:2]
            if isinstance(haystack, str):
                return js_str(item) in haystack
            if isinstance(haystack, list):
                return any(_same_value_zero(item, element) for element in haystack)
            if not haystack:
                return False
            raise EvalError("`in` on something that is neither a list nor a string")
        if op == "cat":  # flagd-core compiles its rules: `'' + a + b`, so a missing value adds "null"
            if any(isinstance(item, (list, dict)) for item in args):
                raise Undecidable("cat of an array or object")
            if None in args:
                self.saw_null_in_cat = True
                if self.null_in_cat == "skip":
                    if len(args) == 1:
                        raise EvalError("cat of a single missing value")  # null.toString()
                    return "".join(js_str(item) for item in args if item is not None)
            return "".join(js_str(item) for item in args)
        if op in ("starts_with", "ends_with"):
            if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
                return None
            return args[0].startswith(args[1]) if op == "starts_with" else args[0].endswith(args[1])
        if op == "sem_ver":
            return sem_ver(args)
        if op == "missing":
            keys = args[0] if len(args) == 1 and isinstance(args[0], list) else args
            return [key for key in keys if self._var(key) is None]  # "" counts as present
        raise Undecidable(f"operator {op!r} is not evaluated by rollback-tui")  # arithmetic: rare in targeting

    def _var(self, args: Any) -> Any:
        default = None
        key = args
        if isinstance(args, list):
            key = args[0] if args else None
            default = args[1] if len(args) > 1 else None
        not_found = default
        if key is None or key == "":
            return self.data
        current: Any = self.data
        for part in js_str(key).split("."):
            if current is None:
                return not_found
            if isinstance(current, dict):
                if part not in current:
                    return not_found
                current = current[part]
            elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return not_found
        return current

    def _fractional(self, node: dict[str, Any], raw: Any, args: Any) -> Any:
        if not isinstance(args, list) or not args:
            return None
        if isinstance(args[0], str):
            bucket_by, buckets = args[0], args[1:]
            constant = isinstance(raw, list) and isinstance(raw[0], str)
        else:
            key = self.data.get("targetingKey")
            if not truthy(key):
                return None
            bucket_by, buckets, constant = f"{self.data['$flagd']['flagKey']}{js_str(key)}", args, False
        parsed: list[tuple[Any, int]] = []
        for entry in buckets:
            if not isinstance(entry, list) or not 1 <= len(entry) <= 2:
                return None
            variant = entry[0]
            if isinstance(variant, (list, dict)):
                return None
            weight = 1
            if len(entry) == 2:
                raw_weight = entry[1]
                if isinstance(raw_weight, bool) or not isinstance(raw_weight, (int, float)) or raw_weight != int(raw_weight):
                    return None  # flagd: "Bucketing requires weight to be an integer"; the rule yields nothing
                weight = max(0, int(raw_weight))
            parsed.append((variant, weight))
        total = sum(weight for _, weight in parsed)
        if total > MAX_WEIGHT:
            return None
        self.fractional_hits.append((id(node), parsed, constant))
        point = (murmur3_32(bucket_by.encode("utf-8")) * total) >> 32
        running = 0
        for variant, weight in parsed:
            running += weight
            if running > point:
                return variant
        return None


def _deterministic(node: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        raise Undecidable(f"targeting nested deeper than {MAX_DEPTH}")
    if isinstance(node, list):
        return all(_deterministic(item, depth + 1) for item in node)
    if isinstance(node, dict):
        return not any(key in ("var", "missing", "fractional") for key in node) and all(
            _deterministic(value, depth + 1) for value in node.values())
    return True


def constant_operation(rule: Any) -> str | None:
    """The first operation that reads no context (e.g. `{"==": [1, "x"]}`), or None. flagd-core's optimiser
    evaluates those when it loads the file, with coercions of its own (a throw there breaks the whole rule),
    so a rule with one is left unverified rather than guessed."""
    budget = [5_000]

    def walk(node: Any, depth: int) -> str | None:
        budget[0] -= 1
        if depth > MAX_DEPTH or budget[0] < 0:
            raise Undecidable("targeting too large to check the way flagd-core loads it")
        if isinstance(node, list):
            for item in node:
                found = walk(item, depth + 1)
                if found:
                    return found
            return None
        if not isinstance(node, dict) or len(node) != 1:
            return None
        if _deterministic(node):
            return next(iter(node))
        return walk(next(iter(node.values())), depth + 1)

    return walk(rule, 0)


def _same_value_zero(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b and not isinstance(a, (list, dict))


def evaluate(flag_key: str, flag: dict[str, Any], targeting: Any, context: dict[str, Any],
             hits: list[tuple[int, list[tuple[Any, int]], bool]] | None = None) -> Outcome:
    """flagd's answer for one flag and one context (targeting already has its `$ref`s resolved); Undecidable
    when the answer depends on which of flagd-core's compiled paths the rule takes."""
    if flag.get("state") == "DISABLED":
        return Outcome("DISABLED", None)
    if unresolved_ref(targeting) is not None:
        return Outcome("ERROR", None)  # flagd-core cannot build the rule: every evaluation fails
    if not isinstance(targeting, dict) or not targeting:
        return _outcome(flag, flag.get("defaultVariant") or None, "STATIC")
    first, saw_null = _run(flag_key, flag, targeting, context, hits, "text")
    if saw_null and _run(flag_key, flag, targeting, context, None, "skip")[0] != first:
        raise Undecidable("a `cat` joins a missing value, and flagd-core's answer depends on how it compiles it")
    return first


def _run(flag_key: str, flag: dict[str, Any], targeting: Any, context: dict[str, Any],
         hits: list[tuple[int, list[tuple[Any, int]], bool]] | None, null_in_cat: str) -> tuple[Outcome, bool]:
    evaluator = Evaluator(flag_key, context, null_in_cat=null_in_cat)
    try:
        result = evaluator.run(targeting)
    except EvalError:
        return Outcome("ERROR", None), evaluator.saw_null_in_cat
    finally:
        if hits is not None:
            hits.extend(evaluator.fractional_hits)
    if result is None:
        return _outcome(flag, flag.get("defaultVariant") or None, "DEFAULT"), evaluator.saw_null_in_cat
    return _outcome(flag, js_str(result), "TARGETING_MATCH"), evaluator.saw_null_in_cat


def _outcome(flag: dict[str, Any], variant: str | None, reason: str) -> Outcome:
    variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
    if variant is None:
        return Outcome("DEFAULT", None)
    if variant not in variants:
        return Outcome("ERROR", None)
    return Outcome(reason, variant)


def unknown_operator(rule: Any) -> str | None:
    """The first operator this evaluator does not know (flagd-core refuses the rule; a custom build may not)."""
    budget = [20_000]

    def walk(node: Any, depth: int) -> str | None:
        budget[0] -= 1
        if depth > MAX_DEPTH or budget[0] < 0:
            raise Undecidable(f"targeting nested deeper than {MAX_DEPTH} or larger than 20000 nodes")
        if isinstance(node, list):
            items: list[Any] = node
        elif isinstance(node, dict):
            if len(node) == 1 and next(iter(node)) not in KNOWN_OPERATORS and next(iter(node)) != "$ref":
                return next(iter(node))
            items = list(node.values())
        else:
            return None
        for item in items:
            found = walk(item, depth + 1)
            if found:
                return found
        return None

    return walk(rule, 0)


def resolve_refs(node: Any, evaluators: dict[str, Any]) -> Any:
    """`{"$ref": NAME}` replaced by the rule under top-level `$evaluators`, exactly as flagd-core does it: one
    pass per evaluator in file order, so a rule that refers to an evaluator listed before it stays unresolved."""
    budget = [MAX_OPS * 10]

    def replace(tree: Any, name: str, rule: Any, depth: int) -> Any:
        budget[0] -= 1
        if depth > MAX_DEPTH or budget[0] < 0:
            raise Undecidable(f"targeting with $ref expands beyond depth {MAX_DEPTH} or {MAX_OPS * 10} nodes")
        if isinstance(tree, dict):
            if len(tree) == 1 and tree.get("$ref") == name:
                return rule
            return {key: replace(value, name, rule, depth + 1) for key, value in tree.items()}
        if isinstance(tree, list):
            return [replace(item, name, rule, depth + 1) for item in tree]
        return tree

    for name, rule in evaluators.items():
        node = replace(node, str(name), rule, 0)
    return node


def unresolved_ref(node: Any, depth: int = 0) -> str | None:
    """The first `$ref` left in a rule: flagd-core then refuses the whole rule (reason ERROR for every context)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, dict):
        if "$ref" in node:
            return str(node["$ref"])
        for value in node.values():
            found = unresolved_ref(value, depth + 1)
            if found is not None:
                return found
    elif isinstance(node, list):
        for item in node:
            found = unresolved_ref(item, depth + 1)
            if found is not None:
                return found
    return None
