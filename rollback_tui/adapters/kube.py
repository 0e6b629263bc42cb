"""Kubernetes adapters: `kubectl rollout undo` / `set image` with `rollout status`, and `helm rollback`."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.git import kube_stderr, read_tool, run_tool, tail_text
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import HelmAction, KubectlAction

#: `rollout status` gets the action's timeout minus this margin, so kubectl reports why before we kill it.
_STATUS_MARGIN = 5
_IMAGES = '{range .spec.template.spec.containers[*]}{.name}={.image}{"\\n"}{end}'


def _wait_seconds(timeout: float) -> int:
    return max(1, int(timeout) - _STATUS_MARGIN)


# ---------------------------------------------------------------- kubectl argv


def kubectl_base(action: KubectlAction) -> list[str]:
    """`kubectl [--kubeconfig K] [--context C] --namespace N`."""
    argv = ["kubectl"]
    if action.kubeconfig:
        argv += ["--kubeconfig", action.kubeconfig]
    if action.context:
        argv += ["--context", action.context]
    return argv + ["--namespace", action.namespace]


def kubectl_change_argv(action: KubectlAction) -> list[str]:
    """The command that changes the workload: `rollout undo` or `set image`."""
    base = kubectl_base(action)
    if action.mode == "undo":
        argv = base + ["rollout", "undo", action.resource]
        if action.to_revision is not None:
            argv.append(f"--to-revision={action.to_revision}")
        return argv
    if not action.image:
        raise AdapterError(f"kubectl action {action.id}: mode set_image needs 'image'",
                           hint="add 'image: registry/name:tag' (and 'container' for a multi-container pod)")
    return base + ["set", "image", action.resource, f"{action.container or '*'}={action.image}"]


def kubectl_status_argv(action: KubectlAction) -> list[str]:
    """`rollout status` bounded by the action's timeout."""
    return kubectl_base(action) + ["rollout", "status", action.resource, f"--timeout={_wait_seconds(action.timeout)}s"]


def kubectl_images_argv(action: KubectlAction) -> list[str]:
    """Read back `name=image` of every container of the pod template."""
    return kubectl_base(action) + ["get", action.resource, "-o", f"jsonpath={_IMAGES}"]


def _parse_images(lines: list[str]) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {name.strip(): image.strip() for name, image in pairs}


class KubectlAdapter:
    """Kubernetes through kubectl (no cluster runs here: tested by argument construction with a fake kubectl)."""

    kind: ClassVar[str] = "kubectl"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    async def describe(self, action: KubectlAction, ctx: ActionContext) -> Description:
        where = f"namespace {action.namespace}" + (f", context {action.context}" if action.context else "")
        if action.mode == "undo":
            target = f"revision {action.to_revision}" if action.to_revision is not None else "its previous revision"
            summary = f"roll {action.resource} back to {target} ({where})"
        else:
            summary = f"set the image of {action.resource} to {action.image} ({where})"
        risks: list[str] = []
        try:
            details = ["$ " + " ".join(kubectl_change_argv(action))]
        except AdapterError as exc:
            details, risks = [], [str(exc)]
        if action.wait:
            details.append("$ " + " ".join(kubectl_status_argv(action)))
        else:
            risks.append("does not wait for the rollout to complete (wait: false)")
        if action.mode == "set_image" and not action.container:
            risks.append("no 'container': every container of the pod gets this image")
        return Description(summary, details, risks)

    async def run(self, action: KubectlAction, ctx: ActionContext) -> ActionResult:
        argv = kubectl_change_argv(action)
        details: dict[str, Any] = {"resource": action.resource, "namespace": action.namespace}
        before = await read_tool(kubectl_images_argv(action), timeout=30.0)
        if before.returncode == 0:
            details["previous_images"] = _parse_images(before.stdout_tail)
        result = await run_tool(argv, ctx, classify=kube_stderr)
        if result.returncode != 0:
            return ActionResult("failed", result.returncode, f"{' '.join(argv[-3:])} failed: {tail_text(result)}",
                                details=details)
        if action.wait:
            status = await run_tool(kubectl_status_argv(action), ctx, classify=kube_stderr)
            if status.returncode != 0:
                return ActionResult("failed", status.returncode,
                                    f"rollout of {action.resource} did not complete: {tail_text(status)}",
                                    details=details)
        return ActionResult("ok", 0, details=details)

    async def verify(self, action: KubectlAction, ctx: ActionContext) -> list[CheckResult]:
        checks: list[CheckResult] = []
        status = await read_tool(kubectl_base(action) + ["rollout", "status", action.resource, "--watch=false"])
        checks.append(CheckResult(f"rollout of {action.resource}", "complete",  # complete, undone or not
                                  tail_text(status, 2) or f"exit {status.returncode}", status.returncode == 0,
                                  readback="safety"))
        got = await read_tool(kubectl_images_argv(action))
        if got.returncode != 0:
            checks.append(CheckResult(f"images of {action.resource}", action.image or "readable",
                                      tail_text(got) or f"exit {got.returncode}", False))
            return checks
        images = _parse_images(got.stdout_tail)
        observed = ", ".join(f"{name}={image}" for name, image in images.items()) or "(no containers)"
        if action.image:
            if action.container:
                ok = images.get(action.container) == action.image
                expected = f"{action.container}={action.image}"
            else:
                ok = bool(images) and all(image == action.image for image in images.values())
                expected = f"*={action.image}"
            checks.append(CheckResult(f"images of {action.resource}", expected, observed, ok, category="state"))
        else:
            checks.append(CheckResult(f"images of {action.resource}", "(recorded)", observed, bool(images),
                                      category="state", readback="none"))  # no target image to compare with
        return checks


