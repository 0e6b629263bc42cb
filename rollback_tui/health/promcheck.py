"""`validate`: every PromQL query of a plan checked by its server (parse_query, else an evaluation at the epoch)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from rollback_tui.health.probes import error_reason
from rollback_tui.health.prometheus import address, ask
from rollback_tui.plan.models import Plan
from rollback_tui.plan.promql import PromSource
from rollback_tui.plan.yamlpos import YamlDocument
from rollback_tui.secrets import SecretStore

_KINDS = ("prometheus", "analysis")
_WHERE = re.compile(r"\b(\d+):(\d+): parse error")
_TIMEOUT = 5.0


def _sources(plan: Plan, data: Any) -> list[tuple[tuple[Any, ...], PromSource]]:
    """(path of the `query` value in the YAML, the model) for every prometheus probe and analysis."""
    found: list[tuple[tuple[Any, ...], PromSource]] = []
    if not isinstance(data, dict):
        return found
    for index, probe in enumerate(plan.health):
        if isinstance(probe, PromSource):
            found.append((("health", index, "query"), probe))
    by_id = {step.id.value: step for step in plan.steps}
    for s_index, raw in enumerate(data.get("steps") or []):
        step = by_id.get(raw.get("id")) if isinstance(raw, dict) else None
        for c_index, check in enumerate(step.verify if step is not None else []):
            if isinstance(check, PromSource):
                found.append((("steps", s_index, "verify", c_index, "query"), check))
    return found


def _position(text: str, line: int, col: int, query: str, q_line: int, q_col: int) -> tuple[int, int, str]:
    """The file position of the query's own line:col when the YAML value holds it verbatim on one line."""
    lines = text.splitlines()
    source = lines[line - 1][col - 1:] if 0 < line <= len(lines) else ""
    first = query.splitlines()[0] if query else ""
    for skip in (0, 1):  # plain scalar, or one quote character
        if q_line == 1 and "\n" not in query and source[skip:].startswith(first):
            return line, col + skip + q_col - 1, ""
    return line, col, f" (at {q_line}:{q_col} of the query)"


async def _check_one(source: PromSource, secrets: SecretStore) -> tuple[str, str] | None:
    """('error' | 'note', message) or None when the server accepted the query."""
    try:
        answer = await ask(source, secrets, timeout=_TIMEOUT, path="/api/v1/parse_query")
        if answer.kind == "error" and "HTTP 404" in answer.message:
            # no parse_query (Prometheus before 2.47 and many compatible servers): evaluating at the epoch parses
            # the query the same way and reads no stored data
            answer = await ask(source, secrets, timeout=_TIMEOUT, params={"time": "1"})
    except Exception as exc:  # e.g. its secret cannot be read (validate lists that under secrets:)
        return "note", f"not checked ({error_reason(exc)})"
    if answer.kind == "rejected":
        return "error", answer.message
    if answer.kind == "unreachable":
        return "note", f"not checked ({answer.message}); the first sample checks it"
    return None


async def check_queries(plan: Plan, text: str, label: str, secrets: SecretStore) -> tuple[list[str], list[str]]:
    """(errors as `file:line:col: message`, notes) for every query the plan sends to a Prometheus server."""
    doc = YamlDocument(text)
    sources = _sources(plan, doc.data)
    results = await asyncio.gather(*(_check_one(source, secrets) for _, source in sources))
    errors: list[str] = []
    notes: list[str] = []
    for (path, source), result in zip(sources, results):
        if result is None:
            continue
        kind, message = result
        line, col = doc.positions.value(path)
        if kind == "error":
            where = _WHERE.search(message)
            extra = ""
            if where:
                line, col, extra = _position(text, line, col, source.query, int(where.group(1)), int(where.group(2)))
            errors.append(secrets.redactor(f"{label}:{line}:{col}: PromQL query rejected by "
                                           f"{address(secrets.expand(source.url))}{extra}: {message}; fix the query"))
        else:
            notes.append(secrets.redactor(f"{label}:{line}:{col}: PromQL query {message}"))
    return errors, notes
