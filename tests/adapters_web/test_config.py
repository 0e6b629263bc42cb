"""Configuration adapters: files restored from a snapshot (backup, atomic, mode, sha256) and `.env` key by key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.adapters.config import format_value, parse_env, parse_value
from rollback_tui.plan.actions import ConfigFilesAction, EnvFileAction

from .conftest import Collected, assert_no_canary
from .util import CANARY

GOOD = "[server]\nport = 8080\nworkers = 4\ndb_password = good-pass-123\n"
BAD = "[server]\nport = 9090\nworkers = 4\ndb_password = bad-pass-456\nexperimental = on\n"


@pytest.fixture
def config_tree(tmp_path: Path) -> dict[str, Path]:
    live, snap = tmp_path / "etc", tmp_path / "snapshot"
    live.mkdir()
    snap.mkdir()
    (live / "app.ini").write_text(BAD)
    (live / "app.ini").chmod(0o640)
    (snap / "app.ini").write_text(GOOD)
    (snap / "app.ini").chmod(0o644)
    (live / "logging.ini").write_text("level = info\n")
    (snap / "logging.ini").write_text("level = info\n")
    (snap / "new.ini").write_text("fresh = yes\n")
    (snap / "new.ini").chmod(0o600)
    return {"live": live, "snap": snap}


def restore(tree: dict[str, Path], names: list[str], **kwargs: Any) -> ConfigFilesAction:
    files = [{"path": str(tree["live"] / name), "snapshot": str(tree["snap"] / name)} for name in names]
    return ConfigFilesAction.model_validate({"kind": "config_files", "id": "restore", "files": files, **kwargs})


async def test_restore_backs_up_writes_atomically_and_verifies(config_tree: dict[str, Path], ctx: ActionContext,
                                                               collected: Collected) -> None:
    live = config_tree["live"]
    act = restore(config_tree, ["app.ini", "logging.ini", "new.ini"])
    before = await verify_safely(act, ctx)
    assert [check.ok for check in before] == [False, True, False]
    assert before[2].observed == "file missing"

    result = await run_safely(act, ctx)

    assert result.ok, result.error
    assert (live / "app.ini").read_text() == GOOD
    assert oct((live / "app.ini").stat().st_mode & 0o777) == oct(0o640)  # the live file's mode is kept
    assert oct((live / "new.ini").stat().st_mode & 0o777) == oct(0o600)  # a new file gets the snapshot's
    backup = Path(result.details["backups"][str(live / "app.ini")])
    assert backup.parent == live and backup.name.startswith("app.ini.rollback-backup-")
    assert backup.read_text() == BAD
    assert result.details["unchanged"] == [str(live / "logging.ini")]
    assert str(live / "logging.ini") not in result.details["backups"]
    assert sorted(p.name for p in live.iterdir() if "rollback-tmp" in p.name) == []
    assert "restored from" in collected.text

    checks = await verify_safely(act, ctx)
    assert all(check.ok for check in checks) and checks[0].check == f"sha256 of {live / 'app.ini'}"
    (live / "app.ini").write_text(GOOD + "# edited by hand\n")
    assert not (await verify_safely(act, ctx))[0].ok


async def test_backup_dir_and_second_run(config_tree: dict[str, Path], ctx: ActionContext, tmp_path: Path) -> None:
    act = restore(config_tree, ["app.ini"], backup_dir=str(tmp_path / "backups"))
    first = await run_safely(act, ctx)
    assert first.ok and Path(first.details["backups"][str(config_tree["live"] / "app.ini")]).parent == tmp_path / "backups"
    second = await run_safely(act, ctx)
    assert second.ok and second.details["backups"] == {} and second.details["restored"] == []


async def test_describe_is_a_masked_unified_diff(config_tree: dict[str, Path], ctx: ActionContext) -> None:
    live = config_tree["live"]
    description = await describe_safely(restore(config_tree, ["app.ini", "logging.ini", "new.ini"]), ctx)
    assert description.summary.startswith("restore 3 file(s) from the snapshot (2 differ)")
    details = description.details
    assert f"--- {live / 'app.ini'} (live)" in details
    assert "-port = 9090" in details and "+port = 8080" in details and "-experimental = on" in details
    assert "-db_password = •••" in details and "+db_password = •••" in details
    assert not any("bad-pass" in line or "good-pass" in line for line in details)
    assert any(line.startswith(f"{live / 'logging.ini'}: already matches the snapshot") for line in details)
    assert f"--- {live / 'new.ini'} (does not exist yet)" in details
    assert (live / "app.ini").read_text() == BAD  # describe only reads


async def test_missing_snapshot_changes_nothing(config_tree: dict[str, Path], ctx: ActionContext) -> None:
    act = restore(config_tree, ["app.ini", "gone.ini"])
    result = await run_safely(act, ctx)
    assert result.status == "failed" and f"snapshot {config_tree['snap'] / 'gone.ini'} does not exist" in result.error
    assert (config_tree["live"] / "app.ini").read_text() == BAD
    description = await describe_safely(act, ctx)
    assert any("gone.ini does not exist" in risk for risk in description.risks)


async def test_known_secret_in_a_config_diff_is_masked(config_tree: dict[str, Path], ctx: ActionContext,
                                                       collected: Collected) -> None:
    ctx.secrets.load_all()  # the engine reads every declared secret at start, so redaction knows them
    (config_tree["snap"] / "app.ini").write_text(GOOD + f"upstream = https://api.example/?sig={CANARY}\n")
    act = restore(config_tree, ["app.ini"])
    description = await describe_safely(act, ctx)
    assert "+upstream = https://api.example/?sig=•••" in description.details
    result = await run_safely(act, ctx)
    checks = await verify_safely(act, ctx)
    assert result.ok and all(check.ok for check in checks)
    assert_no_canary(description, collected.text, result.details, [vars(c) for c in checks])


async def test_symlinked_config_is_written_through(config_tree: dict[str, Path], ctx: ActionContext) -> None:
    live = config_tree["live"]
    (live / "real.ini").write_text(BAD)
    (live / "app.ini").unlink()
    os.symlink(live / "real.ini", live / "app.ini")
    assert (await run_safely(restore(config_tree, ["app.ini"]), ctx)).ok
    assert (live / "app.ini").is_symlink() and (live / "real.ini").read_text() == GOOD


# ---------------------------------------------------------------- env_file

LIVE_ENV = """# service environment
export APP_MODE=canary
FEATURE_X=on   # turned on for 2.4.0
DB_PASSWORD='new-db-pass'

