"""Every kubectl argv the adapter builds goes through the real kubectl's flag parser (no cluster can run here: a
kubeconfig points at a closed loopback port, so a well-formed command fails to connect and a malformed one fails
on its flags before any connection)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.adapters.kube import kubectl_change_argv, kubectl_images_argv, kubectl_status_argv
from rollback_tui.plan.actions import KubectlAction

KUBECTL = shutil.which("kubectl")
if KUBECTL is None and os.environ.get("CI") != "true":
    pytest.skip("kubectl is not installed (it is on the machine image CI runs on)", allow_module_level=True)

PARSER_ERRORS = ("unknown flag", "unknown shorthand", "unknown command", "required flag", "accepts ", "invalid argument",
                 "error: unknown", "flag needs an argument")

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: closed, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: nobody, user: {token: not-a-real-token}}]
contexts: [{name: rollback, context: {cluster: closed, user: nobody, namespace: default}}]
current-context: rollback
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def kubectl(argv: list[str]) -> tuple[int, str]:
    assert KUBECTL is not None, "kubectl must be on PATH in CI"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": str(Path(argv[2]).parent)})
    return done.returncode, done.stdout + done.stderr


def action(kubeconfig: Path, **fields: Any) -> KubectlAction:
    return KubectlAction.model_validate({"kind": "kubectl", "id": "k", "resource": "deployment/checkout",
                                         "namespace": "shop", "kubeconfig": str(kubeconfig), "context": "rollback",
                                         "timeout": 60, **fields})


def variants(kubeconfig: Path) -> list[list[str]]:
    undo = action(kubeconfig)
    return [kubectl_change_argv(undo), kubectl_change_argv(action(kubeconfig, to_revision=3)),
            kubectl_change_argv(action(kubeconfig, mode="set_image", image="registry/checkout:1.4.2")),
            kubectl_change_argv(action(kubeconfig, mode="set_image", container="web", image="registry/c:1.4.2")),
            kubectl_status_argv(undo), kubectl_images_argv(undo)]


def test_every_argv_the_adapter_builds_is_accepted_by_kubectls_parser(kubeconfig: Path) -> None:
    for argv in variants(kubeconfig):
        code, text = kubectl(argv)
        assert code != 0, (argv, text)  # nothing listens there
        assert not any(marker in text for marker in PARSER_ERRORS), (argv, text)
        assert "connection refused" in text or "127.0.0.1:1" in text, (argv, text)


def test_the_check_tells_a_malformed_argv_apart(kubeconfig: Path) -> None:
    argv = kubectl_change_argv(action(kubeconfig)) + ["--to-revison=3"]  # a typo the parser must refuse
    code, text = kubectl(argv)
    assert code != 0 and "unknown flag" in text and "connection refused" not in text, text
