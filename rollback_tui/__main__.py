"""Allow `python -m rollback_tui`."""

from __future__ import annotations

from rollback_tui.cli import main

raise SystemExit(main())
