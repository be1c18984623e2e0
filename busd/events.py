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
from typing import Any

import structlog

from busd.clock import Clock
from busd.errors import StorageError
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
        # (is_report, kind, data)
        self._queue: asyncio.Queue[tuple[bool, str, dict[str, Any]]] = asyncio.Queue(capacity)
        self.dropped = 0
        self.forwarded = 0

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Queue an event; safe to call from any code on the event loop."""
        self._put(False, kind, data)

    forward = emit

    def report(self, kind: str, data: dict[str, Any]) -> None:
        """Queue a report (``report/{kind}``)."""
        self._put(True, kind, data)

    def _put(self, is_report: bool, kind: str, data: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((is_report, kind, data))
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("event_dropped", kind=kind, dropped=self.dropped)

    async def _send(self, is_report: bool, kind: str, data: dict[str, Any]) -> None:
        if is_report:
            await self._sink.emit_report(kind, data)
        else:
            await self._sink.emit_event(kind, data)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _send_until_stored(self, item: tuple[bool, str, dict[str, Any]],
                                 ctx: ComponentContext) -> None:
        """The disk may be full for a while: keep the event and try again, in order."""
        failures = 0
        while True:
            try:
                await self._send(*item)
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
                await asyncio.shield(self._send(*self._queue.get_nowait()))
