"""Component: why stops were shortened or skipped, noted from the driver's acceptances.

The daily summary lists each planned stop as served, shortened or skipped,
"with reasons". The reason is the planner's: when the driver accepts a
proposal, its ``plan_accepted`` event carries the changes and the reasons.
:class:`StopNotes` is a subscriber of the planner (:class:`~busd.ports.EventSubscriber`:
the planner hands it each event after queuing it for the office), and an
acceptance's shortened and skipped stops are written to the monitoring store
(off the loop; while the disk refuses writes, the one storage policy of
busd/storage.py keeps them queued, degrades, reports and retries with back-off).
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from busd.clock import Clock
from busd.event_catalog import Event, PlanAccepted
from busd.storage import Report, StoragePolicy
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
    """The planner's subscriber, and the component that writes the notes."""

    name = "monitoring.stop_notes"
    critical = False

    def __init__(
        self, *, store: NoteStore, clock: Clock, timezone: str,
        on_storage: Report | None = None, capacity: int = 1000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        # Bounded; past it the newest acceptance's notes are dropped, counted and logged.
        self._queue: asyncio.Queue[list[Note]] = asyncio.Queue(capacity)
        self._storage = StoragePolicy("stop notes", clock=clock, report=on_storage,
                                      backoff=Backoff(initial_s=5.0, max_s=60.0))
        self._in_hand: list[Note] | None = None  # taken from the queue, not yet written
        self.dropped = 0

    def on_event(self, event: Event) -> None:
        if isinstance(event, PlanAccepted):
            notes = notes_of(event, ts=self._clock.now(), zone=self._zone)
            if notes:
                try:
                    self._queue.put_nowait(notes)
                except asyncio.QueueFull:  # a thousand acceptances unwritten: say so
                    self.dropped += 1
                    log.error("stop_notes_dropped", dropped=self.dropped)

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            if self._in_hand is None:
                self._in_hand = await self._queue.get()
            notes = self._in_hand
            await self._storage.until_written(
                functools.partial(asyncio.to_thread, self._write, notes), ctx)
            self._in_hand = None
            ctx.counters.update(written=ctx.counters.get("written", 0) + 1,
                                dropped=self.dropped)
            ctx.beat()

    def _write(self, notes: list[Note]) -> None:
        for day, stop_id, status, reason, ts in notes:
            self._store.note_stop(day, stop_id, status, reason, ts)
