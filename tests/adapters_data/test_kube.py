"""kubectl and helm adapters, by argument construction: a fake kubectl/helm first on PATH records its argv and
prints canned output (no Kubernetes cluster runs here; the README says so)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.base import ActionContext, describe_safely, run_safely, verify_safely
from rollback_tui.adapters.kube import helm_rollback_argv, kubectl_change_argv, kubectl_status_argv
from rollback_tui.plan.actions import HelmAction, KubectlAction
from rollback_tui.secrets import MASK

from .util import CANARY

FakeBin = Callable[..., Path]


def kubectl(**fields: Any) -> KubectlAction:
    return KubectlAction.model_validate({"kind": "kubectl", "id": "k8s", "resource": "deployment/checkout", **fields})


def helm(**fields: Any) -> HelmAction:
    return HelmAction.model_validate({"kind": "helm", "id": "helm", "release": "checkout", "revision": 3, **fields})


def recorded(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_kubectl_argv() -> None:
    undo = kubectl(namespace="shop", context="prod-eu", to_revision=3, timeout="2m")
    assert kubectl_change_argv(undo) == ["kubectl", "--context", "prod-eu", "--namespace", "shop",
                                         "rollout", "undo", "deployment/checkout", "--to-revision=3"]
    assert kubectl_status_argv(undo) == ["kubectl", "--context", "prod-eu", "--namespace", "shop",
                                         "rollout", "status", "deployment/checkout", "--timeout=115s"]
    assert kubectl_change_argv(kubectl()) == ["kubectl", "--namespace", "default", "rollout", "undo",
                                              "deployment/checkout"]
    image = kubectl(mode="set_image", container="web", image="reg/checkout:2.3.1", kubeconfig="/k/config")
    assert kubectl_change_argv(image) == ["kubectl", "--kubeconfig", "/k/config", "--namespace", "default",
                                          "set", "image", "deployment/checkout", "web=reg/checkout:2.3.1"]


def test_helm_argv() -> None:
    assert helm_rollback_argv(helm(namespace="shop", timeout="10m")) == [
        "helm", "rollback", "checkout", "3", "--namespace", "shop", "--wait", "--timeout=595s"]
    assert helm_rollback_argv(helm(wait=False, context="prod")) == [
        "helm", "--kube-context", "prod", "rollback", "checkout", "3", "--namespace", "default"]


_KUBECTL_OK = """
case "$*" in
  *"get deployment/checkout"*) printf 'web=reg/checkout:2.3.1\\nsidecar=reg/envoy:1.0\\n' ;;
  *"rollout undo"*) echo 'deployment.apps/checkout rolled back' ;;
  *"rollout status"*) echo 'deployment "checkout" successfully rolled out' ;;
