"""Component: deletes monitoring records past their retention, once a day.

The store holds vehicle data and counts only; keeping it for a bounded time
is still the rule (data protection section of the README). A disk that refuses
the delete (read-only) is the one storage policy's (busd/storage.py): degraded,
reported, and the purge retried in an hour (nothing to keep in memory: the
cutoff is computed again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from busd.clock import Clock
from busd.storage import Report, StoragePolicy
from busd.supervisor import ComponentContext

DAY_S = 86_400.0
RETRY_S = 3_600.0


class RetentionJob:
    name = "monitoring.retention"
    critical = False

    def __init__(
        self, *, clock: Clock, purge_before: Callable[[str], int], days: int, timezone: str,
        interval_s: float = DAY_S,
        on_storage: Report | None = None,
    ) -> None:
        self._storage = StoragePolicy("monitoring retention", clock=clock, report=on_storage)
        self._clock = clock
        self._purge_before = purge_before
        self._days = days
        self._zone = ZoneInfo(timezone)
        self._interval_s = interval_s

    def cutoff(self) -> str:
        today = datetime.fromtimestamp(self._clock.now(), self._zone).date()
        return (today - timedelta(days=self._days)).isoformat()

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            cutoff = self.cutoff()
            deleted = 0

            async def purge(cutoff: str = cutoff) -> None:
                nonlocal deleted
                deleted = await asyncio.to_thread(self._purge_before, cutoff)

            if not await self._storage.attempt(purge, ctx):
                ctx.log.warning("monitoring_retention_failed", before=cutoff,
                                error=self._storage.reason)
                await self._storage.wait(ctx, min(RETRY_S, self._interval_s))
                continue
            if deleted:
                ctx.log.info("monitoring_retention", before=cutoff, deleted=deleted)
            ctx.counters["deleted"] = ctx.counters.get("deleted", 0) + deleted
            await self._clock.sleep(self._interval_s)
