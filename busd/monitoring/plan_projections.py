"""The projected SOC curve of every plan the driver accepted, kept for the day's report.

The planner publishes each proposal (with the projection it promises, ``after``)
in its retained plan document, and says ``plan_accepted`` with the proposal's id
when the driver accepts it; that event carries no projection. This part is the
planner's plan publisher (it passes every document on, unchanged and at once)
and one of its event subscribers: it remembers the projections of the proposals
it has seen and stores the accepted one's points (time, SOC on arrival and on
departure), so the report can draw each accepted plan's curve against the SOC
the bus really had. The store is written by this component's own loop from a
bounded backlog under the one storage policy (busd/storage.py): a refusing disk
degrades it and is retried, never in the planner's way; a backlog that overflows
drops the oldest curve, counted (the plot loses a line, nothing else).
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from busd.clock import Clock
from busd.event_catalog import Event, PlanAccepted, PlanDocument, ProjectionDoc
from busd.ports import PlanPublisher
from busd.storage import Backlog, Report, StoragePolicy
from busd.supervisor import ComponentContext

# Proposals remembered until accepted or forgotten (the planner makes a few a day).
_REMEMBERED = 32
_BACKLOG = 64  # accepted curves waiting for the disk

Curve = tuple[str, str, float, list[tuple[float, float]]]  # day, proposal id, ts, points


class ProjectionStore(Protocol):
    def save_projection(self, day: str, proposal_id: str, accepted_ts: float,
                        points: list[tuple[float, float]]) -> None: ...


def projection_points(projection: ProjectionDoc) -> list[tuple[float, float]]:
    """(unix time, SOC %) along a projection: now, then each stop's arrival and departure."""
    points = [(datetime.fromisoformat(projection.ts).timestamp(), projection.soc)]
    for point in projection.points:
        points.append((datetime.fromisoformat(point.eta).timestamp(), point.soc_arrive))
        points.append((datetime.fromisoformat(point.etd).timestamp(), point.soc_depart))
    return sorted(points)


class ProjectionRecorder:
    """Component ``monitoring.plan_projections``: the planner's plan publisher and an event
    subscriber, recording accepted projections."""

    name = "monitoring.plan_projections"
    critical = False

    def __init__(self, *, plan_sink: PlanPublisher, store: ProjectionStore, clock: Clock,
                 timezone: str, on_storage: Report | None = None) -> None:
        self._plan_sink = plan_sink
        self._store = store
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._proposals: OrderedDict[str, ProjectionDoc] = OrderedDict()
        self._curves: Backlog[Curve] = Backlog(self.name, _BACKLOG)
        self._wanted = asyncio.Event()
        self._storage = StoragePolicy("plan projections", clock=clock, report=on_storage)

    @property
    def dropped(self) -> int:
        return self._curves.dropped

    async def publish_plan(self, document: PlanDocument) -> None:
        if document.pending is not None:
            self._proposals[document.pending.id] = document.pending.after
            while len(self._proposals) > _REMEMBERED:
                self._proposals.popitem(last=False)
        await self._plan_sink.publish_plan(document)

    def on_event(self, event: Event) -> None:
        if not isinstance(event, PlanAccepted):
            return
        after = self._proposals.pop(event.proposal_id, None)
        if after is None:
            return
        now = self._clock.now()
        day = datetime.fromtimestamp(now, self._zone).date().isoformat()
        self._curves.append((day, event.proposal_id, now, projection_points(after)))
        self._wanted.set()

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            curves = self._curves.take()
            while curves:
                day, pid, ts, points = curves[0]
                save = functools.partial(
                    asyncio.to_thread, self._store.save_projection, day, pid, ts, points)
                if await self._storage.attempt(save, ctx):
                    curves.pop(0)
                    continue
                # Refused: keep the rest (oldest first) and wait the back-off, beating.
                rest, curves = [*curves, *self._curves.take()], []
                self._curves.extend(rest)
                await self._storage.wait(ctx)
                self._wanted.set()
            ctx.counters["dropped"] = self.dropped
            ctx.beat()
