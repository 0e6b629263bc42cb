"""flagd flag-definition files: disable / default_off, fractional to 0 %, backups, atomic writes, read-back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.plan.actions import FlagdAction

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


def write_flags(path: Path, doc: dict[str, Any] = FLAGS, mode: int = 0o640) -> Path:
    path.write_text(json.dumps(doc, indent=4))
    path.chmod(mode)
    return path


def action(path: Path, **kwargs: Any) -> FlagdAction:
    fields = {"kind": "flagd", "id": "flags-off", "file": str(path), "flags": ["new-checkout", "beta-banner"]}
    return FlagdAction.model_validate({**fields, **kwargs})


async def test_default_off_sets_default_variant_and_zeroes_fractional(tmp_path: Path, ctx: ActionContext,
                                                                       collected: Any) -> None:
    path = write_flags(tmp_path / "flags.json")
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


async def test_disable_mode_sets_state_and_is_idempotent(tmp_path: Path, ctx: ActionContext) -> None:
    path = write_flags(tmp_path / "flags.json")
    act = action(path, mode="disable", flags=["new-checkout"])

    first = await run_safely(act, ctx)
    assert first.ok and first.details["changed"]["new-checkout"][0] == "state ENABLED -> DISABLED"
    stat = path.stat()
    second = await run_safely(act, ctx)
    assert second.ok and second.details["changed"] == {} and second.details["backup"] is None
    assert path.stat().st_mtime_ns == stat.st_mtime_ns  # nothing to do, nothing written

    checks = await verify_safely(act, ctx)
    assert [(c.check, c.observed, c.ok) for c in checks][0] == ("flagd new-checkout state", "DISABLED", True)


async def test_verify_fails_before_the_run(tmp_path: Path, ctx: ActionContext) -> None:
    path = write_flags(tmp_path / "flags.json")
    checks = await verify_safely(action(path), ctx)
    failing = {check.check: check.observed for check in checks if not check.ok}
    assert failing["flagd new-checkout defaultVariant"] == "on"
    assert failing["flagd new-checkout fractional"] == "on 75 %, off 25 %"


async def test_describe_shows_before_and_after(tmp_path: Path, ctx: ActionContext) -> None:
    path = write_flags(tmp_path / "flags.json")
    before = path.read_text()
    description = await describe_safely(action(path), ctx)
    assert "turn off 2 flag(s)" in description.summary
    assert ("flag new-checkout: defaultVariant on -> off; fractional on 75 %, off 25 % -> on 0 %, off 100 %"
            in description.details)
    assert path.read_text() == before  # describe only reads


async def test_default_off_warns_about_rules_returning_on(tmp_path: Path, ctx: ActionContext) -> None:
    doc = json.loads(json.dumps(FLAGS))
    doc["flags"]["new-checkout"]["targeting"] = {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", None]}
    path = write_flags(tmp_path / "flags.json", doc)
    act = action(path, flags=["new-checkout"])
    description = await describe_safely(act, ctx)
    assert any("can still return on" in risk for risk in description.risks)
    assert (await run_safely(act, ctx)).ok
    checks = await verify_safely(act, ctx)
    targeting = next(check for check in checks if check.check.endswith("targeting"))
    assert not targeting.ok and targeting.observed == "can return on"


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
