"""Component: why stops were shortened or skipped, noted from the driver's acceptances.

The daily summary lists each planned stop as served, shortened or skipped,
"with reasons". The reason is the planner's: when the driver accepts a
proposal, its ``plan_accepted`` event carries the changes and the reasons.
:class:`StopNotes` sits between the planner and the event forwarder: every
event passes through untouched, and an acceptance's shortened and skipped
stops are written to the monitoring store (off the loop, retried while the
disk refuses writes).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from busd.clock import Clock
from busd.errors import StorageError
from busd.event_catalog import DailyReport, Event, PlanAccepted
from busd.ports import EventEmitter
from busd.supervisor import Backoff, ComponentContext

log = structlog.get_logger("busd.monitoring.stop_notes")

STATUS_OF_CHANGE = {"shorten": "shortened", "skip": "skipped"}
Note = tuple[str, str, str, str, float]  # day, stop id, status, reason, ts


class NoteStore(Protocol):
    def note_stop(self, day: str, stop_id: str, status: str, reason: str, ts: float) -> None: ...


def notes_of(event: PlanAccepted, *, ts: float, zone: ZoneInfo) -> list[Note]:
    """The stop notes of one ``plan_accepted`` event (English reason: the report's)."""
    texts = [r.text.get("en") for r in event.reasons]
    reason = " ".join(t for t in texts[:2] if t) or f"planner: {event.proposal_kind}"
    day = datetime.fromtimestamp(ts, zone).date().isoformat()
    return [(day, c.stop, STATUS_OF_CHANGE[c.kind], reason, ts)
            for c in event.changes if c.kind in STATUS_OF_CHANGE and c.stop]


class StopNotes:
    """An :class:`EventEmitter` in front of ``downstream``, and the component that writes."""

    name = "monitoring.stop_notes"
    critical = False

    def __init__(
        self, *, downstream: EventEmitter, store: NoteStore, clock: Clock, timezone: str,
        on_storage: Callable[[str | None], None] | None = None, capacity: int = 1000,
    ) -> None:
        self._downstream = downstream
        self._store = store
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._on_storage = on_storage or (lambda _reason: None)
        self._queue: asyncio.Queue[list[Note]] = asyncio.Queue(capacity)
        self._backoff = Backoff(initial_s=5.0, max_s=60.0)
        self._rng = random.Random()
        self.dropped = 0

    def emit(self, event: Event) -> None:
        self._downstream.emit(event)
        if isinstance(event, PlanAccepted):
            notes = notes_of(event, ts=self._clock.now(), zone=self._zone)
            if notes:
                try:
                    self._queue.put_nowait(notes)
                except asyncio.QueueFull:  # a thousand acceptances unwritten: say so
                    self.dropped += 1
                    log.error("stop_notes_dropped", dropped=self.dropped)

    def report(self, report: DailyReport) -> None:
        self._downstream.report(report)

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            notes = await self._queue.get()
            failures = 0
            while True:
                try:
                    await asyncio.to_thread(self._write, notes)
                except StorageError as err:
                    failures += 1
                    self._on_storage(str(err))
                    await self._clock.sleep(self._backoff.delay(failures, self._rng))
                    continue
                self._on_storage(None)
                break
            ctx.beat()

    def _write(self, notes: list[Note]) -> None:
        for day, stop_id, status, reason, ts in notes:
            self._store.note_stop(day, stop_id, status, reason, ts)
