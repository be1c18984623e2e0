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
from typing import Any

import structlog

from busd.ports import EventSink
from busd.supervisor import ComponentContext

log = structlog.get_logger("busd.events")


class EventForwarder:
    name = "events"
    critical = True

    def __init__(self, *, sink: EventSink, capacity: int = 10_000) -> None:
        self._sink = sink
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(capacity)
        self.dropped = 0
        self.forwarded = 0

    def forward(self, kind: str, data: dict[str, Any]) -> None:
        """Queue an event; safe to call from any code on the event loop."""
        try:
            self._queue.put_nowait((kind, data))
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("event_dropped", kind=kind, dropped=self.dropped)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        try:
            while True:
                kind, data = await self._queue.get()
                await self._sink.emit_event(kind, data)
                self.forwarded += 1
                ctx.counters.update(forwarded=self.forwarded, dropped=self.dropped)
                ctx.beat()
        finally:
            # Stopping: flush what is queued (the outbox is still open; it stops after us).
            while not self._queue.empty():
                kind, data = self._queue.get_nowait()
                await asyncio.shield(self._sink.emit_event(kind, data))
