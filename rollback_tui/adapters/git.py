"""The git adapter: move a deploy checkout to a tag or commit, or revert a merge commit; plus the tool runners the
code and infrastructure adapters share."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.proc import ProcResult, capture, run_process
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import GitAction

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}
_LOG_LIMIT = 50


# ---------------------------------------------------------------- tool runners (shared by git, kube, terraform)


def require_program(name: str) -> str:
    """The full path of an external program, or a clear failure saying what to do."""
    found = shutil.which(name)
    if found is None:
        raise AdapterError(f"{name} not found on PATH: install it or use a shell action")
    return found


def _check_cwd(cwd: str | None) -> None:
    if cwd is not None and not Path(cwd).is_dir():
        raise AdapterError(f"directory {cwd} does not exist", hint="fix the path in the plan")


Classifier = Callable[[str, list[str]], list[tuple[str, list[str]]]]
"""(stream, lines) -> [(stream, lines)]: which of a tool's lines are progress (`info`) and which are errors."""


def git_stderr(stream: str, lines: list[str]) -> list[tuple[str, list[str]]]:
    """git writes its progress and advice (`HEAD is now at …`, `Previous HEAD position was …`) to stderr; only
    `error:`, `fatal:` and `warning:` lines are problems."""
    if stream != "stderr":
        return [(stream, lines)]
    return [("stderr" if line.startswith(("error:", "fatal:", "warning:")) else "info", [line]) for line in lines]


def kube_stderr(stream: str, lines: list[str]) -> list[tuple[str, list[str]]]:
    """kubectl and helm: `Warning:`/`WARNING:` lines (deprecations, a group-readable kubeconfig) are information;
    `error:`/`Error:` lines and anything else on stderr stay errors."""
    if stream != "stderr":
        return [(stream, lines)]
    return [("info" if line.lstrip().lower().startswith("warning:") else "stderr", [line]) for line in lines]


async def run_tool(argv: Sequence[str], ctx: ActionContext, *, cwd: str | None = None,
                   env: Mapping[str, str] | None = None, classify: Classifier | None = None) -> ProcResult:
    """Run a mutating command, streaming its lines to the operator; killed with its group on cancel.
    `classify` says which stderr lines are the tool's progress (shown as information) rather than errors."""
    require_program(argv[0])
    _check_cwd(cwd)
    ctx.log("$ " + " ".join(argv))

    def sink(stream: str, lines: list[str]) -> None:
        for kind, part in (classify(stream, lines) if classify else [(stream, lines)]):
            ctx.log_lines(part, stream=kind)

    return await run_process(argv, sink, cwd=cwd, env=env)


async def read_tool(argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                    timeout: float = 30.0) -> ProcResult:
    """Run a read-only command (describe, verify) and collect its output."""
    require_program(argv[0])
    _check_cwd(cwd)
    try:
        return await capture(argv, cwd=cwd, env=env, timeout=timeout)
    except TimeoutError:
        raise AdapterError(f"{' '.join(argv[:3])} did not answer within {timeout:g}s") from None


def tail_text(result: ProcResult, lines: int = 5) -> str:
    """The last lines of a failed command's stderr (else stdout), for an error message."""
    text = [line for line in (result.stderr_tail or result.stdout_tail) if line.strip()]
    return " | ".join(text[-lines:])


