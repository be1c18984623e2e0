"""Moving and stopped: one definition (``[motion]`` in the config, busd/motion.py)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from busd import signals as sig
from busd.clock import ManualClock
from busd.config import BusdConfig, MotionConfig
from busd.monitoring.segment import DayTracker, Sample, Settings, places_of
from busd.motion import moving_now, stopped
from busd.state import VehicleState
from telemetry.wiring import build_uplink
from tests.monitoring_helpers import ROZUPE, make_plan

CREEP = 6.0  # km/h: moving by the default definition, stopped with stopped_kmh = 8


def test_stopped_is_at_or_below_the_threshold_wheel_speed_first() -> None:
    motion = MotionConfig(stopped_kmh=3.0)
    assert stopped(motion, 3.0) is True and stopped(motion, 3.01) is False
    assert stopped(motion, 0.0, gps_kmh=20.0) is True  # the wheels are believed first
    assert stopped(motion, None, gps_kmh=20.0) is False  # no wheel speed: the GPS's
    assert stopped(motion, None, None) is None  # no speed at all: unknown, not a guess


def halt(motion: MotionConfig) -> list[str]:
    """Four minutes creeping at Rožupe: which events the tracker makes of it."""
    day = DayTracker(places=places_of(make_plan()), settings=Settings(motion=motion),
                     zone=ZoneInfo("Europe/Riga"))
    events = []
    for t in range(240):
        events += [c.event for c in day.step(Sample(
            mono=float(t), ts=1.767e9 + t, speed_kmh=CREEP, odometer_km=100.0,
            lat=ROZUPE[2], lon=ROZUPE[3]))]
    return [e for e in events if e is not None]


@pytest.mark.parametrize("stopped_kmh, visit", [(3.0, False), (8.0, True)])
async def test_one_setting_decides_for_the_tracker_and_the_uplink(
    tmp_path: Path, stopped_kmh: float, visit: bool
) -> None:
    config = BusdConfig(bus_id="bus-01", data_dir=tmp_path,
                        motion=MotionConfig(stopped_kmh=stopped_kmh))
    assert ("visit_started" in halt(config.motion)) is visit
    clock = ManualClock()
    state = VehicleState(clock)
    state.update(sig.VEHICLE_SPEED, CREEP, source="test")
    assert moving_now(config.motion, state) is not visit
    parts = build_uplink(config, state=state, clock=clock)
    try:
        assert parts.uplink.state_payload().count(b'"moving":true') == (0 if visit else 1)
    finally:
        await parts.outbox.close()
