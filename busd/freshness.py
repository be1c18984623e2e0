"""Component: tells watchers when signals go stale.

Staleness is computed on every read anyway; this sweep exists because a
silent source sends nothing to react to, and consumers that wait for changes
(the uplink's state snapshot, the display) must still learn of it.
"""

from __future__ import annotations

from busd.clock import Clock
from busd.state import VehicleState
from busd.supervisor import ComponentContext


class FreshnessMonitor:
    name = "freshness"
    critical = True

    def __init__(self, *, state: VehicleState, clock: Clock, interval_s: float = 0.5) -> None:
        self._state = state
        self._clock = clock
        self._interval_s = interval_s

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            await self._clock.sleep(self._interval_s)
            stale = sum(1 for view in self._state.snapshot().values() if view.stale)
            self._state.check_freshness()
            ctx.counters["stale_signals"] = stale
            ctx.beat()