esac
"""


async def test_kubectl_undo_runs_undo_then_status(fake_bin: FakeBin, ctx: ActionContext, collected: Any) -> None:
    record = fake_bin("kubectl", _KUBECTL_OK)
    act = kubectl(namespace="shop", to_revision=3, timeout=60)
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    calls = recorded(record)
    assert calls[1] == ["--namespace", "shop", "rollout", "undo", "deployment/checkout", "--to-revision=3"]
    assert calls[2] == ["--namespace", "shop", "rollout", "status", "deployment/checkout", "--timeout=55s"]
    assert result.details["previous_images"] == {"web": "reg/checkout:2.3.1", "sidecar": "reg/envoy:1.0"}
    assert "successfully rolled out" in collected.text


async def test_kubectl_verify_compares_the_image(fake_bin: FakeBin, ctx: ActionContext) -> None:
    record = fake_bin("kubectl", _KUBECTL_OK)
    good = await verify_safely(kubectl(mode="set_image", container="web", image="reg/checkout:2.3.1"), ctx)
    assert [check.ok for check in good] == [True, True]
    jsonpath = 'jsonpath={range .spec.template.spec.containers[*]}{.name}={.image}{"\\n"}{end}'
    assert recorded(record)[-1][-3:] == ["deployment/checkout", "-o", jsonpath]
    bad = await verify_safely(kubectl(mode="set_image", container="web", image="reg/checkout:2.4.0"), ctx)
    assert not bad[1].ok and bad[1].observed == "web=reg/checkout:2.3.1, sidecar=reg/envoy:1.0"
    every = await verify_safely(kubectl(mode="set_image", image="reg/checkout:2.3.1"), ctx)
    assert not every[1].ok  # the sidecar runs another image


async def test_kubectl_failed_rollout_status_fails_the_action(fake_bin: FakeBin, ctx: ActionContext) -> None:
    fake_bin("kubectl", 'case "$*" in *"rollout status"*) echo "error: timed out waiting for the condition" >&2;'
                        ' exit 1;; esac')
    result = await run_safely(kubectl(), ctx)
    assert result.status == "failed"
    assert "did not complete" in result.error and "timed out waiting" in result.error


async def test_kubectl_set_image_without_image_is_refused(fake_bin: FakeBin, ctx: ActionContext) -> None:
    record = fake_bin("kubectl")
    result = await run_safely(kubectl(mode="set_image"), ctx)
    assert result.status == "failed" and "needs 'image'" in result.error
    assert not any("set" in call for call in recorded(record))
    description = await describe_safely(kubectl(mode="set_image"), ctx)
    assert any("needs 'image'" in risk for risk in description.risks)


async def test_missing_kubectl_and_helm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ctx: ActionContext) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = await run_safely(kubectl(), ctx)
    assert result.error == "kubectl not found on PATH: install it or use a shell action"
    result = await run_safely(helm(), ctx)
    assert result.error == "helm not found on PATH: install it or use a shell action"
    checks = await verify_safely(helm(), ctx)
    assert not checks[0].ok and "helm not found" in checks[0].observed


async def test_kubectl_describe(ctx: ActionContext) -> None:
    description = await describe_safely(kubectl(namespace="shop", to_revision=3, context="prod"), ctx)
    assert description.summary == "roll deployment/checkout back to revision 3 (namespace shop, context prod)"
    assert description.details[0].endswith("rollout undo deployment/checkout --to-revision=3")


_HISTORY = [
    {"revision": 3, "status": "superseded", "chart": "checkout-1.4.0", "app_version": "2.3.1",
     "description": "Upgrade complete"},
    {"revision": 4, "status": "superseded", "chart": "checkout-1.5.0", "app_version": "2.4.0",
     "description": "Upgrade complete"},
    {"revision": 5, "status": "deployed", "chart": "checkout-1.4.0", "app_version": "2.3.1",
     "description": "Rollback to 3"},
]


def helm_script(history: list[dict[str, Any]]) -> str:
    return (f"case \"$*\" in *history*) echo '{json.dumps(history)}' ;;"
            " *rollback*) echo 'Rollback was a success! Happy Helming!' ;; esac")


async def test_helm_rollback_and_verify(fake_bin: FakeBin, ctx: ActionContext, collected: Any) -> None:
    record = fake_bin("helm", helm_script(_HISTORY))
    act = helm(namespace="shop", timeout=120)
    result = await run_safely(act, ctx)
    assert result.ok, result.error
    assert recorded(record)[-1] == ["rollback", "checkout", "3", "--namespace", "shop", "--wait", "--timeout=115s"]
    assert result.details["previous_revision"] == 5
    assert "Happy Helming" in collected.text
    checks = await verify_safely(act, ctx)
    assert [check.ok for check in checks] == [True, True, True], checks


async def test_helm_verify_detects_a_release_not_rolled_back(fake_bin: FakeBin, ctx: ActionContext) -> None:
    fake_bin("helm", helm_script(_HISTORY[:2]))
    checks = await verify_safely(helm(), ctx)
    assert [check.ok for check in checks] == [False, False, False]
    assert checks[2].observed == "checkout-1.5.0 app 2.4.0" and checks[2].expected == "checkout-1.4.0 app 2.3.1"


async def test_helm_failure_is_reported(fake_bin: FakeBin, ctx: ActionContext) -> None:
    fake_bin("helm", 'echo "Error: release: not found" >&2; exit 1')
    result = await run_safely(helm(), ctx)
    assert result.status == "failed" and "release: not found" in result.error


async def test_secret_printed_by_kubectl_is_masked(fake_bin: FakeBin, ctx: ActionContext, collected: Any) -> None:
    fake_bin("kubectl", f"echo 'token {CANARY}'; echo 'error: bad token {CANARY}' >&2; exit 1")
    result = await run_safely(kubectl(), ctx)
    checks = await verify_safely(kubectl(image="reg/x:1"), ctx)
    # what the session's record path (ctx.redactor) lets through to the journal, the screen and the report
    shown = ctx.redactor("\n".join([collected.text, result.error, *(check.observed for check in checks)]))
    assert CANARY not in shown and "bad token " + MASK in ctx.redactor(result.error)
    assert MASK in ctx.redactor(collected.text)
