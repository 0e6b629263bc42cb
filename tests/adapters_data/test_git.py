"""The git adapter against real repositories: checkout, revert of a merge, refusals, verify, describe."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.adapters.git import GitAdapter
from rollback_tui.plan.actions import GitAction

from .util import commit, git


def action(**fields: Any) -> GitAction:
    return GitAction.model_validate({"kind": "git", "id": "code", **fields})


async def test_checkout_moves_to_tag_and_records_previous_head(deploy_repo: dict, ctx: ActionContext) -> None:
    repo = deploy_repo["path"]
    result = await run_safely(action(repo=str(repo), ref="v2.3.1"), ctx)
    assert result.ok, result.error
    assert git(repo, "rev-parse", "HEAD") == deploy_repo["good"]
    assert result.details["previous_head"] == deploy_repo["bad"]
    assert result.details["previous_name"] in {"v2.4.0", "main"}
    checks = await verify_safely(action(repo=str(repo), ref="v2.3.1"), ctx)
    assert all(check.ok for check in checks), checks


async def test_gits_progress_on_stderr_is_information_not_an_error(deploy_repo: dict, ctx: ActionContext,
                                                                   collected: Any) -> None:
    repo = deploy_repo["path"]
    result = await run_safely(action(repo=str(repo), ref="v2.3.1"), ctx)
    assert result.ok, result.error
    progress = [(stream, line) for _, stream, line in collected.lines if line.startswith("HEAD is now at")]
    assert progress and all(stream == "info" for stream, _ in progress), collected.lines
    assert not [line for _, stream, line in collected.lines if stream == "stderr"]


async def test_verify_fails_when_head_is_elsewhere(deploy_repo: dict, ctx: ActionContext) -> None:
    checks = await verify_safely(action(repo=str(deploy_repo["path"]), ref="v2.3.1"), ctx)
    head = next(check for check in checks if check.check.startswith("HEAD"))
    assert not head.ok
    assert deploy_repo["bad"][:12] in head.observed and deploy_repo["good"][:12] in head.expected


async def test_describe_counts_commits_back(deploy_repo: dict, ctx: ActionContext) -> None:
    repo = deploy_repo["path"]
    description = await describe_safely(action(repo=str(repo), ref="v2.3.1"), ctx)
    assert description.summary == (
        f"move {repo} from {deploy_repo['bad'][:7]} (v2.4.0) to {deploy_repo['good'][:7]} (v2.3.1): 3 commits back")
    assert any("release 2.4.0" in line for line in description.details)
    assert not description.risks


async def test_dirty_tree_is_refused_with_status_lines(deploy_repo: dict, ctx: ActionContext) -> None:
    repo = deploy_repo["path"]
    (repo / "app.py").write_text("print('hot fix')\n")
    (repo / "untracked.log").write_text("noise\n")
    result = await run_safely(action(repo=str(repo), ref="v2.3.1"), ctx)
    assert result.status == "failed"
    assert "uncommitted changes" in result.error and "M app.py" in result.error
    assert "untracked.log" not in result.error
    assert git(repo, "rev-parse", "HEAD") == deploy_repo["bad"]
    description = await describe_safely(action(repo=str(repo), ref="v2.3.1"), ctx)
    assert any("uncommitted" in risk for risk in description.risks)


async def test_missing_ref_says_to_fetch(deploy_repo: dict, ctx: ActionContext) -> None:
    repo = deploy_repo["path"]
    result = await run_safely(action(repo=str(repo), ref="v9.9.9"), ctx)
    assert result.status == "failed"
    assert "'v9.9.9' does not exist" in result.error and "fetch" in result.error
    description = await describe_safely(action(repo=str(repo), ref="v9.9.9"), ctx)
    assert any("fetch it first" in risk for risk in description.risks)


async def test_not_a_repository(tmp_path: Path, ctx: ActionContext) -> None:
    result = await run_safely(action(repo=str(tmp_path), ref="v1"), ctx)
    assert result.status == "failed" and "not a git repository" in result.error
    missing = await run_safely(action(repo=str(tmp_path / "nope"), ref="v1"), ctx)
    assert missing.status == "failed" and "does not exist" in missing.error


async def test_missing_git_is_a_clear_failure(deploy_repo: dict, ctx: ActionContext,
                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = await run_safely(action(repo=str(deploy_repo["path"]), ref="v2.3.1"), ctx)
    assert result.status == "failed"
    assert result.error == "git not found on PATH: install it or use a shell action"


def merge_repo(tmp_path: Path) -> tuple[Path, str]:
    """main with a merged feature branch (a merge commit) and one later unrelated commit."""
    repo = tmp_path / "merge"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"a.txt": "a\n", "b.txt": "b\n"}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"a.txt": "a feature\n", "new.txt": "new\n"}, "feature work")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"b.txt": "b main\n"}, "main work")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    merge = git(repo, "rev-parse", "HEAD")
    commit(repo, {"c.txt": "later\n"}, "later commit")
    return repo, merge


async def test_revert_merge_commit_and_verify(tmp_path: Path, ctx: ActionContext) -> None:
    repo, merge = merge_repo(tmp_path)
    act = action(repo=str(repo), ref=merge, mode="revert", mainline=1)
    description = await describe_safely(act, ctx)
    assert description.summary.startswith(f"revert {merge[:7]}") and "Merge feature" in description.summary
    assert any("-m 1" in line for line in description.details)
    before = await verify_safely(act, ctx)
    assert not before[0].ok and before[0].observed == "none found"
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert result.details["revert_commit"] == git(repo, "rev-parse", "HEAD")
    assert (repo / "a.txt").read_text() == "a\n" and not (repo / "new.txt").exists()
    assert (repo / "c.txt").exists() and (repo / "b.txt").read_text() == "b main\n"
    checks = await verify_safely(act, ctx)
    assert [check.ok for check in checks] == [True, True, True], checks


async def test_verify_revert_detects_a_partial_undo(tmp_path: Path, ctx: ActionContext) -> None:
    repo, merge = merge_repo(tmp_path)
    act = action(repo=str(repo), ref=merge, mode="revert")
    assert (await run_safely(act, ctx)).ok
    # someone amends the revert so it only undoes part of the merge
    (repo / "new.txt").write_text("new\n")
    git(repo, "add", "new.txt")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--amend", "--no-edit")
    checks = await verify_safely(act, ctx)
    assert checks[0].ok and not checks[1].ok


async def test_revert_conflict_is_aborted(tmp_path: Path, ctx: ActionContext) -> None:
    repo, merge = merge_repo(tmp_path)
    commit(repo, {"a.txt": "rewritten later\n"}, "touch a again")
    head = git(repo, "rev-parse", "HEAD")
    result = await run_safely(action(repo=str(repo), ref=merge, mode="revert"), ctx)
    assert result.status == "failed"
    assert "a.txt" in result.error and "aborted" in result.error
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--short") == ""


class _Version(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def version_server() -> Any:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Version)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_verify_reads_the_version_endpoint(deploy_repo: dict, ctx: ActionContext, version_server: Any) -> None:
    repo = deploy_repo["path"]
    url = f"http://127.0.0.1:{version_server.server_port}/version"
    _Version.body = json.dumps({"build": {"version": "2.4.0"}}).encode()
    act = action(repo=str(repo), ref="v2.3.1", version_url=url, version_field="build.version", expect_version="2.3.1")
    assert (await run_safely(act, ctx)).ok
    checks = await verify_safely(act, ctx)
    version = checks[-1]
    assert version.category == "functionality" and not version.ok and version.observed == "2.4.0"
    _Version.body = json.dumps({"build": {"version": "2.3.1"}}).encode()
    assert all(check.ok for check in await verify_safely(act, ctx))


async def test_verify_with_unreachable_endpoint_is_a_failed_check(deploy_repo: dict, ctx: ActionContext) -> None:
    act = action(repo=str(deploy_repo["path"]), ref="v2.4.0", version_url="http://127.0.0.1:9/version")
    checks = await verify_safely(act, ctx)
    assert checks[0].ok and not checks[-1].ok and "Connect" in checks[-1].observed


async def test_checkout_is_killed_on_cancel(deploy_repo: dict, ctx: ActionContext) -> None:
    # a cancelled run leaves no git process behind and the checkout consistent (HEAD is old or new)
    repo = deploy_repo["path"]
    task = asyncio.ensure_future(GitAdapter().run(action(repo=str(repo), ref="v2.3.1"), ctx))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert git(repo, "rev-parse", "HEAD") in {deploy_repo["good"], deploy_repo["bad"]}
    assert not (repo / ".git" / "index.lock").exists()
