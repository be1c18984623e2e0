"""An anchored ScaledClock: two instances (two processes) agree on simulated time."""

from __future__ import annotations

import time

import pytest

from busd.app import make_clock
from busd.clock import ScaledClock
from busd.config import BusdConfig


def test_two_anchored_clocks_agree() -> None:
    anchor = time.time() - 2.0
    a = ScaledClock(speed=300.0, start=1_765_692_000.0, anchor_real=anchor)
    time.sleep(0.05)
    b = ScaledClock(speed=300.0, start=1_765_692_000.0, anchor_real=anchor)
    assert abs(a.now() - b.now()) < 300.0 * 0.01
    assert a.now() == pytest.approx(1_765_692_000.0 + 300.0 * (time.time() - anchor), abs=3.0)
    assert abs(a.monotonic() - b.monotonic()) < 3.0


def test_an_anchor_needs_a_start() -> None:
    with pytest.raises(ValueError, match="start"):
        ScaledClock(speed=2.0, anchor_real=time.time())


def test_make_clock_uses_the_configs_anchor() -> None:
    anchor = time.time()
    config = BusdConfig(bus_id="sim-01", simulators={
        "speed": 200.0, "clock_anchor": {"sim_epoch": 1_765_692_000.0, "real_epoch": anchor}})
    clock = make_clock(config)
    assert isinstance(clock, ScaledClock)
    assert clock.speed == 200.0
    assert clock.now() == pytest.approx(1_765_692_000.0 + 200.0 * (time.time() - anchor), abs=2.0)
