"""Component: the daily summary at a configured local time, and at shutdown.

The schedule is APScheduler's :class:`CronTrigger` (time zone and DST rules
included); the waiting is done on the injected clock rather than by an
APScheduler scheduler, so that a simulated day at 300x fires its summary at
*simulated* 21:00 and a test can step through midnight with a ManualClock.
A run that comes late (the loop was stalled past the next fire time) skips the
missed one and counts it. At shutdown the summary of the current day is made
if that day has records and has not been summarised yet. The report goes to
the office even when the disk refuses to store the summary; storing it is
retried every ``SAVE_RETRY_S`` until the disk takes it (the one storage policy
of busd/storage.py: degraded and reported meanwhile; at most ``UNSAVED_MAX``
days are kept, the oldest dropped beyond, counted and logged).

A day is summarised once it is over: if the bus is still out at the set time
(a winter day with a charging stop comes home late), the summary waits until
it is back at the depot, checking every ``recheck_s``, at the latest until the
day's local midnight. A summary made while the last legs were still being
driven would tell the office a day shorter than the one the bus had.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from apscheduler.triggers.cron import CronTrigger

from busd.clock import Clock, utc_iso
from busd.event_catalog import DailyReport
from busd.monitoring.summary import daily_summary
from busd.ports import EventEmitter
from busd.storage import Report, StoragePolicy
from busd.supervisor import ComponentContext

AlertCount = Callable[[date], int]
LATE_AFTER_S = 300.0
SAVE_RETRY_S = 60.0
UNSAVED_MAX = 31  # a month of summaries waiting for the disk; each is already published

log = structlog.get_logger("busd.monitoring.daily")


class SummaryStore(Protocol):
    async def day_records(self, day: str) -> dict[str, list[dict[str, Any]]]: ...

    async def save_summary(
        self, day: str, summary: dict[str, Any], alerts: int, created_ts: float
    ) -> None: ...


class DailySummaryJob:
    """Component ``monitoring.daily``; publishes ``report.daily`` on the sink."""

    critical = False

    def __init__(
        self,
        *,
        clock: Clock,
        store: SummaryStore,
        sink: EventEmitter,
        at: time,
        timezone: str,
        alert_count: AlertCount | None = None,
        bus_out: Callable[[], bool] | None = None,
        recheck_s: float = 60.0,
        bus_id: str = "",
        name: str = "monitoring.daily",
        on_storage: Report | None = None,
    ) -> None:
        self.name = name
        self._storage = StoragePolicy("daily summary", clock=clock, report=on_storage)
        self._ctx: ComponentContext | None = None
        self.unsaved_dropped = 0
        # Summaries made and published but not yet stored: day -> (summary, alerts, ts).
        self.unsaved: dict[str, tuple[dict[str, Any], int, float]] = {}
        self._clock = clock
        self._store = store
        self._sink = sink
        self._zone = ZoneInfo(timezone)
        self._trigger = CronTrigger(
            hour=at.hour, minute=at.minute, second=at.second, timezone=self._zone
        )
        self._alert_count = alert_count or (lambda _day: 0)
        self._bus_out = bus_out or (lambda: False)  # True while the day is not over
        self._recheck_s = recheck_s
        self._bus_id = bus_id
        self.done: set[str] = set()
        self.skipped = 0

    def next_fire(self, after_ts: float) -> float:
        now = datetime.fromtimestamp(after_ts, self._zone)
        fire = self._trigger.get_next_fire_time(None, now)
        assert fire is not None
        return float(fire.timestamp())  # the trigger is untyped (apscheduler)

    def local_day(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self._zone).date().isoformat()

    async def run(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        ctx.ready()
        try:
            while True:
                fire = self.next_fire(self._clock.now())
                if self.unsaved:
                    await self._clock.sleep(min(fire - self._clock.now(), SAVE_RETRY_S))
                    await self._save_unsaved()
                    if self._clock.now() < fire:
                        continue
                else:
                    await self._clock.sleep(fire - self._clock.now())
                late = self._clock.now() - fire
                if late > LATE_AFTER_S:
                    self.skipped += 1
                    ctx.counters["skipped"] = self.skipped
                    ctx.log.warning("daily_summary_late", late_s=round(late))
                await self._day_over(fire, ctx)
                await self.produce(self.local_day(fire))
                ctx.counters["summaries"] = len(self.done)
                ctx.beat()
        finally:
            today = self.local_day(self._clock.now())
            if today not in self.done:
                records = await self._store.day_records(today)
                if any(records.get(k) for k in ("leg", "visit", "charge")):
                    await self.produce(today, records=records)

    async def _day_over(self, fire: float, ctx: ComponentContext) -> None:
        """Wait while the bus is out, at most until the local midnight after ``fire``."""
        if not self._bus_out():
            return
        day = datetime.fromtimestamp(fire, self._zone).date()
        midnight = datetime.combine(day + timedelta(days=1), time(0), self._zone).timestamp()
        ctx.log.info("daily_summary_waits", reason="the bus is still out", until=utc_iso(midnight))
        while self._bus_out() and self._clock.now() < midnight:
            await self._clock.sleep(min(self._recheck_s, midnight - self._clock.now()))
            ctx.beat()

    async def produce(
        self, day: str, *, records: dict[str, list[dict[str, Any]]] | None = None
    ) -> dict[str, Any]:
        """Make, store and publish the summary of ``day`` (``YYYY-MM-DD``)."""
        if records is None:
            records = await self._store.day_records(day)
        alerts = self._alert_count(date.fromisoformat(day))
        summary = daily_summary(day, records, alerts=alerts)
        now = self._clock.now()
        summary["created"] = utc_iso(now)
        self.unsaved[day] = (summary, alerts, now)
        while len(self.unsaved) > UNSAVED_MAX:
            oldest = min(self.unsaved)
            del self.unsaved[oldest]
            self.unsaved_dropped += 1
            log.error("daily_summary_not_stored", day=oldest, dropped=self.unsaved_dropped)
        await self._save_unsaved()  # stored before it is published, when the disk allows
        # The report's data is the summary itself (the envelope names the bus).
        self._sink.report(DailyReport.model_validate(summary))
        self.done.add(day)
        return summary

    async def _save_unsaved(self) -> bool:
        """Store the summaries the disk refused before; False while it still refuses."""
        for day, (summary, alerts, ts) in sorted(self.unsaved.items()):
            if not await self._storage.attempt(
                lambda: self._store.save_summary(day, summary, alerts, ts),  # noqa: B023
                self._ctx,
            ):
                return False
            del self.unsaved[day]
        return True
