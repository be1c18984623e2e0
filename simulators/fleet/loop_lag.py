"""How late a fleet process's event loop runs: the load generator's own saturation.

A hundred simulated buses share one event loop (and a core) where each real bus has its own
CPU. While they all drain their backlogs at once, a record made on one of them waits for the
loop like every other task there: that wait is the simulator's, not the office's. The
benchmarks report it beside the lag they measure, so the two can be told apart.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel


class LoopLag(BaseModel):
    """One late wake-up: at real time ``t`` the loop woke ``lag_s`` after it should have."""

    t: float
    lag_s: float


async def watch_loop(into: list[LoopLag], *, period_s: float = 0.1,
                     late_s: float = 0.1) -> None:
    """Sleep ``period_s`` again and again; every wake-up later than ``late_s`` is kept."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(period_s)
        lag = time.perf_counter() - asked - period_s
        if lag > late_s:
            into.append(LoopLag(t=time.time(), lag_s=round(lag, 3)))


__all__ = ["LoopLag", "watch_loop"]
