"""One schema truth: every schema error that check-jsonschema or the real yaml-language-server reports for a sample
plan or a broken plan is also reported by `rollback-tui validate`, at the same line."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.errors import PlanError
from rollback_tui.plan.loader import parse_plan
from rollback_tui.plan.yamlpos import YamlDocument

from .schema_peers import ROOT, YAMLLS, LanguageServer, check_jsonschema, json_path

CORPUS = sorted((ROOT / "tests" / "plan" / "broken").glob("*.yaml")) + sorted((ROOT / "sample_plans").glob("*.yaml"))
IN_CI = os.environ.get("CI") == "true"


def validate_lines(path: Path) -> set[int]:
    """The lines `validate` names (the loader in-process: what the command prints is its PlanError's lines)."""
    try:
        parse_plan(path.read_text(), path=path, label=path.name)
    except PlanError as exc:
        return {int(m.group(1)) for m in (re.match(rf"{re.escape(path.name)}:(\d+):\d+: ", line)
                                          for line in exc.problems) if m}
    return set()


@pytest.fixture(scope="module")
def schema_errors() -> dict[str, list[dict[str, Any]] | None]:
    return check_jsonschema(CORPUS)


def lines_of(doc: YamlDocument, path: tuple[object, ...], message: str) -> set[int]:
    """Where a schema error points: its node, and for unknown keys the keys themselves."""
    lines = {doc.positions.value(path)[0]}
    for key in re.findall(r"'([^']+)' was unexpected|'([^']+)', ", message):
        for name in key:
            if name:
                lines.add(doc.positions.key(path + (name,))[0])
    return lines


@pytest.mark.parametrize("plan", CORPUS, ids=[p.name for p in CORPUS])
def test_check_jsonschema_errors_are_validate_errors(plan: Path,
                                                     schema_errors: dict[str, list[dict[str, Any]] | None]) -> None:
    errors = schema_errors[str(plan)]
    if errors is None:
        assert validate_lines(plan), f"{plan.name}: not parseable YAML, and validate said nothing"
        return
    reported = validate_lines(plan)
    doc = YamlDocument(plan.read_text())
    for error in errors:
        where = lines_of(doc, json_path(error["path"]), error["message"])
        assert where & reported, (f"{plan.name}: check-jsonschema says {error['path']}: {error['message']} "
                                  f"(line {sorted(where)}), validate reported lines {sorted(reported)}")


@pytest.fixture(scope="module")
def server() -> Iterator[LanguageServer]:
    if shutil.which("node") is None or not YAMLLS.is_file():
        if IN_CI:
            pytest.fail("yaml-language-server is not installed: .ci/run runs `npm ci --prefix tests/peers/yamlls`")
        pytest.skip("yaml-language-server not installed (npm ci --prefix tests/peers/yamlls)")
    ls = LanguageServer()
    yield ls
    ls.close()


def test_yaml_language_server_errors_are_validate_errors(server: LanguageServer) -> None:
    schema_errors = 0
    for plan in CORPUS:
        every = server.diagnostics(plan)
        diagnostics = [d for d in every if "yaml-schema" in str(d.get("source", ""))]
        if not diagnostics or len(diagnostics) < len([d for d in every if d.get("severity", 1) == 1]):
            # not YAML (a syntax error it recovered from): validate stops at the syntax error, as it should
            assert validate_lines(plan) or not every, f"{plan.name}: the server found errors, validate none"
            continue
        reported = validate_lines(plan)
        for diagnostic in diagnostics:
            line = diagnostic["range"]["start"]["line"] + 1
            schema_errors += 1
            assert line in reported, (f"{plan.name}:{line}: yaml-language-server says {diagnostic['message']!r}; "
                                      f"validate reported lines {sorted(reported)}")
    assert schema_errors >= 10  # the broken corpus really was checked against the schema


def test_the_samples_are_clean_for_both_peers(server: LanguageServer) -> None:
    for plan in sorted((ROOT / "sample_plans").glob("*.yaml")):
        assert check_jsonschema([plan]) == {str(plan): []}, plan.name
        assert [d for d in server.diagnostics(plan) if d.get("severity", 1) == 1] == [], plan.name
