"""Component: the staff page's counters, one per service type, and the activity toggle.

The visit is the tracker's: this is its subscriber (``on_event``), as the planner
is, so the driver's "now" and the counts change in the same step. A count or an
activity outside a visit at a site (the depot, on the road) is refused with
:class:`~busd.display.ports.NoVisit`.

Durability: a count is acknowledged only once the monitoring store holds it (a
refused write is the crew's "not saved, try again" and changes nothing). What
follows from the tracker's events (a visit's tally begun, its activity closed at
departure) cannot be refused to anyone: it is kept in memory and written by the
writer task under the one storage policy (busd/storage.py: degrade, report,
retry with back-off). On start, the tallies of today and yesterday are read back
before the component is ready, and it starts before the tracker, so a visit the
tracker resumes after a power cut resumes its counts and its running activity.

Every change is published (``service_counted``, ``activity_changed``); the
tracker's ``visit_ended`` carries the visit's totals (:meth:`at_end`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from busd.clock import Clock
from busd.config.services import ServicesConfig
from busd.display.ports import NoVisit, UnknownChoice, VisitCount
from busd.event_catalog import ActivityChanged, Event, ServiceCounted, VisitEnded, VisitStarted
from busd.ports import EventEmitter
from busd.services.tally import VisitTally
from busd.storage import STORAGE_ERRORS, Report, StoragePolicy
from busd.supervisor import Backoff, ComponentContext

log = structlog.get_logger("busd.services")


class TallyStore(Protocol):
    """What the counter needs from the monitoring store (blocking; called off the loop)."""

    def save_tally(self, tally: VisitTally, *, ts: float) -> None: ...

    def tallies(self, since_day: str) -> list[VisitTally]: ...


class CountNotStored(Exception):
    """The store refused the count: nothing changed, the crew tries again."""


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


class ServiceCounter:
    """Component ``services``: the tallies of the tracker's visits."""

    critical = False

    def __init__(
        self, *, config: ServicesConfig, store: TallyStore, clock: Clock, sink: EventEmitter,
        timezone: str, on_storage: Report | None = None, name: str = "services",
    ) -> None:
        self.name = name
        self.config = config
        self._store = store
        self._clock = clock
        self._sink = sink
        self._zone = ZoneInfo(timezone)
        self._storage = StoragePolicy("services", clock=clock, report=on_storage,
                                      backoff=Backoff(initial_s=5.0, max_s=60.0))
        self._tallies: dict[str, VisitTally] = {}
        self._unsaved: dict[str, VisitTally] = {}  # latest wins: bounded by the visits
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._current: str | None = None  # the visit at a site going on now
        self._place_names: dict[str, str | None] = {}

    # --- the component ----------------------------------------------------------------

    async def run(self, ctx: ComponentContext) -> None:
        since = (self._today() - dt.timedelta(days=1)).isoformat()
        loaded = await self._storage.until_written(
            functools.partial(asyncio.to_thread, self._store.tallies, since), ctx)
        for tally in loaded:
            self._tallies.setdefault(tally.visit_id, tally)
        ctx.ready()
        while True:
            await self._storage.next_write(self._dirty, ctx)
            # Under the lock the staff page's writes take: an older tally of a visit never
            # lands after a newer one.
            async with self._lock:
                await self._storage.attempt(self._write_unsaved, ctx)
            ctx.counters.update(unsaved=len(self._unsaved), visits=len(self._tallies))
            ctx.beat()

    async def _write_unsaved(self) -> None:
        for visit_id, tally in list(self._unsaved.items()):
            await asyncio.to_thread(self._store.save_tally, tally, ts=self._clock.now())
            if self._unsaved.get(visit_id) is tally:  # a newer one may have come meanwhile
                del self._unsaved[visit_id]

    def _keep(self, tally: VisitTally) -> None:
        self._tallies[tally.visit_id] = tally
        self._unsaved[tally.visit_id] = tally
        self._dirty.set()

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock.now(), self._zone).date()

    # --- the tracker's subscriber -----------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, VisitStarted):
            # Services are provided on a visit, not at the depot (nor somewhere unknown).
            if event.place_kind in (None, "depot"):
                self._current = None
                return
            self._current = event.id
            self._place_names[event.id] = event.place_name
            if event.id not in self._tallies:  # new; a resumed visit keeps its tally
                start = _epoch(event.start)
                first = self.config.start_activity if self.config.activities else None
                self._keep(VisitTally(
                    visit_id=event.id, day=event.day.isoformat(), place_id=event.place_id,
                    activity=first, since_ts=start if first else None))
            self._forget_old(event.day)
        elif isinstance(event, VisitEnded) and event.id == self._current:
            self._current = None
            tally = self._tallies.get(event.id)
            if tally is not None and tally.activity is not None:
                end = _epoch(event.end) if event.end else self._clock.now()
                closed = tally.closed(end)
                self._keep(closed)
                self._publish_activity(closed, previous=tally.activity, now=end)

    def _forget_old(self, day: dt.date) -> None:
        keep_from = (day - dt.timedelta(days=1)).isoformat()
        for visit_id in [v for v, t in self._tallies.items()
                         if t.day < keep_from and v not in self._unsaved]:
            del self._tallies[visit_id]
            self._place_names.pop(visit_id, None)

    def at_end(
        self, visit_id: str, end_ts: float,
    ) -> tuple[dict[str, int], dict[str, float]] | None:
        """What the tracker's ``visit_ended`` carries: counts per type (every configured type)
        and minutes per activity, closed at ``end_ts``; None for a visit not counted here."""
        tally = self._tallies.get(visit_id)
        if tally is None:
            return None
        counts = {t: tally.counts.get(t, 0) for t in self.config.types}
        counts.update({t: c for t, c in tally.counts.items() if t not in counts})
        return counts, tally.activity_min(end_ts)

    # --- the staff page's port ---------------------------------------------------------

    def current(self) -> VisitCount | None:
        if self._current is None:
            return None
        tally = self._tallies.get(self._current)
        if tally is None:
            return None
        now = self._clock.now()
        return VisitCount(
            tally.visit_id, tally.total, counts=dict(tally.counts), activity=tally.activity,
            activities_min=tally.activity_min(now), place_name=self._place_names.get(
                tally.visit_id))

    def day_total(self) -> int:
        today = self._today().isoformat()
        return sum(t.total for t in self._tallies.values() if t.day == today)

    def _visit(self) -> VisitTally:
        tally = self._tallies.get(self._current) if self._current is not None else None
        if tally is None:
            raise NoVisit("the bus is not on a visit")
        return tally

    async def increment(self, delta: int, service: str) -> int:
        """``delta`` (+1/-1) clients of ``service`` at the current visit, stored, published."""
        if service not in self.config.types:
            raise UnknownChoice(f"unknown service type {service!r}")
        if delta not in (1, -1):
            raise ValueError("delta must be 1 or -1")
        async with self._lock:
            before = self._visit()
            after = before.counted(service, delta)
            await self._store_now(after)
            count = after.counts[service]
            if after.counts != before.counts:
                self._sink.emit(ServiceCounted(
                    visit_id=after.visit_id, day=dt.date.fromisoformat(after.day),
                    place_id=after.place_id, service=service, delta=1 if delta > 0 else -1,
                    count=count, visit_total=after.total))
            log.info("service_counted", visit=after.visit_id, service=service, count=count)
            return count

    async def switch(self, activity: str | None) -> str | None:
        """The activity on site from now (None: none); stored, published."""
        if activity is not None and activity not in self.config.activities:
            raise UnknownChoice(f"unknown activity {activity!r}")
        async with self._lock:
            before = self._visit()
            if before.activity == activity:
                return activity
            now = self._clock.now()
            after = before.switched(activity, now)
            await self._store_now(after)
            self._publish_activity(after, previous=before.activity, now=now)
            log.info("activity_changed", visit=after.visit_id, activity=activity)
            return activity

    async def _store_now(self, tally: VisitTally) -> None:
        try:
            await asyncio.to_thread(self._store.save_tally, tally, ts=self._clock.now())
        except STORAGE_ERRORS as err:
            self._storage.refused(err)
            raise CountNotStored(str(err)) from err
        self._storage.wrote()
        self._tallies[tally.visit_id] = tally
        self._unsaved.pop(tally.visit_id, None)

    def _publish_activity(self, tally: VisitTally, *, previous: str | None, now: float) -> None:
        self._sink.emit(ActivityChanged(
            visit_id=tally.visit_id, day=dt.date.fromisoformat(tally.day),
            place_id=tally.place_id, activity=tally.activity, previous=previous,
            activities_min=tally.activity_min(now)))
