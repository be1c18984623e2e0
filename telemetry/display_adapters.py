"""The display's ports, implemented on the real uplink, outbox, tracker events and store.

Reads here run about once a second on the event loop, so they only look at
values in memory; the one write (the clients-served counter) goes to SQLite
off the loop.
"""

from __future__ import annotations

import asyncio

from busd.clock import Clock
from busd.display.ports import NoVisit, UplinkStatus, VisitCount
from busd.event_catalog import Event, VisitEnded, VisitStarted
from telemetry.monitoring_store import MonitoringStore
from telemetry.outbox import Outbox
from telemetry.uplink import Uplink


class UplinkStatusAdapter:
    def __init__(self, *, uplink: Uplink, outbox: Outbox) -> None:
        self._uplink = uplink
        self._outbox = outbox

    def status(self) -> UplinkStatus:
        return UplinkStatus(connected=self._uplink.connected, backlog=self._outbox.rows)


class ClientsServed:
    """The +1/−1 counter of the current visit, kept with the visit in the monitoring store.

    The visit is the tracker's: this is its subscriber (``on_event``), as the planner is,
    so the display's "now" (the planner's) and this counter change in the same step.
    """

    def __init__(self, *, store: MonitoringStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._loading: set[str] = set()
        self._lock = asyncio.Lock()
        self._current: tuple[str, str] | None = None  # visit id, its local day

    def on_event(self, event: Event) -> None:
        if isinstance(event, VisitStarted):
            # Clients are served on a visit, not at the depot (nor somewhere unknown).
            at_site = event.place_kind not in (None, "depot")
            self._current = (event.id, event.day.isoformat()) if at_site else None
        elif isinstance(event, VisitEnded) and self._current is not None \
                and self._current[0] == event.id:
            self._current = None

    def _visit(self) -> tuple[str, str] | None:
        return self._current

    def current(self) -> VisitCount | None:
        found = self._visit()
        if found is None:
            return None
        visit_id, _ = found
        if visit_id not in self._counts and visit_id not in self._loading:
            # After a restart mid-visit the count is in the store: fetch it off the loop.
            self._loading.add(visit_id)
            asyncio.get_running_loop().create_task(self._load(visit_id))
        return VisitCount(visit_id, self._counts.get(visit_id, 0))

    async def _load(self, visit_id: str) -> None:
        try:
            count = await asyncio.to_thread(self._store.clients_served, visit_id)
            self._counts.setdefault(visit_id, count)
        finally:
            self._loading.discard(visit_id)

    async def increment(self, delta: int) -> int:
        async with self._lock:
            found = self._visit()
            if found is None:
                raise NoVisit("the bus is not on a visit")
            visit_id, day = found
            if visit_id not in self._counts:
                self._counts[visit_id] = await asyncio.to_thread(
                    self._store.clients_served, visit_id)
            count = max(0, self._counts[visit_id] + delta)
            await asyncio.to_thread(self._store.set_clients_served, visit_id=visit_id, day=day,
                                    count=count, ts=self._clock.now())
            self._counts[visit_id] = count
            return count
