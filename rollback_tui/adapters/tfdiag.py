"""Terraform's own output: diagnostics boxes (warnings vs errors) and the saved plan's planned values against state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: What terraform prints before a CLI-configuration warning; the warning is about the operator's machine, never the
#: rollback, so it is shown as information and left out of error messages.
_CLI_CONFIG_INTRO = "There are some problems with the CLI configuration:"


def split_diagnostics(lines: list[str]) -> tuple[list[str], list[str]]:
    """(information, errors) of terraform's stderr: `╷ │ Error: … ╵` boxes are errors; warning boxes, the CLI
    configuration notice and anything outside a box that is not an error are information."""
    info: list[str] = []
    errors: list[str] = []
    box: list[str] = []
    in_box = False
    for line in lines:
        stripped = line.strip()
        if stripped == "╷":
            in_box, box = True, []
            continue
        if stripped == "╵" and in_box:
            in_box = False
            body = [part.lstrip("│").strip() for part in box]
            title = next((part for part in body if part), "")
            (errors if title.startswith("Error:") else info).extend(part for part in body if part)
            continue
        if in_box:
            box.append(line)
        elif stripped.startswith("Error:"):
            errors.append(stripped)
        elif stripped:
            info.append(stripped)
    if in_box:  # a box cut off at the end of the output
        body = [part.lstrip("│").strip() for part in box if part.lstrip("│").strip()]
        (errors if body and body[0].startswith("Error:") else info).extend(body)
    return [line for line in info if line != _CLI_CONFIG_INTRO], errors


class StderrClassifier:
    """Streams terraform's stderr to the log: a warning box (or the CLI-configuration notice) as information, an
    error box as an error. Boxes may span output batches, so the state is kept between calls."""

    def __init__(self) -> None:
        self._box: list[str] | None = None

    def __call__(self, stream: str, lines: list[str]) -> list[tuple[str, list[str]]]:
        if stream != "stderr":
            return [(stream, lines)]
        out: list[tuple[str, list[str]]] = []
        for line in lines:
            stripped = line.strip()
            if self._box is not None:
                self._box.append(line)
                if stripped == "╵":
                    body = [part.lstrip("│").strip() for part in self._box[1:-1]]
                    title = next((part for part in body if part), "")
                    out.append(("stderr" if title.startswith("Error:") else "info", self._box))
                    self._box = None
            elif stripped == "╷":
                self._box = [line]
            else:
                out.append(("stderr" if stripped.startswith("Error:") else "info", [line]))
        return out


def error_text(stdout: list[str], stderr: list[str], limit: int = 3) -> str:
    """The error lines of a failed terraform command for a message: no CLI-configuration warning in it."""
    _, errors = split_diagnostics(stderr)
    if not errors:
        _, errors = split_diagnostics(stdout)
    if not errors:
        info, _ = split_diagnostics(stderr or stdout)
        errors = info
    return " | ".join(errors[:limit])


def _resources(module: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    if not isinstance(module, dict):
        return
    for resource in module.get("resources") or []:
        if isinstance(resource, dict) and resource.get("mode", "managed") == "managed":
            yield resource
    for child in module.get("child_modules") or []:
        yield from _resources(child)


def _differs(planned: Any, actual: Any) -> bool:
    """Planned values against the state's; a value the plan could not know (absent or None) is not compared."""
    if planned is None:
        return False
    if isinstance(planned, dict) and isinstance(actual, dict):
        return any(_differs(value, actual.get(key)) for key, value in planned.items())
    if isinstance(planned, list) and isinstance(actual, list):
        return len(planned) != len(actual) or any(_differs(p, a) for p, a in zip(planned, actual))
    return bool(planned != actual)


def compare_planned(plan_json: dict[str, Any], state_json: dict[str, Any]) -> tuple[int, list[str]]:
    """(resources the saved plan describes, differences): each planned resource must be in the state with every
    value the plan knew; a managed resource in the state that the plan does not describe was not destroyed as
    planned. Differences name resource addresses and attribute names only (values may be secret)."""
    planned = {r.get("address", "?"): r for r in _resources((plan_json.get("planned_values") or {}).get("root_module"))}
    actual = {r.get("address", "?"): r for r in _resources((state_json.get("values") or {}).get("root_module"))}
    problems: list[str] = []
    for address, resource in planned.items():
        if address not in actual:
            problems.append(f"{address} missing from the state")
            continue
        have = actual[address].get("values") or {}
        changed = sorted(key for key, value in (resource.get("values") or {}).items() if _differs(value, have.get(key)))
        if changed:
            problems.append(f"{address} differs in {', '.join(changed)}")
    problems += [f"{address} is in the state but not in the saved plan" for address in sorted(set(actual) - set(planned))]
    return len(planned), problems
