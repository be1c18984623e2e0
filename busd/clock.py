"""Injected time.

Every piece of logic that needs the time takes a :class:`Clock` instead of
calling :mod:`time` or :func:`asyncio.sleep` itself, so that a whole operating
day can be simulated in seconds (:class:`ScaledClock`) or stepped by hand in a
test (:class:`ManualClock`).

``now()`` is wall time (UTC seconds since the epoch) for timestamps that leave
the bus; ``monotonic()`` is for ages and intervals. The two differ on purpose:
the onboard computer often has no RTC, so its wall clock jumps when GPS or NTP
sets it, and a jump must not make every signal look stale or fresh at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, UTC seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


def utc_iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds, as every payload carries it."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Real time running ``speed`` times faster, from a chosen start.

    Used by accelerated simulations: the simulators and the daemon share one
    instance, so a 10-hour day at speed 300 takes two minutes.

    With ``anchor_real`` (a :func:`time.time` value) the clock is anchored:
    simulated time = ``start + (time.time() - anchor_real) * speed``. Two
    processes given the same anchor, start and speed agree on the time, so a
    scenario runner and a daemon it starts (and restarts) share one day.
    """

    def __init__(
        self, *, speed: float, start: float | None = None, anchor_real: float | None = None
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if anchor_real is not None and start is None:
            raise ValueError("an anchored clock needs its start")
        self.speed = speed
        self._wall_start = time.time() if start is None else start
        self._anchored = anchor_real is not None
        self._real_start = anchor_real if anchor_real is not None else time.monotonic()

    def _elapsed(self) -> float:
        real = time.time() if self._anchored else time.monotonic()
        return (real - self._real_start) * self.speed

    def now(self) -> float:
        return self._wall_start + self._elapsed()

    def monotonic(self) -> float:
        return self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock that moves only when a test calls :meth:`advance`.

    Sleepers wake, in deadline order, once the clock has passed their deadline.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00Z
        self._wall_start = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._wall_start + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order."""
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._mono = max(self._mono, deadline)
            if not future.done():
                future.set_result(None)
                # Let the woken task run before time moves on, as it would in real life.
                for _ in range(5):
                    await asyncio.sleep(0)
        self._mono = target