LOG_LEVEL=debug
NEW_ONLY=1
"""
SNAPSHOT_ENV = """APP_MODE=stable
FEATURE_X=off
DB_PASSWORD="old-db-pass"
CACHE_URL=redis://cache:6379/0
"""


def env_action(tmp_path: Path, **kwargs: Any) -> EnvFileAction:
    return EnvFileAction.model_validate({"kind": "env_file", "id": "env", "path": str(tmp_path / ".env"), **kwargs})


async def test_env_restores_keys_keeps_comments_and_order(tmp_path: Path, ctx: ActionContext,
                                                          collected: Collected) -> None:
    (tmp_path / ".env").write_text(LIVE_ENV)
    (tmp_path / ".env").chmod(0o600)
    (tmp_path / "good.env").write_text(SNAPSHOT_ENV)
    act = env_action(tmp_path, snapshot="good.env", values={"API_TOKEN": "${secrets.canary}", "LOG_LEVEL": "info"},
                     remove=["NEW_ONLY"])

    description = await describe_safely(act, ctx)
    assert "APP_MODE: canary -> stable" in description.details
    assert "FEATURE_X: on -> off" in description.details
    assert "DB_PASSWORD: ••• -> ••• (value changes)" in description.details
    assert "CACHE_URL: (absent) -> redis://cache:6379/0" in description.details
    assert "API_TOKEN: (absent) -> •••" in description.details
    assert "NEW_ONLY: 1 -> (removed)" in description.details

    result = await run_safely(act, ctx)
    assert result.ok, result.error
    text = (tmp_path / ".env").read_text()
    assert text == (
        "# service environment\n"
        "export APP_MODE=stable\n"
        "FEATURE_X=off\n"
        'DB_PASSWORD="old-db-pass"\n'
        "\n"
        "LOG_LEVEL=info\n"
        "CACHE_URL=redis://cache:6379/0\n"
        f"API_TOKEN={CANARY}\n"
    )
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == oct(0o600)
    assert Path(result.details["backup"]).read_text() == LIVE_ENV
    assert set(result.details["changed"]) == {"APP_MODE", "FEATURE_X", "DB_PASSWORD", "CACHE_URL", "API_TOKEN",
                                              "LOG_LEVEL"}

    checks = await verify_safely(act, ctx)
    assert checks and all(check.ok for check in checks), checks
    token = next(check for check in checks if check.check.startswith("API_TOKEN"))
    assert (token.expected, token.observed) == ("••• (target value)", "••• (matches)")
    assert_no_canary(description, collected.text, result.details, result.error, [vars(c) for c in checks])
    assert "old-db-pass" not in str(description) + collected.text + str([vars(c) for c in checks])


async def test_env_verify_spots_drift_and_leftovers(tmp_path: Path, ctx: ActionContext) -> None:
    (tmp_path / ".env").write_text(LIVE_ENV)
    act = env_action(tmp_path, values={"APP_MODE": "stable", "DB_PASSWORD": "x y 'z'"}, remove=["NEW_ONLY"])
    checks = {check.check.split()[0]: check for check in await verify_safely(act, ctx)}
    assert (checks["APP_MODE"].observed, checks["APP_MODE"].ok) == ("canary", False)
    assert (checks["DB_PASSWORD"].observed, checks["DB_PASSWORD"].ok) == ("••• (differs)", False)
    assert (checks["NEW_ONLY"].observed, checks["NEW_ONLY"].ok) == ("present", False)
    assert (await run_safely(act, ctx)).ok
    assert all(check.ok for check in await verify_safely(act, ctx))
    assert parse_env((tmp_path / ".env").read_text())[3].value == "x y 'z'"


async def test_env_nothing_to_do_and_conflicts(tmp_path: Path, ctx: ActionContext) -> None:
    (tmp_path / ".env").write_text("A=1\n")
    same = await run_safely(env_action(tmp_path, values={"A": "1"}, remove=["B"]), ctx)
    assert same.ok and same.details["backup"] is None
    assert not list(tmp_path.glob(".env.rollback-backup-*"))
    both = await run_safely(env_action(tmp_path, values={"A": "2"}, remove=["A"]), ctx)
    assert both.status == "failed" and "A are both set and removed" in both.error
    missing = await run_safely(env_action(tmp_path, snapshot=str(tmp_path / "nope.env")), ctx)
    assert missing.status == "failed" and "nope.env does not exist" in missing.error


async def test_env_file_created_when_absent(tmp_path: Path, ctx: ActionContext) -> None:
    act = env_action(tmp_path, values={"A": "1"})
    description = await describe_safely(act, ctx)
    assert any("will be created" in risk for risk in description.risks)
    result = await run_safely(act, ctx)
    assert result.ok and (tmp_path / ".env").read_text() == "A=1\n"
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == oct(0o600)


@pytest.mark.parametrize("value", ["plain", "", "two words", "it's", 'say "hi" $HOME', "a#b", "line\nbreak", "x=y"])
def test_env_values_round_trip(value: str) -> None:
    assert parse_value(format_value(value)) == value
    assert parse_env(f"K={format_value(value)}")[0].value == value
