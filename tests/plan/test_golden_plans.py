"""The rendered Rollback Plan of each sample is a golden file (UPDATE_GOLDEN=1 rewrites them after review)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollback_tui.plan.loader import load_plan
from rollback_tui.review.render import render_plan
from rollback_tui.secrets import SecretStore

ROOT = Path(__file__).parents[2]
GOLDEN = Path(__file__).parent / "golden"
VARIABLES = {"sandbox": "/srv/sandbox", "web_port": "18080", "ssh_port": "18022", "hook_port": "18081"}


@pytest.mark.parametrize("name", ["demo", "k8s-postgres-unleash", "ssh-fleet"])
async def test_rendered_plan_matches_golden_file(name: str, tmp_path: Path) -> None:
    loaded = load_plan(ROOT / "sample_plans" / f"{name}.yaml", VARIABLES)
    markdown = await render_plan(loaded.plan, SecretStore(loaded.plan.secrets), tmp_path)
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(markdown)
    assert markdown == golden.read_text(), f"rendered plan changed; review, then UPDATE_GOLDEN=1 pytest {__file__}"
    for section in ("## Rollback scope", "## Rollback approach", "## Rollback order", "## Steps to be executed",
                    "## Risks and unknowns", "## Validation points"):
        assert section in markdown
