"""Lift-not-stowed-while-moving: the pure rule, and the component around it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from busd import signals as sig
from busd.alerts_lift import ALERT_KIND, LiftMovingAlert, evaluate_lift_alert
from busd.clock import ManualClock
from busd.state import SignalView, VehicleState
from tests.support.components import running
from tests.support.wait import wait_until


def view(name: str, value: object, *, stale: bool = False) -> SignalView:
    return SignalView(name, value, "", 0.0, 0.0, stale, "test")  # type: ignore[arg-type]


def views(speed: float | None = None, lift: str | None = None, gps: float | None = None, *,
          speed_stale: bool = False, lift_stale: bool = False) -> dict[str, SignalView]:
    out = {}
    if speed is not None:
        out[sig.VEHICLE_SPEED] = view(sig.VEHICLE_SPEED, float(speed), stale=speed_stale)
    if gps is not None:
        out[sig.GPS_SPEED] = view(sig.GPS_SPEED, float(gps))
    if lift is not None:
        out[sig.LIFT_STATE] = view(sig.LIFT_STATE, lift, stale=lift_stale)
    return out


@pytest.mark.parametrize(
    ("speed", "lift", "expected"),
    [
        (20, "deployed", True), (20, "deploying", True), (20, "stowing", True),
        (20, "fault", True), (20, "stowed", False), (2, "deployed", False),
        (3.0, "deployed", False), (3.1, "deployed", True),
    ],
)
def test_raises_only_when_moving_with_lift_out(speed: float, lift: str, expected: bool) -> None:
    assert evaluate_lift_alert(views(speed, lift), active=False,
                               speed_threshold_kmh=3.0).active is expected


def test_unknowns_never_raise() -> None:
    assert not evaluate_lift_alert(views(None, "deployed"), active=False,
                                   speed_threshold_kmh=3).active
    assert not evaluate_lift_alert(views(20, "deployed", lift_stale=True), active=False,
                                   speed_threshold_kmh=3).active
    assert not evaluate_lift_alert(views(20, "deployed", speed_stale=True), active=False,
                                   speed_threshold_kmh=3).active


def test_gps_speed_stands_in_for_a_stale_wheel_speed() -> None:
    verdict = evaluate_lift_alert(views(0, "deployed", gps=15, speed_stale=True),
                                  active=False, speed_threshold_kmh=3)
    assert verdict.active and verdict.speed_source == sig.GPS_SPEED


def test_clears_only_on_a_current_stowed() -> None:
    assert evaluate_lift_alert(views(0, "deployed"), active=True,
                               speed_threshold_kmh=3).active  # stopped, still out
    assert evaluate_lift_alert(views(20, "stowed", lift_stale=True), active=True,
                               speed_threshold_kmh=3).active  # stale is not stowed
    assert not evaluate_lift_alert(views(20, "stowed"), active=True,
                                   speed_threshold_kmh=3).active


@given(speed=st.floats(0, 200), lift=st.sampled_from(sig.LIFT_STATES), active=st.booleans())
def test_stowed_is_never_alarming(speed: float, lift: str, active: bool) -> None:
    verdict = evaluate_lift_alert(views(speed, lift), active=active, speed_threshold_kmh=3)
    if lift == "stowed":
        assert not verdict.active
    if not active and speed <= 3:
        assert not verdict.active


class CaptureSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Mapping[str, object]]] = []

    def raise_alert(self, kind: str, *, message: str, details: Mapping[str, object]) -> None:
        self.events.append(("raise", kind, details))

    def clear_alert(self, kind: str, *, details: Mapping[str, object]) -> None:
        self.events.append(("clear", kind, details))


async def test_component_raises_once_and_clears() -> None:
    clock = ManualClock()
    state = VehicleState(clock)
    sink = CaptureSink()
    alert = LiftMovingAlert(state=state, sink=sink, speed_threshold_kmh=3)
    async with running(alert, clock):
        state.update(sig.LIFT_STATE, "deployed", source="t")
        state.update(sig.VEHICLE_SPEED, 10.0, source="t")
        await wait_until(lambda: len(sink.events) == 1, timeout=2, what="raise")
        state.update(sig.VEHICLE_SPEED, 12.0, source="t")  # still moving: no second raise
        state.update(sig.LIFT_STATE, "stowing", source="t")
        await asyncio.sleep(0)  # the rule looks at "stowing" (input pacing, nothing asserted)
        state.update(sig.LIFT_STATE, "stowed", source="t")
        await wait_until(lambda: len(sink.events) == 2, timeout=2, what="clear")
    assert [(e[0], e[1]) for e in sink.events] == [("raise", ALERT_KIND), ("clear", ALERT_KIND)]
    assert sink.events[0][2]["lift_state"] == "deployed"
    assert sink.events[1][2]["lift_state"] == "stowed"  # cleared by "stowed", not "stowing"
