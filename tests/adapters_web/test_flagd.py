"""flagd flag files: static_off / default_off / disable, verify by evaluation, YAML; every file checked by flagd-core."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.plan.actions import FlagdAction

from .flagd_peer import FlagdPeer, peer  # noqa: F401  (peer: the autouse fixture checking every flag file)

FLAGS: dict[str, Any] = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "new-checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
            "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
                                         ["on", 75], ["off", 25]]},
        },
        "beta-banner": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]},
                                 {"fractional": [["on"], ["on", 1]]},
                                 None]},
        },
        "untouched": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a"},
    },
}


def write_flags(path: Path, doc: dict[str, Any] = FLAGS, mode: int = 0o640, peer: FlagdPeer | None = None) -> Path:
    path.write_text(json.dumps(doc, indent=4))
    path.chmod(mode)
    if peer is not None:
        peer.agree(path)  # before the rollback: our evaluation and flagd-core's agree on the original file
    return path


def action(path: Path, **kwargs: Any) -> FlagdAction:
    fields = {"kind": "flagd", "id": "flags-off", "file": str(path), "flags": ["new-checkout", "beta-banner"]}
    return FlagdAction.model_validate({**fields, **kwargs})


def by_name(checks: list[Any]) -> dict[str, Any]:
    return {check.check: check for check in checks}


async def test_default_off_sets_default_variant_and_zeroes_fractional(tmp_path: Path, ctx: ActionContext,
                                                                       collected: Any, peer: FlagdPeer) -> None:
    path = write_flags(tmp_path / "flags.json", peer=peer)
    original = path.read_text()
    act = action(path)

    result = await run_safely(act, ctx)

    assert result.ok, result.error
    doc = json.loads(path.read_text())
    checkout = doc["flags"]["new-checkout"]
    assert checkout["defaultVariant"] == "off" and checkout["state"] == "ENABLED"
    assert checkout["targeting"]["fractional"][1:] == [["on", 0], ["off", 100]]
    assert checkout["targeting"]["fractional"][0] == {"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}
    # nested inside `if`, shorthand bucket without weight (weighs 1), no off bucket yet: off gets the whole weight
    assert doc["flags"]["beta-banner"]["targeting"]["if"][1]["fractional"] == [["on", 0], ["on", 0], ["off", 2]]
    assert doc["flags"]["untouched"] == FLAGS["flags"]["untouched"]
    assert path.read_text().startswith('{\n  "$schema"')  # indent 2, order kept
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    backup = Path(result.details["backup"])
    assert backup.parent == ctx.workdir / "backups" and backup.read_text() == original
    assert "flag new-checkout: defaultVariant on -> off" in collected.text
    assert not list(tmp_path.glob(".flags.json.*"))  # no temp file left behind

    checks = await verify_safely(act, ctx)
    assert checks and all(check.ok for check in checks), checks
    assert any(check.observed == "on 0 %, off 100 %" for check in checks)
    peer.assert_off(path, ["new-checkout", "beta-banner"])


async def test_disable_mode_sets_state_and_is_idempotent(tmp_path: Path, ctx: ActionContext,
                                                         peer: FlagdPeer) -> None:
    path = write_flags(tmp_path / "flags.json", peer=peer)
    act = action(path, mode="disable", flags=["new-checkout"])

    first = await run_safely(act, ctx)
    assert first.ok and first.details["changed"]["new-checkout"][0] == "state ENABLED -> DISABLED"
    stat = path.stat()
    second = await run_safely(act, ctx)
    assert second.ok and second.details["changed"] == {} and second.details["backup"] is None
    assert path.stat().st_mtime_ns == stat.st_mtime_ns  # nothing to do, nothing written

    checks = by_name(await verify_safely(act, ctx))
    assert (checks["flagd new-checkout state"].observed, checks["flagd new-checkout state"].ok) == ("DISABLED", True)
    # DISABLED makes flagd return the application's own default, which the plan does not declare: not a pass
    evaluation = checks["flagd new-checkout evaluation"]
    assert not evaluation.ok
    assert evaluation.observed.startswith("unverified: returns the application's default (DISABLED)")
    real = peer.agree(path)["new-checkout"][1]
    assert {(r["reason"], r["variant"]) for r in real} == {("DISABLED", None)}


async def test_verify_fails_before_the_run(tmp_path: Path, ctx: ActionContext, peer: FlagdPeer) -> None:
    path = write_flags(tmp_path / "flags.json", peer=peer)
    checks = await verify_safely(action(path), ctx)
    failing = {check.check: check.observed for check in checks if not check.ok}
    assert failing["flagd new-checkout defaultVariant"] == "on"
    assert failing["flagd new-checkout fractional"] == "on 75 %, off 25 %"
    assert failing["flagd new-checkout evaluation"].startswith("on for ")
    assert "tier='gold'" in failing["flagd beta-banner evaluation"]


async def test_describe_shows_before_and_after(tmp_path: Path, ctx: ActionContext) -> None:
    path = write_flags(tmp_path / "flags.json")
    before = path.read_text()
    description = await describe_safely(action(path), ctx)
    assert "turn off 2 flag(s)" in description.summary
    assert ("flag new-checkout: defaultVariant on -> off; fractional on 75 %, off 25 % -> on 0 %, off 100 %"
            in description.details)
    assert path.read_text() == before  # describe only reads


async def test_default_off_warns_about_rules_returning_on(tmp_path: Path, ctx: ActionContext,
                                                          peer: FlagdPeer) -> None:
    doc = json.loads(json.dumps(FLAGS))
    doc["flags"]["new-checkout"]["targeting"] = {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", None]}
    path = write_flags(tmp_path / "flags.json", doc, peer=peer)
    act = action(path, flags=["new-checkout"])
    description = await describe_safely(act, ctx)
    assert any("after the change flagd still serves a non-off value: on for" in risk and "tier='gold'" in risk
               for risk in description.risks), description.risks
    assert (await run_safely(act, ctx)).ok
    evaluation = by_name(await verify_safely(act, ctx))["flagd new-checkout evaluation"]
    assert not evaluation.ok and evaluation.observed.startswith("on for ") and "tier='gold'" in evaluation.observed
    verdict, real = peer.agree(path)["new-checkout"]
    assert any(r["variant"] == "on" for r in real)  # the real evaluator agrees: gold users still get on


async def test_invalid_json_names_line_and_column(tmp_path: Path, ctx: ActionContext) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{\n  "flags": {\n    "x": {"state": "ENABLED",}\n  }\n}\n')
    result = await run_safely(action(path, flags=["x"]), ctx)
    assert result.status == "failed"
    assert result.error.startswith(f"{path}:3:30: not valid JSON")
    assert "Traceback" not in result.error
    description = await describe_safely(action(path, flags=["x"]), ctx)
    assert any(f"{path}:3:30" in risk for risk in description.risks)


async def test_unknown_flag_and_missing_off_variant(tmp_path: Path, ctx: ActionContext) -> None:
    path = write_flags(tmp_path / "flags.json")
    before = path.read_text()
    missing = await run_safely(action(path, flags=["new-checkout", "nope"]), ctx)
    assert missing.status == "failed" and "flag 'nope' is not defined" in missing.error
    assert "beta-banner, new-checkout, untouched" in missing.error
    no_off = await run_safely(action(path, flags=["untouched"]), ctx)
    assert no_off.status == "failed" and "has no variant 'off' (variants: a, b)" in no_off.error
    assert path.read_text() == before  # a failed run leaves the file as it was
    missing_file = await run_safely(action(tmp_path / "absent.json"), ctx)
    assert missing_file.status == "failed" and "does not exist" in missing_file.error


async def test_relative_path_resolves_from_base_dir(tmp_path: Path, ctx: ActionContext) -> None:
    write_flags(tmp_path / "flags.json")
    result = await run_safely(action(Path("flags.json"), mode="disable"), ctx)
    assert result.ok and result.details["file"] == str(tmp_path / "flags.json")


async def test_symlinked_flag_file_is_written_through(tmp_path: Path, ctx: ActionContext) -> None:
    real = write_flags(tmp_path / "real.json")
    link = tmp_path / "flags.json"
    os.symlink(real, link)
    assert (await run_safely(action(link, mode="disable"), ctx)).ok
    assert link.is_symlink()
    assert json.loads(real.read_text())["flags"]["new-checkout"]["state"] == "DISABLED"


SHARED: dict[str, Any] = {
    "$evaluators": {  # flagd-core resolves in file order: "staff" must come before the "quarter" it uses
        "staff": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", {"$ref": "quarter"}]},
        "quarter": {"fractional": [["on", 25], ["off", 75]]},
    },
    "flags": {
        "new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on",
                         "targeting": {"$ref": "staff"}},
    },
}


async def test_shared_evaluator_rule_is_evaluated_not_trusted(tmp_path: Path, ctx: ActionContext,
                                                              peer: FlagdPeer) -> None:
    # the issue's case: default_off zeroes the flag's own fractional rules, but the $ref'd one still serves on
    path = write_flags(tmp_path / "flags.json", SHARED, peer=peer)
    act = action(path, flags=["new-checkout"])
    assert (await run_safely(act, ctx)).ok
    checks = by_name(await verify_safely(act, ctx))
    assert checks["flagd new-checkout defaultVariant"].ok
    evaluation = checks["flagd new-checkout evaluation"]
    assert not evaluation.ok and evaluation.observed.startswith("on for "), evaluation.observed
    verdict, real = peer.agree(path)["new-checkout"]
    share = sum(r["variant"] == "on" for r in real) / len(real)
    assert 0.15 < share < 0.5, share  # flagd-core serves on to about a quarter of the contexts (and all staff)

    static = action(path, flags=["new-checkout"], mode="static_off")
    result = await run_safely(static, ctx)
    assert result.ok and "targeting removed" in result.details["changed"]["new-checkout"]
    assert all(check.ok for check in await verify_safely(static, ctx))
    peer.assert_off(path, ["new-checkout"])


@pytest.mark.parametrize("app_default,passes", [(False, True), (True, False)])
async def test_disable_passes_only_with_an_off_application_default(tmp_path: Path, ctx: ActionContext,
                                                                   peer: FlagdPeer, app_default: bool,
                                                                   passes: bool) -> None:
    path = write_flags(tmp_path / "flags.json", SHARED, peer=peer)
    act = action(path, flags=["new-checkout"], mode="disable", app_default=app_default)
    description = await describe_safely(act, ctx)
    assert any("returns the application's default" in line for line in description.details), description.details
    assert (await run_safely(act, ctx)).ok
    evaluation = by_name(await verify_safely(act, ctx))["flagd new-checkout evaluation"]
    assert evaluation.ok is passes, evaluation.observed
    verdict, real = peer.agree(path, app_default=app_default, has_app_default=True)["new-checkout"]
    assert {r["reason"] for r in real} == {"DISABLED"}
    assert {r["value"] for r in real} == {False}  # the script's own default: flagd-core serves the caller's value
    if passes:
        peer.assert_off(path, ["new-checkout"], app_default=app_default, has_app_default=True)
    else:
        assert "returns the application's default True" in evaluation.observed


FRACTIONAL_FLOAT = ('{\n  "flags": {\n    "new-checkout": {\n      "state": "ENABLED",\n'
                    '      "variants": {"on": true, "off": false},\n      "defaultVariant": "off",\n'
                    '      "targeting": {"fractional": [["on", 12.5], ["off", 87.5]]}\n    }\n  }\n}\n')


async def test_non_integer_weights_are_named_with_their_position(tmp_path: Path, ctx: ActionContext,
                                                                 peer: FlagdPeer) -> None:
    path = tmp_path / "flags.json"
    path.write_text(FRACTIONAL_FLOAT)
    peer.agree(path)  # flagd-core ignores the rule: everyone gets the default variant
    act = action(path, flags=["new-checkout"])
    description = await describe_safely(act, ctx)
    assert any(risk.startswith(f"{path}:7:43: flag new-checkout: fractional weight 12.5 is not an integer")
               for risk in description.risks), description.risks
    assert not any("%" in line for line in description.details), description.details
    failed = await run_safely(act, ctx)
    assert failed.status == "failed" and failed.error.startswith(f"{path}:7:43: flag 'new-checkout'"), failed.error
    assert path.read_text() == FRACTIONAL_FLOAT
    checks = by_name(await verify_safely(act, ctx))
    assert checks["flagd new-checkout fractional"].observed == "ignored by flagd (weight 12.5, 87.5 is not an integer)"
    assert checks["flagd new-checkout evaluation"].ok  # flagd really serves off to everyone here
    static = action(path, flags=["new-checkout"], mode="static_off")
    assert (await run_safely(static, ctx)).ok
    peer.assert_off(path, ["new-checkout"])


SEMVER = {
    "flags": {
        "new-checkout": {
            "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on",
            "targeting": {"if": [{"sem_ver": [{"var": "app.version"}, ">=", "2.4.0"]}, "on",
                                 {"starts_with": [{"var": "email"}, "qa-"]}, "on",
                                 {"fractional": [["on", 1], ["off", 999]]}]},
        },
    },
}


async def test_sem_ver_and_starts_with_rules_keep_serving_on(tmp_path: Path, ctx: ActionContext,
                                                            peer: FlagdPeer) -> None:
    path = write_flags(tmp_path / "flags.json", SEMVER, peer=peer)
    act = action(path, flags=["new-checkout"])
    assert (await run_safely(act, ctx)).ok
    evaluation = by_name(await verify_safely(act, ctx))["flagd new-checkout evaluation"]
    assert not evaluation.ok and evaluation.observed.startswith("on for "), evaluation.observed
    verdict, real = peer.agree(path)["new-checkout"]
    on = [c for c, r in zip(verdict.contexts, real) if r["variant"] == "on"]
    assert any(c.get("app", {}).get("version") == "2.4.0" for c in on)
    assert any(str(c.get("email", "")).startswith("qa-") for c in on)
    assert (await run_safely(action(path, flags=["new-checkout"], mode="static_off"), ctx)).ok
    peer.assert_off(path, ["new-checkout"])


async def test_tiny_fractional_share_is_caught_by_weight(tmp_path: Path, ctx: ActionContext,
                                                          peer: FlagdPeer) -> None:
    doc = {"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False},
                                      "defaultVariant": "off",
                                      "targeting": {"fractional": [["on", 1], ["off", 1_000_000]]}}}}
    path = write_flags(tmp_path / "flags.json", doc, peer=peer)
    checks = by_name(await verify_safely(action(path, flags=["new-checkout"], mode="static_off"), ctx))
    evaluation = checks["flagd new-checkout evaluation"]
    assert not evaluation.ok and "fractional gives on 1 of 1000001" in evaluation.observed, evaluation.observed


async def test_custom_operator_is_unverified(tmp_path: Path, ctx: ActionContext, peer: FlagdPeer) -> None:
    doc = {"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False},
                                      "defaultVariant": "off", "targeting": {"geo_fence": [{"var": "ip"}, "eu"]}}}}
    path = write_flags(tmp_path / "flags.json", doc, peer=peer)
    evaluation = by_name(await verify_safely(action(path, flags=["new-checkout"]), ctx))["flagd new-checkout evaluation"]
    assert not evaluation.ok
    assert evaluation.observed.startswith("unverified: cannot evaluate as flagd does: operator 'geo_fence'")


YAML_FLAGS = """\
# flags served to checkout-service
flags:
  new-checkout:
    state: ENABLED
    variants:
      on: true
      off: false
    defaultVariant: on
    targeting:
      if:
        - in: [{var: country}, [NL, BE]]
        - on
        - fractional: [[on, 30], [off, 70]]
  dark-mode:
    state: ENABLED
    variants: {on: true, off: false}
    defaultVariant: off
