"""The backlog's pace (telemetry/pace.py): a token bucket on the injected clock."""

from __future__ import annotations

from busd.clock import ManualClock
from telemetry.pace import Pace


async def test_the_first_batch_goes_at_once_and_the_next_when_the_pace_allows() -> None:
    clock = ManualClock()
    pace = Pace(rate=250, burst=250, clock=clock)
    assert pace.wait_s() == 0
    pace.spend(250)
    assert pace.wait_s() == 1.0  # a batch's credit
    await clock.advance(1.0)
    assert pace.wait_s() == 0


async def test_over_many_batches_the_records_go_no_faster_than_the_rate() -> None:
    clock = ManualClock()
    pace = Pace(rate=100, burst=100, clock=clock)
    sent = 0
    start = clock.monotonic()
    while sent < 10_000:
        wait = pace.wait_s()
        if wait:
            await clock.advance(wait)
            continue
        pace.spend(100)
        sent += 100
    # 100 at once, then 100 a second: the last batch went 99 s in.
    assert 99 - 1e-6 <= clock.monotonic() - start <= 99 + 1e-6


async def test_a_batch_larger_than_the_credit_is_paid_back_by_the_next_wait() -> None:
    clock = ManualClock()
    pace = Pace(rate=10, burst=10, clock=clock)
    pace.spend(50)  # one batch may overdraw
    assert pace.wait_s() == (10 + 40) / 10


async def test_no_rate_means_no_wait() -> None:
    clock = ManualClock()
    pace = Pace(rate=0, burst=1, clock=clock)
    for _ in range(100):
        pace.spend(1_000_000)
        assert pace.wait_s() == 0


async def test_a_start_credit_shortens_the_first_wait() -> None:
    clock = ManualClock()
    pace = Pace(rate=100, burst=100, clock=clock, credit=25)
    assert pace.wait_s() == 0.75  # the rest of a batch's credit
    await clock.advance(0.75)
    assert pace.wait_s() == 0


async def test_a_batch_smaller_than_the_burst_waits_only_for_its_own_credit() -> None:
    clock = ManualClock()
    pace = Pace(rate=100, burst=1000, clock=clock, credit=0)
    assert pace.wait_s() == 10.0  # a whole batch's credit
    assert pace.wait_s(records=50) == 0.5  # the backlog's last 50 records
    assert pace.wait_s(records=5000) == 10.0  # never more than a batch's
    await clock.advance(0.5)
    assert pace.wait_s(records=50) == 0
    pace.spend(50)
    assert pace.wait_s(records=50) == 0.5  # and still no faster than the rate