# ---------------------------------------------------------------- helm


def helm_base(action: HelmAction) -> list[str]:
    argv = ["helm"]
    if action.context:
        argv += ["--kube-context", action.context]
    return argv


def helm_rollback_argv(action: HelmAction) -> list[str]:
    """`helm rollback RELEASE REVISION --namespace N [--wait --timeout Ns]`."""
    argv = helm_base(action) + ["rollback", action.release, str(action.revision), "--namespace", action.namespace]
    if action.wait:
        argv += ["--wait", f"--timeout={_wait_seconds(action.timeout)}s"]
    return argv


def helm_history_argv(action: HelmAction) -> list[str]:
    return helm_base(action) + ["history", action.release, "--namespace", action.namespace, "-o", "json"]


async def _history(action: HelmAction) -> list[dict[str, Any]]:
    result = await read_tool(helm_history_argv(action))
    if result.returncode != 0:
        raise AdapterError(f"helm history {action.release} failed: {tail_text(result)}")
    try:
        entries = json.loads("\n".join(result.stdout_tail))
    except ValueError as exc:
        raise AdapterError(f"helm history {action.release} printed no JSON: {exc}") from None
    return sorted((e for e in entries if isinstance(e, dict)), key=lambda e: int(e.get("revision", 0)))


def _release_label(entry: dict[str, Any]) -> str:
    return f"{entry.get('chart', '?')} app {entry.get('app_version', '?')}"


class HelmAdapter:
    """Helm releases (no cluster runs here: tested by argument construction with a fake helm)."""

    kind: ClassVar[str] = "helm"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    async def describe(self, action: HelmAction, ctx: ActionContext) -> Description:
        summary = f"roll helm release {action.release} back to revision {action.revision} " \
                  f"(namespace {action.namespace})"
        risks = [] if action.wait else ["does not wait for the release's resources to be ready (wait: false)"]
        return Description(summary, ["$ " + " ".join(helm_rollback_argv(action))], risks)

    async def run(self, action: HelmAction, ctx: ActionContext) -> ActionResult:
        details: dict[str, Any] = {"release": action.release, "namespace": action.namespace}
        try:
            history = await _history(action)
            if history:
                details["previous_revision"] = int(history[-1].get("revision", 0))
        except AdapterError as exc:
            ctx.log(f"history not readable before the rollback: {exc}", stream="stderr")
        argv = helm_rollback_argv(action)
        result = await run_tool(argv, ctx, classify=kube_stderr)
        if result.returncode != 0:
            return ActionResult("failed", result.returncode,
                                f"helm rollback {action.release} {action.revision} failed: {tail_text(result)}",
                                details=details)
        return ActionResult("ok", 0, details=details)

    async def verify(self, action: HelmAction, ctx: ActionContext) -> list[CheckResult]:
        """The newest revision is deployed, says `Rollback to N`, and runs the chart and app version of N."""
        history = await _history(action)
        if not history:
            return [CheckResult(f"helm release {action.release}", "has history", "no revisions", False)]
        latest = history[-1]
        target = next((e for e in history if int(e.get("revision", 0)) == action.revision), None)
        status = str(latest.get("status", "?"))
        description = str(latest.get("description", ""))
        checks = [
            CheckResult(f"helm release {action.release} status", "deployed",
                        f"revision {latest.get('revision')} {status}", status == "deployed"),
            CheckResult(f"helm release {action.release} latest revision", f"Rollback to {action.revision}",
                        description or "(no description)", description == f"Rollback to {action.revision}"),
        ]
        if target is None:
            checks.append(CheckResult(f"helm revision {action.revision}", "in history", "not found", False))
        else:
            checks.append(CheckResult(f"helm release {action.release} version", _release_label(target),
                                      _release_label(latest), _release_label(target) == _release_label(latest),
                                      category="state"))
        return checks
