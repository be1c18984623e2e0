"""The backlog's pace: at most so many records a second, on the bus's clock.

A bus back from a long outage, or a whole fleet back after the office's, would otherwise send
its backlog as fast as its CPU and link allow. On the bus that link is also the staff's
internet for the residents' services, and at the office a fleet's backlogs all at once are a
flood in front of every live record. A token bucket: a batch goes when the bucket holds a
batch's credit, so ``rate`` records a second on average. Live records are never paced; the
backlog and resends are.
"""

from __future__ import annotations

from busd.clock import Clock


class Pace:
    def __init__(self, *, rate: float, burst: int, clock: Clock,
                 credit: float | None = None) -> None:
        """``rate``: records a second (0: no limit); ``burst``: records that may go at once
        (a batch); ``credit``: what may go at the start (``burst`` when unset)."""
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst if credit is None else min(credit, burst))
        self._at = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def wait_s(self, records: float | None = None) -> float:
        """Seconds until the next batch may go; 0 when it may go now. ``records``: what the
        next batch takes at most (the backlog's tail, a few records after a short outage),
        when less than a whole batch: it waits only for its own credit."""
        if self._rate <= 0:
            return 0.0
        self._refill()
        # The next batch waits for its credit, a whole batch's unless told less: never faster
        # than the rate, and a batch larger than the burst is paid back before the next one.
        # (Within a millionth of a record: a wait from the clock's float seconds may land a
        # hair short.)
        need = self._burst if records is None else min(self._burst, max(0.0, records))
        short = need - self._tokens
        return 0.0 if short <= 1e-6 else short / self._rate

    def spend(self, records: int) -> None:
        if self._rate > 0:
            self._refill()
            self._tokens -= records
