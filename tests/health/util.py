"""Helpers the health tests share: an event collector, a plan builder, a polling wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rollback_tui.record.events import EventBase, HealthChanged
from rollback_tui.plan.models import Plan


class Events:
    """Collects emitted events; tests await conditions on them instead of sleeping."""

    def __init__(self) -> None:
        self.items: list[EventBase] = []
        self._changed = asyncio.Event()

    def __call__(self, event: EventBase) -> None:
        self.items.append(event)
        self._changed.set()

    def of(self, kind: type, probe: str | None = None) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind) and (probe is None or getattr(e, "probe", None) == probe)]

    def changes(self, probe: str) -> list[tuple[str, str]]:
        return [(e.old, e.new) for e in self.of(HealthChanged, probe)]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if result:
                    return result
                self._changed.clear()
                await self._changed.wait()

    async def wait_state(self, probe: str, state: str, timeout: float = 15.0) -> HealthChanged:
        count = len(self.of(HealthChanged, probe))

        def reached() -> HealthChanged | None:
            for event in self.of(HealthChanged, probe)[count:]:
                if event.new == state:
                    return event
            return None

        return await self.wait_for(reached, timeout)


def make_plan(health: list[dict[str, Any]] | None = None, **extra: Any) -> Plan:
    """A minimal valid plan with these probes under `health:`."""
    data: dict[str, Any] = {
        "metadata": {"name": "health-test"},
        "rollback": {"scope": ["code"]},
        "steps": [{"id": "validate"}],
        "health": health or [],
    }
    data.update(extra)
    return Plan.model_validate(data)


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, step: float = 0.01) -> Any:
    """Poll a condition that no event announces (server hit counters)."""
    async with asyncio.timeout(timeout):
        while not (result := predicate()):
            await asyncio.sleep(step)
        return result