"""


async def test_yaml_flag_file_is_read_and_written_as_yaml(tmp_path: Path, ctx: ActionContext,
                                                          peer: FlagdPeer) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(YAML_FLAGS)
    before = peer.agree(path)
    assert before["new-checkout"][0].status == "on"  # 'on'/'off' are strings (YAML 1.2), as flagd reads them
    act = action(path, flags=["new-checkout"], mode="static_off")
    description = await describe_safely(act, ctx)
    assert "flag new-checkout: defaultVariant on -> off; targeting removed" in description.details
    assert (await run_safely(act, ctx)).ok
    text = path.read_text()
    assert not text.lstrip().startswith("{") and "defaultVariant: 'off'" in text, text
    assert all(check.ok for check in await verify_safely(act, ctx))
    peer.assert_off(path, ["new-checkout"])


@pytest.mark.parametrize("text,position,words", [
    ("flags:\n  a: &x {state: ENABLED}\n  b: *x\n", "2:6", "YAML anchor or alias &x"),
    ("flags:\n  a: {state: ENABLED\n", "3:1", "not valid flagd YAML"),
])
async def test_bad_yaml_names_line_and_column(tmp_path: Path, ctx: ActionContext, text: str, position: str,
                                              words: str) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(text)
    result = await run_safely(action(path, flags=["a"]), ctx)
    assert result.status == "failed" and result.error.startswith(f"{path}:{position}: {words}"), result.error
    assert "Traceback" not in result.error and path.read_text() == text


async def test_oversized_flag_file_is_refused(tmp_path: Path, ctx: ActionContext) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{"flags": {}, "pad": "' + "x" * (4 * 1024 * 1024) + '"}')
    result = await run_safely(action(path, flags=["a"]), ctx)
    assert result.status == "failed" and "more than the 4194304 accepted" in result.error
