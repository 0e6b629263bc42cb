"""rollback-tui: a terminal cockpit that drives a production rollback and signs the record."""

from __future__ import annotations

__version__ = "0.1.0"
