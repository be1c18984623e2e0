"""The projected SOC curve of every plan the driver accepted, kept for the day's report.

The planner publishes each proposal (with the projection it promises, ``after``)
in its retained ``plan`` document, and says ``plan_accepted`` with the proposal's
id when the driver accepts it; that event carries no projection. This part sits
between the planner and its two outlets (the plan publisher and the event
emitter), remembers the projections of the proposals it has seen, and stores
the accepted one's points (time, SOC on arrival and on departure) so the report
can draw each accepted plan's curve against the SOC the bus really had.
Everything is passed on unchanged at once; the store is written by this
component's own loop from a bounded queue, so a slow or refusing disk never
gets in the planner's way (a refused write is logged and counted, a full
queue drops the curve and counts it: the plot loses a line, nothing else).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog

from busd.errors import StorageError
from busd.ports import EventEmitter, JsonObject, PlanPublisher
from busd.supervisor import ComponentContext

log = structlog.get_logger("busd.monitoring.plan_projections")

# Proposals remembered until accepted or forgotten (the planner makes a few a day).
_REMEMBERED = 32
_QUEUE = 64  # accepted curves waiting for the disk


class ProjectionStore(Protocol):
    def save_projection(self, day: str, proposal_id: str, accepted_ts: float,
                        points: list[tuple[float, float]]) -> None: ...


def projection_points(projection: JsonObject) -> list[tuple[float, float]]:
    """(unix time, SOC %) along a projection: now, then each stop's arrival and departure."""
    points: list[tuple[float, float]] = []
    ts, soc = projection.get("ts"), projection.get("soc")
    if isinstance(ts, str) and isinstance(soc, int | float):
        points.append((datetime.fromisoformat(ts).timestamp(), float(soc)))
    for point in projection.get("points") or []:
        if not isinstance(point, dict):
            continue
        for time_key, soc_key in (("eta", "soc_arrive"), ("etd", "soc_depart")):
            at, value = point.get(time_key), point.get(soc_key)
            if isinstance(at, str) and isinstance(value, int | float):
                points.append((datetime.fromisoformat(at).timestamp(), float(value)))
    return sorted(points)


class ProjectionRecorder:
    """Component ``monitoring.plan_projections``: the planner's plan publisher and event
    emitter, recording accepted projections."""

    name = "monitoring.plan_projections"
    critical = False

    def __init__(self, *, plan_sink: PlanPublisher, events: EventEmitter,
                 store: ProjectionStore, clock_now: Callable[[], float], timezone: str) -> None:
        self._plan_sink = plan_sink
        self._events = events
        self._store = store
        self._now = clock_now
        self._zone = ZoneInfo(timezone)
        self._proposals: OrderedDict[str, JsonObject] = OrderedDict()
        self._queue: asyncio.Queue[tuple[str, str, float, list[tuple[float, float]]]] = (
            asyncio.Queue(_QUEUE))
        self.failed = 0
        self.dropped = 0

    async def publish_plan(self, plan: JsonObject) -> None:
        pending = plan.get("pending")
        if isinstance(pending, dict) and isinstance(pending.get("id"), str):
            after = pending.get("after")
            if isinstance(after, dict):
                self._proposals[pending["id"]] = after
                while len(self._proposals) > _REMEMBERED:
                    self._proposals.popitem(last=False)
        await self._plan_sink.publish_plan(plan)

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        self._events.emit(kind, payload)
        if kind != "plan_accepted":
            return
        after = self._proposals.pop(str(payload.get("proposal_id")), None)
        if after is None:
            return
        now = self._now()
        day = datetime.fromtimestamp(now, self._zone).date().isoformat()
        try:
            self._queue.put_nowait((day, str(payload["proposal_id"]), now,
                                    projection_points(after)))
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("plan_projection_dropped", dropped=self.dropped)

    def report(self, kind: str, payload: dict[str, Any]) -> None:
        self._events.report(kind, payload)

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            day, pid, ts, points = await self._queue.get()
            try:
                await asyncio.to_thread(self._store.save_projection, day, pid, ts, points)
            except StorageError as err:
                self.failed += 1
                log.error("plan_projection_not_stored", proposal=pid, error=str(err),
                          failed=self.failed)
            ctx.counters["stored_failed"] = self.failed
            ctx.counters["dropped"] = self.dropped
            ctx.beat()
