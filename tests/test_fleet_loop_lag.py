"""The fleet simulator says when its own event loop ran late (the load generator's share)."""

from __future__ import annotations

import asyncio
import time

from simulators.fleet.loop_lag import LoopLag, watch_loop


async def test_a_blocked_loop_is_reported_with_how_late_it_woke() -> None:
    lags: list[LoopLag] = []
    watch = asyncio.create_task(watch_loop(lags, period_s=0.05, late_s=0.1))
    try:
        await asyncio.sleep(0.2)
        before = time.time()
        time.sleep(0.4)  # noqa: ASYNC251 - holds the loop, as a burst of backlog batches does
        async with asyncio.timeout(5):
            while not [lag for lag in lags if lag.t >= before]:  # noqa: ASYNC110 - a list
                await asyncio.sleep(0.01)
    finally:
        watch.cancel()
    late = [lag for lag in lags if lag.t >= before]
    # Woken about 0.35 s late (0.4 s held, less what was left of its 0.05 s sleep).
    assert 0.25 <= late[0].lag_s <= 2.0
