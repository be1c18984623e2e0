"""The tracker is the one owner of the day's progress (arrival, departure, served).

The planner (and through it the display's stop list) and the display's clients
counter follow the tracker's visit events; nobody else judges a geofence. These
tests replay a bus step by step on a manual clock, calling the tracker once per
simulated second, and look at what every part says after each step.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from busd import signals as sig
from busd.clock import ManualClock
from busd.config import MonitoringConfig, PlannerConfig, ServicesConfig
from busd.display.ports import NoVisit
from busd.display.snapshot import SnapshotSettings, build_snapshot
from busd.monitoring.tracker import Tracker
from busd.plan import Plan, haversine_m
from busd.planner.component import Planner
from busd.planner.display_view import PlannerDisplayView
from busd.services.counter import ServiceCounter
from busd.state import VehicleState
from busd.supervisor import ComponentContext, ComponentHealth, Phase
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import DEPOT, ROZUPE, TURKI, CaptureSink, make_plan
from tests.support.wait import wait_until

RIGA = ZoneInfo("Europe/Riga")
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=RIGA).timestamp()


class OnePlan:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def plan_for(self, day: date) -> Plan | None:
        return self.plan if day == self.plan.date else None


class Day:
    """A tracker, the planner and the clients counter wired as busd/app.py wires them."""

    def __init__(self, tmp_path: Path, clock: ManualClock, store: MonitoringStore) -> None:
        self.clock, self.store = clock, store
        self.state = VehicleState(clock)
        self.plan = make_plan(stops=(ROZUPE, TURKI))
        self.office = CaptureSink()
        self.planner = Planner(config=PlannerConfig(), bus_id="sim-01", state=self.state,
                               clock=clock, plan_source=OnePlan(self.plan), plan_sink=self,
                               events=self.office)
        self.planner.core.load(self.plan, clock.now())
        self.clients = ServiceCounter(config=ServicesConfig(), store=store, clock=clock,
                                      sink=self.office, timezone="Europe/Riga")
        self.view = PlannerDisplayView(self.planner)
        self.tracker = Tracker(state=self.state, clock=clock, plan=self.plan, store=store,
                               sink=self.office, config=MonitoringConfig(min_visit_min=3.0),
                               subscribers=[self.planner, self.clients], services=self.clients)
        self.lat, self.lon, self.odo = DEPOT[2], DEPOT[3], 5000.0

    async def close(self) -> None:
        self.store.close()

    async def publish_plan(self, document: Any) -> None:  # the planner's PlanPublisher
        pass

    def snapshot(self) -> dict[str, Any]:
        return build_snapshot(now=self.clock.now(), views=self.state.snapshot(), alerts={},
                              health={}, plan=self.view.view(), uplink=None,
                              clients=self.clients.current(), settings=SnapshotSettings())

    async def step(self, speed: float) -> dict[str, Any]:
        up = self.state.update
        for name, value in ((sig.VEHICLE_SPEED, speed), (sig.VEHICLE_ODOMETER, self.odo),
                            (sig.GPS_FIX, "3d"), (sig.GPS_LAT, self.lat),
                            (sig.GPS_LON, self.lon), (sig.BATTERY_VOLTAGE, 400.0),
                            (sig.BATTERY_CURRENT, 10.0), (sig.BATTERY_SOC, 80.0)):
            up(name, value, source="test")
        await self.clock.advance(1.0)
        self.tracker.process()
        shot = self.snapshot()
        visit = self.tracker.day.visit  # what the tracker itself holds at this step
        shot["tracker"] = None if visit is None or visit.place is None else (
            visit.id, visit.place.id, visit.place.kind)
        return shot

    async def park(self, seconds: int) -> list[dict[str, Any]]:
        return [await self.step(0.0) for _ in range(seconds)]

    async def drive(
        self, to: tuple[str, str, float, float], kmh: float = 72.0,
    ) -> list[dict[str, Any]]:
        lat0, lon0 = self.lat, self.lon
        d = haversine_m(lat0, lon0, to[2], to[3])
        n = int(d / (kmh / 3.6))
        out = []
        for i in range(1, n + 1):
            self.lat, self.lon = lat0 + i / n * (to[2] - lat0), lon0 + i / n * (to[3] - lon0)
            self.odo += d / n / 1000
            out.append(await self.step(kmh))
        return out


def now_stops(snapshot: dict[str, Any]) -> list[str]:
    return [s["id"] for s in snapshot["plan"]["stops"] if s["status"] == "now"]


async def test_the_displays_now_and_the_clients_counter_agree_at_every_step(tmp_path: Path) -> None:
    clock = ManualClock(start=T0)
    day = Day(tmp_path, clock, MonitoringStore(tmp_path / "m.sqlite"))
    shots = [*await day.park(120), *await day.drive(ROZUPE), *await day.park(600),
             *await day.drive(TURKI), *await day.park(300)]
    seen_now: list[str] = []
    for shot in shots:
        here, visit = now_stops(shot), shot["tracker"]
        if here:
            # "now" on the display: the counter counts that very visit of the tracker.
            assert visit is not None and here == [visit[1]], shot
            assert shot["clients"] is not None and shot["clients"]["visit"] == visit[0], shot
            if not seen_now or seen_now[-1] != here[0]:
                seen_now.append(here[0])
        elif visit is not None and visit[2] == "stop":
            raise AssertionError(f"on a visit of a stop the display shows no 'now': {shot}")
        if shot["clients"] is not None:
            assert visit is not None and shot["clients"]["visit"] == visit[0], shot
        else:
            assert visit is None or visit[2] == "depot", shot
    assert seen_now == ["rozupe", "turki"]  # both arrivals happened, in order
    statuses = {s["id"]: s["status"] for s in shots[-1]["plan"]["stops"]}
    assert statuses == {"rozupe": "done", "turki": "now"}
    # The planner's served minutes run from the tracker's arrival, not its own guess.
    arrived = day.planner.core.progress.arrived
    assert day.tracker.day.visit is not None and arrived == day.tracker.day.visit.start.ts
    # Each visit reached the office exactly once.
    started = [e["place_id"] for e in day.office.of("visit_started")]
    assert started == ["livani", "rozupe", "turki"]
    await day.close()


async def test_no_visit_means_no_now_and_the_counter_refuses(tmp_path: Path) -> None:
    clock = ManualClock(start=T0)
    day = Day(tmp_path, clock, MonitoringStore(tmp_path / "m.sqlite"))
    await day.park(120)
    shots = await day.drive(ROZUPE)
    # Inside Rožupe's geofence but still rolling in: no visit yet, so nothing is "now".
    assert haversine_m(day.lat, day.lon, ROZUPE[2], ROZUPE[3]) < 150
    assert all(not now_stops(s) and s["clients"] is None for s in shots)
    try:
        await day.clients.increment(1, "other")
    except NoVisit:
        pass
    else:
        raise AssertionError("the counter counted outside a visit")
    shots = await day.park(3 * 60 + 1)
    assert now_stops(shots[-1]) == ["rozupe"] and shots[-1]["clients"] is not None
    assert await day.clients.increment(1, "other") == 1
    await day.close()


async def start(part: Tracker | ServiceCounter, clock: ManualClock) -> asyncio.Task[None]:
    health = ComponentHealth(part.name, False)
    task = asyncio.create_task(part.run(ComponentContext(health, clock)))
    await wait_until(lambda: health.phase is Phase.RUNNING, timeout=5, what="tracker ready")
    return task


async def test_after_a_restart_the_planner_and_the_counter_follow_the_resumed_visit(
    tmp_path: Path,
) -> None:
    clock = ManualClock(start=T0)
    path = tmp_path / "m.sqlite"
    first = Day(tmp_path, clock, MonitoringStore(path))
    await first.park(120)
    await first.drive(ROZUPE)
    await first.park(300)
    visit = first.tracker.day.visit
    assert visit is not None and visit.place is not None and visit.place.id == "rozupe"
    await first.clients.increment(1, "notary")
    await first.clients.increment(1, "social")
    tasks = [await start(first.clients, clock), await start(first.tracker, clock)]
    for task in tasks:  # the tracker's writer stores the open visit on stop
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await first.close()

    await clock.advance(120.0)  # busd was down for two minutes
    again = Day(tmp_path, clock, MonitoringStore(path))
    again.lat, again.lon, again.odo = first.lat, first.lon, first.odo
    # Started as busd/app.py starts them: the counter (its tallies read back) first.
    counter = await start(again.clients, clock)
    task = await start(again.tracker, clock)
    try:
        # Told on start, before any sample: where the bus is, and since when.
        progress = again.planner.core.progress
        assert progress.at == "rozupe" and progress.arrived == visit.start.ts
        assert now_stops(again.snapshot()) == ["rozupe"]
        count = again.clients.current()
        assert count is not None and count.visit_id == visit.id
        assert (count.count, dict(count.counts)) == (2, {"notary": 1, "social": 1})
        # The visit that resumed ends: its visit_ended carries every type's count.
        await again.drive(TURKI)
        ended = again.office.of("visit_ended")
        assert [e["place_id"] for e in ended] == ["rozupe"]
        assert ended[0]["services"] == {"municipal": 0, "social": 1, "notary": 1,
                                        "orphans_court": 0, "library": 0, "other": 0}
    finally:
        for running in (task, counter):
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert again.office.of("visit_started") == []  # the office heard of it from the first run
    await again.close()