def dotted(document: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts and lists; raises KeyError naming the missing part."""
    value = document
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(part)
    return value


async def http_version(url: str, field: str | None, timeout: float = 10.0) -> str:
    """What a version endpoint reports: a dotted JSON field, or the plain-text body."""
    import httpx  # lazily: costs start-up time

    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
        response = await client.get(url)
    if response.status_code >= 400:
        raise AdapterError(f"{url} answered HTTP {response.status_code}")
    if field is None:
        return response.text.strip()
    try:
        return str(dotted(json.loads(response.text), field))
    except (ValueError, KeyError) as exc:
        raise AdapterError(f"{url} did not report a {field!r} field ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- git


class _Repo:
    """Read-only git queries on one checkout."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def git(self, *args: str, timeout: float = 30.0) -> ProcResult:
        return await read_tool(["git", "-C", self.path, *args], env=_GIT_ENV, timeout=timeout)

    async def out(self, *args: str) -> str:
        result = await self.git(*args)
        if result.returncode != 0:
            raise AdapterError(f"git {' '.join(args)} failed in {self.path}: {tail_text(result)}")
        return "\n".join(result.stdout_tail).strip()

    async def check_repo(self) -> None:
        if not Path(self.path).is_dir():
            raise AdapterError(f"{self.path} does not exist", hint="fix 'repo' in the plan")
        result = await self.git("rev-parse", "--git-dir")
        if result.returncode != 0:
            raise AdapterError(f"{self.path} is not a git repository: {tail_text(result)}")

    async def resolve(self, ref: str) -> str | None:
        result = await self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return result.stdout_tail[0].strip() if result.returncode == 0 and result.stdout_tail else None

    async def resolve_or_fail(self, ref: str) -> str:
        sha = await self.resolve(ref)
        if sha is None:
            raise AdapterError(f"ref {ref!r} does not exist in {self.path}; nothing is fetched during a rollback",
                               hint=f"fetch it first: git -C {self.path} fetch --tags origin")
        return sha

    async def head(self) -> str | None:
        return await self.resolve("HEAD")

    async def name(self, sha: str) -> str:
        """A human name for a commit: a tag pointing at it, else a branch, else ''."""
        tags = (await self.git("tag", "--points-at", sha, "--sort=-creatordate")).stdout_tail
        if tags and tags[0].strip():
            return tags[0].strip()
        branches = (await self.git("branch", "--points-at", sha, "--format=%(refname:short)")).stdout_tail
        names = [b.strip() for b in branches if b.strip() and not b.startswith("(")]
        return names[0] if names else ""

    async def label(self, sha: str) -> str:
        name = await self.name(sha)
        return f"{sha[:7]} ({name})" if name else sha[:7]

    async def dirty(self) -> list[str]:
        """`git status --short` lines of tracked changes (untracked files do not block a checkout)."""
        result = await self.git("status", "--short", "--untracked-files=no")
        if result.returncode != 0:
            raise AdapterError(f"git status failed in {self.path}: {tail_text(result)}")
        return [line for line in result.stdout_tail if line.strip()]

    async def count(self, range_: str) -> int:
        return int(await self.out("rev-list", "--count", range_) or 0)

    async def parents(self, sha: str) -> list[str]:
        return (await self.out("rev-list", "--parents", "-n", "1", sha)).split()[1:]

    async def patch_id(self, *diff_args: str) -> str:
        """The stable patch id of a diff (equal patch ids mean the same change)."""
        diff = await self.git("diff", "--no-color", "--full-index", "--binary", *diff_args)
        if diff.returncode != 0:
            raise AdapterError(f"git diff {' '.join(diff_args)} failed: {tail_text(diff)}")
        text = "\n".join(diff.stdout_tail) + "\n"
        argv = ["git", "-C", self.path, "patch-id", "--stable"]
        result = await run_process(argv, lambda stream, lines: None, stdin=text.encode(), env=_GIT_ENV, keep_tail=5)
        return result.stdout_tail[0].split()[0] if result.stdout_tail and result.stdout_tail[0] else ""


class GitAdapter:
    """`checkout` detaches HEAD at the target (a deploy checkout must not follow a branch mid-incident);
    `revert` commits `git revert --no-edit [-m MAINLINE] REF`. Nothing is ever fetched."""

    kind: ClassVar[str] = "git"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    async def describe(self, action: GitAction, ctx: ActionContext) -> Description:
        repo = _Repo(action.repo)
        risks: list[str] = []
        if not Path(action.repo).is_dir():
            return Description(f"{action.mode} {action.repo} to {action.ref}",
                               risks=[f"{action.repo} does not exist on this machine"])
        await repo.check_repo()
        head = await repo.head()
        target = await repo.resolve(action.ref)
        dirty = await repo.dirty()
        if dirty:
            risks.append(f"work tree has {len(dirty)} uncommitted change(s): the action will refuse to run")
        if target is None:
            return Description(f"{action.mode} {action.repo} to {action.ref}",
                               risks=risks + [f"ref {action.ref!r} does not exist locally: fetch it first"])
        if action.mode == "revert":
            return await self._describe_revert(action, repo, target, risks)
        if head is None:
            return Description(f"check out {action.repo} at {await repo.label(target)}", risks=risks)
        back = await repo.count(f"{target}..{head}")
        forward = await repo.count(f"{head}..{target}")
        if head == target:
            motion = "already there"
        elif forward == 0:
            motion = f"{back} commit{'s' if back != 1 else ''} back"
        elif back == 0:
            motion = f"{forward} commit{'s' if forward != 1 else ''} forward"
            risks.append("the target is newer than the current checkout (a roll forward, not back)")
        else:
            motion = f"{back} back, {forward} forward (diverged histories)"
        summary = f"move {action.repo} from {await repo.label(head)} to {await repo.label(target)}: {motion}"
        details = []
        if back:
            log = await repo.out("log", "--oneline", "--no-decorate", f"-{_LOG_LIMIT}", f"{target}..{head}")
            details = ["commits leaving the checkout:"] + ["  " + line for line in log.splitlines()]
        details.append(f"$ git -C {action.repo} checkout --detach {target[:12]}")
        return Description(summary, details, risks)

    async def _describe_revert(self, action: GitAction, repo: _Repo, target: str, risks: list[str]) -> Description:
        parents = await repo.parents(target)
        subject = await repo.out("log", "-1", "--format=%s", target)
        argv = ["git", "-C", action.repo, "revert", "--no-edit"]
        if len(parents) > 1:
            argv += ["-m", str(action.mainline)]
            if action.mainline > len(parents):
                risks.append(f"{action.ref} has {len(parents)} parents: mainline {action.mainline} does not exist")
        stat = await repo.out("diff", "--stat", f"{target}^{action.mainline if len(parents) > 1 else 1}", target)
        summary = f"revert {await repo.label(target)} \"{subject}\" in {action.repo}"
        details = ["changes undone:", *("  " + line for line in stat.splitlines()),
                   "$ " + " ".join([*argv, target[:12]])]
        return Description(summary, details, risks)

    async def run(self, action: GitAction, ctx: ActionContext) -> ActionResult:
        repo = _Repo(action.repo)
        require_program("git")
        await repo.check_repo()
        dirty = await repo.dirty()
        if dirty:
            ctx.log_lines(dirty, stream="stderr")
            raise AdapterError(f"{action.repo} has uncommitted changes; refusing to {action.mode}:\n  "
                               + "\n  ".join(dirty[:20]),
                               hint="commit, stash or discard them on the host, then retry")
        previous = await repo.head()
        target = await repo.resolve_or_fail(action.ref)
        details: dict[str, Any] = {"repo": action.repo, "previous_head": previous or "", "target": target}
        if previous:
            details["previous_name"] = await repo.name(previous)
        if action.mode == "checkout":
            result = await run_tool(["git", "-C", action.repo, "-c", "advice.detachedHead=false",
                                     "checkout", "--detach", target], ctx, env=_GIT_ENV, classify=git_stderr)
            if result.returncode != 0:
                return ActionResult("failed", result.returncode, f"git checkout failed: {tail_text(result)}",
                                    details=details)
            details["head"] = await repo.head()
            return ActionResult("ok", 0, details=details)
        return await self._revert(action, ctx, repo, target, details)

    async def _revert(self, action: GitAction, ctx: ActionContext, repo: _Repo, target: str,
                      details: dict[str, Any]) -> ActionResult:
        argv = ["git", "-C", action.repo, "revert", "--no-edit"]
        if len(await repo.parents(target)) > 1:
            argv += ["-m", str(action.mainline)]
        result = await run_tool([*argv, target], ctx, env=_GIT_ENV, classify=git_stderr)
        if result.returncode != 0:
            conflicts = (await repo.git("diff", "--name-only", "--diff-filter=U")).stdout_tail
            await repo.git("revert", "--abort")  # leave the checkout as it was
            reason = f"conflicts in {', '.join(c for c in conflicts if c)}" if any(conflicts) else tail_text(result)
            return ActionResult("failed", result.returncode, f"git revert of {action.ref} failed ({reason}); "
                                "the revert was aborted and the checkout is unchanged",
                                details=details)
        details["revert_commit"] = await repo.head()
        return ActionResult("ok", 0, details=details)

    async def verify(self, action: GitAction, ctx: ActionContext) -> list[CheckResult]:
        repo = _Repo(action.repo)
        await repo.check_repo()
        target = await repo.resolve_or_fail(action.ref)
        head = await repo.head() or "(no commit)"
        checks: list[CheckResult] = []
        if action.mode == "checkout":
            checks.append(CheckResult(f"HEAD of {action.repo}", f"{action.ref} = {target[:12]}",
                                      f"{await repo.label(head)} = {head[:12]}", head == target))
        else:
            checks += await self._verify_revert(action, repo, target, head)
        dirty = await repo.dirty()
        checks.append(CheckResult(f"work tree of {action.repo}", "clean",
                                  "clean" if not dirty else "; ".join(dirty[:5]), not dirty, readback="safety"))
        if action.version_url:
            expected = action.expect_version or action.ref
            url = ctx.expand(action.version_url)
            try:
                observed = await http_version(url, action.version_field)
            except AdapterError as exc:
                observed = str(exc)
            except Exception as exc:  # a refused connection is evidence, not a crash
                observed = f"{type(exc).__name__}: {exc}"
            checks.append(CheckResult(f"version at {action.version_url}", expected, observed, observed == expected,
                                      category="functionality"))
        return checks

    async def _verify_revert(self, action: GitAction, repo: _Repo, target: str, head: str) -> list[CheckResult]:
        """The revert is in HEAD's history after REF and its change is exactly REF's change inverted
        (equal `git patch-id`s), which stays true when later commits touched other lines."""
        found = await repo.out("log", "--format=%H", f"--grep=This reverts commit {target}", f"{target}..HEAD")
        revert = found.splitlines()[0] if found else ""
        checks = [CheckResult(f"revert of {action.ref} in {action.repo}", f"a commit reverting {target[:12]}",
                              f"{await repo.label(revert)}" if revert else "none found", bool(revert))]
        if revert:
            parents = await repo.parents(target)
            base = f"{target}^{action.mainline if len(parents) > 1 else 1}"
            undo = await repo.patch_id(target, base)
            done = await repo.patch_id(f"{revert}^", revert)
            checks.append(CheckResult(f"{revert[:7]} undoes {action.ref} exactly", f"patch-id {undo[:12]}",
                                      f"patch-id {done[:12]}", bool(undo) and undo == done))
        return checks


__all__ = ["GitAdapter", "dotted", "http_version", "read_tool", "require_program", "run_tool",
           "tail_text"]
