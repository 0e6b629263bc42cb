"""The published JSON Schema of the plan format: pydantic's, made to say what `validate` says (plan/typed.py).

Three changes to pydantic's output: an optional nested mapping is its model's schema (no `null` branch); a typed field (integer, number, boolean, duration) also takes a whole `${var}`
reference, as the loader does; and action and check kinds are chosen with `if`/`then` on `kind` instead of
OpenAPI's `discriminator`, which JSON Schema validators ignore (they would name the wrong kind)."""

from __future__ import annotations

import copy
from typing import Any

from rollback_tui.plan.typed import VAR_SCHEMA

SCHEMA_ID = "https://rollback-tui.invalid/schema/plan-v1.json"
_TYPED = {"integer", "number", "boolean"}
_KEEP = ("title", "description", "default")


def _optional_model(node: dict[str, Any]) -> dict[str, Any]:
    """An optional nested mapping (`anyOf: [{$ref}, {type: null}]`) -> the `$ref` itself, so a validator names the
    wrong key inside it rather than the whole mapping (an omitted key is what leaves it out)."""
    branches = node.get("anyOf")
    if (isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches
            and any(isinstance(b, dict) and set(b) == {"$ref"} for b in branches)):
        ref = next(b for b in branches if b != {"type": "null"})
        return {key: node[key] for key in _KEEP if key in node and key != "default"} | ref
    return node


def _allows_var(node: dict[str, Any]) -> dict[str, Any]:
    """A property schema of a typed value, taking a `${var}` reference as well."""
    node = _optional_model(node)
    if node.get("type") in _TYPED:
        outer = {key: node[key] for key in _KEEP if key in node}
        inner = {key: value for key, value in node.items() if key not in _KEEP}
        return {**outer, "anyOf": [inner, copy.deepcopy(VAR_SCHEMA)]}
    if "anyOf" in node:
        branches = node["anyOf"]
        typed = any(isinstance(b, dict) and b.get("type") in _TYPED for b in branches)
        duration = any(isinstance(b, dict) and b.get("type") == "string" and "ms|s|m|h" in b.get("pattern", "")
                       for b in branches)
        if (typed or duration) and VAR_SCHEMA not in branches:
            node = {**node, "anyOf": [*branches, copy.deepcopy(VAR_SCHEMA)]}
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        node = {**node, "items": _allows_var(node["items"])}
    return node


def _by_kind(node: dict[str, Any]) -> dict[str, Any]:
    """`oneOf` + `discriminator` on kind -> `kind` enum + one `if kind == K then $ref` per kind."""
    mapping: dict[str, str] = node["discriminator"]["mapping"]
    out = {key: value for key, value in node.items() if key not in ("discriminator", "oneOf")}
    out.update({
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": sorted(mapping), "description": "What kind of action or check this is."}},
        "allOf": [{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": {"$ref": ref}}
                  for kind, ref in sorted(mapping.items())],
    })
    return out


def _walk(node: Any) -> Any:
    if isinstance(node, list):
        return [_walk(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "discriminator" in node and "oneOf" in node:
        node = _by_kind(node)
    out = {key: _walk(value) for key, value in node.items()}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _allows_var(prop) if name != "kind" else prop
                             for name, prop in out["properties"].items()}
    return out


def published_schema(model_schema: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _walk(model_schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "rollback-tui plan"
    return schema
