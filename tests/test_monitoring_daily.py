"""The daily summary waits for the day to be over: a bus still out at the set time.

A winter day with a charging stop came home at 18:30; the summary at 17:30
told the office a day 16 km short (issue 7).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from busd.clock import ManualClock
from busd.monitoring.daily import DailySummaryJob
from busd.supervisor import ComponentContext, ComponentHealth
from tests.monitoring_helpers import DEPOT, ROZUPE, CaptureSink
from tests.support.wait import wait_until
from tests.test_monitoring_segment import Script, run

RIGA = ZoneInfo("Europe/Riga")


class Records:
    """A summary store with one leg, and whatever ``legs`` adds later."""

    def __init__(self) -> None:
        self.legs: list[dict[str, Any]] = [
            {"id": "leg-1", "day": "2026-01-01", "status": "closed", "km": 19.0,
             "start_ts": 0.0, "end_ts": 1.0, "duration_min": 20.0}]
        self.saved: list[str] = []

    async def day_records(self, day: str) -> dict[str, list[dict[str, Any]]]:
        legs = [dict(r) for r in self.legs if r["day"] == day]
        return {"leg": legs, "visit": [], "charge": []}

    async def save_summary(self, day: str, summary: dict[str, Any], alerts: int,
                           created_ts: float) -> None:
        self.saved.append(day)


async def started(job: DailySummaryJob, clock: ManualClock) -> asyncio.Task[None]:
    task = asyncio.create_task(job.run(ComponentContext(ComponentHealth(job.name, False), clock)))
    await wait_until(lambda: clock.sleepers > 0, timeout=5, what="the job waiting on the clock",
                     interval=0)
    return task


async def test_the_summary_waits_until_the_bus_is_back_at_the_depot() -> None:
    clock = ManualClock(start=datetime(2026, 1, 1, 17, 0, tzinfo=RIGA).timestamp())
    store, sink = Records(), CaptureSink()
    out = True
    job = DailySummaryJob(clock=clock, store=store, sink=sink, at=time(17, 30),
                          timezone="Europe/Riga", bus_out=lambda: out, recheck_s=60.0)
    task = await started(job, clock)
    try:
        await clock.advance(90 * 60)  # 18:30: an hour past the set time, still on its way
        assert sink.of("report.daily") == []
        store.legs.append({"id": "leg-2", "day": "2026-01-01", "status": "closed", "km": 16.0,
                           "start_ts": 2.0, "end_ts": 3.0, "duration_min": 16.0})
        out = False  # back at the depot
        await clock.advance(60)
        await wait_until(lambda: bool(sink.of("report.daily")), timeout=5, what="the summary")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    (report,) = sink.of("report.daily")
    assert report["km"] == 35.0  # both legs: the whole day
    created = datetime.fromisoformat(report["created"]).astimezone(RIGA)
    assert created.time() == time(18, 31)


async def test_a_bus_still_out_at_midnight_gets_its_summary_then() -> None:
    clock = ManualClock(start=datetime(2026, 1, 1, 17, 0, tzinfo=RIGA).timestamp())
    store, sink = Records(), CaptureSink()
    job = DailySummaryJob(clock=clock, store=store, sink=sink, at=time(21, 0),
                          timezone="Europe/Riga", bus_out=lambda: True, recheck_s=600.0)
    task = await started(job, clock)
    try:
        await clock.advance(6 * 3600 + 59 * 60)  # 23:59
        assert sink.of("report.daily") == []
        await clock.advance(60)
        await wait_until(lambda: bool(sink.of("report.daily")), timeout=5, what="the summary")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    (report,) = sink.of("report.daily")
    assert report["day"] == "2026-01-01"
    created = datetime.fromisoformat(report["created"]).astimezone(RIGA)
    assert created == datetime(2026, 1, 2, 0, 0, tzinfo=RIGA)


def test_the_bus_is_out_on_a_leg_or_a_visit_but_not_at_the_depot() -> None:
    day, _ = run(Script().park(300))
    assert not day.away  # at the depot, the day not begun
    day, _ = run(Script().park(300).drive(ROZUPE))
    assert day.away  # on the road
    day, _ = run(Script().park(300).drive(ROZUPE).park(600))
    assert day.away  # at a stop
    day, _ = run(Script().park(300).drive(ROZUPE).park(600).drive(DEPOT).park(300))
    assert not day.away  # home
