"""Component: hands events raised by synchronous code to the durable event sink.

Rules and the alert board raise events from plain functions; the outbox's
``emit_event`` is a coroutine that returns once the record is on disk. This
queue sits between them. It is bounded, but far beyond what a day produces
(events are a few hundred a day): if it ever fills, the event is counted and
logged as an error, never dropped silently. On shutdown what is queued is
flushed before the outbox closes (this part stops before the outbox).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import structlog

from busd.clock import Clock
from busd.errors import StorageError
from busd.event_catalog import DailyReport, Event
from busd.ports import EventSink
from busd.supervisor import Backoff, ComponentContext

log = structlog.get_logger("busd.events")


class EventForwarder:
    name = "events"
    # Not critical: it is idle (and beats not) while nothing happens; a failure
    # is restarted by the supervisor and the queue, owned by this object, keeps
    # what waited.
    critical = False

    def __init__(
        self, *, sink: EventSink, clock: Clock, capacity: int = 10_000,
        on_storage: Callable[[str | None], None] | None = None,
    ) -> None:
        """``on_storage(reason)`` is told when the sink cannot store (None: it can again)."""
        self._sink = sink
        self._clock = clock
        self.on_storage: Callable[[str | None], None] = on_storage or (lambda _reason: None)
        self._backoff = Backoff(initial_s=1.0, max_s=30.0)
        self._rng = random.Random()
        self._queue: asyncio.Queue[Event | DailyReport] = asyncio.Queue(capacity)
        self.dropped = 0
        self.forwarded = 0

    def emit(self, event: Event) -> None:
        """Queue an event; safe to call from any code on the event loop."""
        self._put(event)

    forward = emit

    def report(self, report: DailyReport) -> None:
        """Queue a report (``report/{kind}``)."""
        self._put(report)

    def _put(self, item: Event | DailyReport) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("event_dropped", kind=item.kind, dropped=self.dropped)

    async def _send(self, item: Event | DailyReport) -> None:
        if isinstance(item, DailyReport):
            await self._sink.emit_report(item)
        else:
            await self._sink.emit_event(item)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _send_until_stored(self, item: Event | DailyReport,
                                 ctx: ComponentContext) -> None:
        """The disk may be full for a while: keep the event and try again, in order."""
        failures = 0
        while True:
            try:
                await self._send(item)
            except StorageError as err:
                failures += 1
                if failures == 1:
                    self.on_storage(str(err))
                    ctx.degraded(f"events wait for storage: {err}")
                await self._clock.sleep(self._backoff.delay(failures, self._rng))
                continue
            if failures:
                self.on_storage(None)
                ctx.ready()
            return

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        try:
            while True:
                item = await self._queue.get()
                await self._send_until_stored(item, ctx)
                self.forwarded += 1
                ctx.counters.update(forwarded=self.forwarded, dropped=self.dropped)
                ctx.beat()
        finally:
            # Stopping: flush what is queued (the outbox is still open; it stops after us).
            while not self._queue.empty():
                await asyncio.shield(self._send(self._queue.get_nowait()))
