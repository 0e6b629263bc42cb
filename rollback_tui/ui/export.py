"""'Export report' from the command palette: the session so far rendered as markdown next to its journal."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def _events(driver: Any, report_info: dict[str, Any]) -> tuple[list[Any], Path]:
    events = getattr(driver, "events", None)
    journal = report_info.get("journal") or getattr(driver, "path", None)
    if journal:
        from rollback_tui.record.journal import read_journal

        return list(read_journal(Path(journal), light=True).events), Path(journal)
    if events:
        return list(events), Path.cwd() / "rollback-replay"
    raise RuntimeError("no journal or recorded events to export yet")


def export_session(driver: Any, report_info: dict[str, Any]) -> Path:
    """Render every event so far with the report renderer; returns the path written (mode 0600)."""
    from rollback_tui.report.render import render_report

    events, base = _events(driver, report_info)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = base.name.removesuffix(".jsonl").removesuffix(".journal")
    path = base.with_name(f"{name}.export-{stamp}.md")
    text = render_report(events)
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    return path
