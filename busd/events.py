"""Component: hands events raised by synchronous code to the durable event sink.

Rules and the alert board raise events from plain functions; the outbox's
``emit_event`` is a coroutine that returns once the record is on disk. This
queue sits between them. It is bounded, but far beyond what a day produces
(events are a few hundred a day): if it ever fills, the event is counted and
logged as an error, never dropped silently. On shutdown what is queued is
flushed before the outbox closes (this part stops before the outbox).

A disk that refuses the records is the one storage policy's (busd/storage.py):
the event in hand and the queue behind it wait, in order, and are retried with
back-off; nothing is lost, and a restart of this part keeps both.
"""

from __future__ import annotations

import asyncio
import functools

import structlog

from busd.clock import Clock
from busd.event_catalog import DailyReport, Event
from busd.ports import EventSink
from busd.storage import STORAGE_ERRORS, Report, StoragePolicy
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
        on_storage: Report | None = None,
    ) -> None:
        """``on_storage(reason)`` is told when the sink cannot store (None: it can again)."""
        self._sink = sink
        self._clock = clock
        self._storage = StoragePolicy("events", clock=clock, report=on_storage,
                                      backoff=Backoff(initial_s=1.0, max_s=30.0))
        self._queue: asyncio.Queue[Event | DailyReport] = asyncio.Queue(capacity)
        # Taken from the queue, not yet stored: kept across a cancelled retry or a restart.
        self._in_hand: Event | DailyReport | None = None
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
        return self._queue.qsize() + (self._in_hand is not None)

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        try:
            while True:
                if self._in_hand is None:
                    self._in_hand = await self._queue.get()
                item = self._in_hand
                # The disk may be full for a while: keep the event and try again, in order.
                await self._storage.until_written(functools.partial(self._send, item), ctx)
                self._in_hand = None
                self.forwarded += 1
                ctx.counters.update(forwarded=self.forwarded, dropped=self.dropped)
                ctx.beat()
        finally:
            # Stopping: flush what is queued (the outbox is still open; it stops after us).
            await asyncio.shield(self._flush_at_stop())

    async def _flush_at_stop(self) -> None:
        while self._in_hand is not None or not self._queue.empty():
            item = self._in_hand if self._in_hand is not None else self._queue.get_nowait()
            self._in_hand = item
            try:
                await self._send(item)
            except STORAGE_ERRORS as err:
                # No time left to wait for the disk: say exactly what is lost.
                log.error("events_unwritten_at_stop", error=str(err), lost=self.pending)
                return
            self._in_hand = None
            self.forwarded += 1
