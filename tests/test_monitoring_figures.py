"""Pure monitoring figures: energy integration with gaps, GPS distance, lift cycles."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from busd.monitoring.figures import Counters, EnergyIntegrator, GpsDistance, LiftCycles
from busd.plan import haversine_m


def test_constant_power_integrates_exactly() -> None:
    e = EnergyIntegrator(max_hold_s=5.0)
    for i in range(3601):
        e.step(float(i), 36.0)  # 36 kW for an hour
    assert e.out_kwh == pytest.approx(36.0)
    assert e.gap_s == 0 and e.regen_kwh == 0


def test_sign_separates_discharge_regen_and_charging() -> None:
    e = EnergyIntegrator(max_hold_s=5.0)
    e.step(0.0, 10.0)
    e.step(360.0, -20.0, age_s=0.0)  # held 10 kW for 360 s, but only 5 s are covered
    assert e.out_kwh == pytest.approx(10 * 5 / 3600)
    assert e.gap_s == pytest.approx(355.0)
    e = EnergyIntegrator(max_hold_s=1000.0)
    e.step(0.0, 10.0)
    e.step(360.0, -20.0)
    e.step(540.0, -30.0, plugged=True)
    e.step(900.0, 0.0)
    assert e.out_kwh == pytest.approx(1.0)
    assert e.regen_kwh == pytest.approx(1.0)
    assert e.charged_kwh == pytest.approx(3.0)


def test_stale_current_is_a_marked_gap_not_invented_energy() -> None:
    e = EnergyIntegrator(max_hold_s=5.0)
    t = 0.0
    for _ in range(600):  # 10 min at 20 kW, 1 Hz
        e.step(t, 20.0)
        t += 1.0
    last_received = t - 1.0
    for _ in range(600):  # 10 min of silence: the tracker still ticks with the last value's age
        age = t - last_received
        e.step(t, 20.0 if age <= 5.0 else None, age_s=age)
        t += 1.0
    for _ in range(601):
        e.step(t, 20.0)
        t += 1.0
    assert e.out_kwh == pytest.approx(20.0 * (1200 + 5 - 1) / 3600, rel=1e-3)
    assert e.gap_s == pytest.approx(596.0, abs=1.0)
    assert e.gaps == 1


def test_value_already_old_when_seen_is_held_only_to_its_limit() -> None:
    e = EnergyIntegrator(max_hold_s=5.0)
    e.step(0.0, 36.0, age_s=4.0)  # received at -4 s: valid until 1 s
    e.step(10.0, None)
    assert e.out_kwh == pytest.approx(36.0 * 1 / 3600)
    assert e.gap_s == pytest.approx(9.0)
    e.step(11.0, 10.0, age_s=6.0)  # already too old to use
    e.step(12.0, None)
    assert e.gap_s == pytest.approx(11.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 3.0), st.floats(-100, 200)), min_size=2, max_size=200))
def test_integration_matches_a_riemann_sum(steps: list[tuple[float, float]]) -> None:
    e = EnergyIntegrator(max_hold_s=10.0)
    t, expected_out, expected_regen, previous = 0.0, 0.0, 0.0, None
    for dt, p in steps:
        if previous is not None:
            kwh = previous * dt / 3600
            expected_out += max(kwh, 0.0)
            expected_regen += max(-kwh, 0.0)
        t += dt
        e.step(t, p)
        previous = p
    assert e.out_kwh == pytest.approx(expected_out, abs=1e-9)
    assert e.regen_kwh == pytest.approx(expected_regen, abs=1e-9)
    assert e.gap_s == 0


def _jitter(lat: float, lon: float, sigma_m: float, rng: random.Random) -> tuple[float, float]:
    dlat = rng.gauss(0, sigma_m) / 111_320.0
    dlon = rng.gauss(0, sigma_m) / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


@pytest.mark.parametrize("wheel_speed_known", [True, False])
def test_three_hours_parked_with_gps_noise_adds_under_50_m(wheel_speed_known: bool) -> None:
    rng = random.Random(7)
    d = GpsDistance(min_step_m=15.0)
    for _ in range(3 * 3600):  # 1 Hz, sigma 4 m per axis (a good receiver is 2-5 m)
        lat, lon = _jitter(56.3543, 26.1758, 4.0, rng)
        d.step(lat, lon, moving=False if wheel_speed_known else None)
    assert d.metres < 50.0


def test_gps_track_length_of_a_drive() -> None:
    rng = random.Random(3)
    d = GpsDistance(min_step_m=15.0)
    lat0, lon0, lat1, lon1 = 56.3543, 26.1758, 56.3974, 26.3952
    n = 1200
    for i in range(n + 1):
        f = i / n
        lat, lon = _jitter(lat0 + f * (lat1 - lat0), lon0 + f * (lon1 - lon0), 3.0, rng)
        d.step(lat, lon, moving=True)
    # White noise lengthens a chord by about σ²/L; a cross-check, not the odometer.
    assert d.metres == pytest.approx(haversine_m(lat0, lon0, lat1, lon1), rel=0.03)


def test_gps_without_positions_adds_nothing() -> None:
    d = GpsDistance(min_step_m=15.0)
    d.step(None, None, moving=True)
    d.step(56.0, None, moving=True)
    assert d.metres == 0


def test_lift_cycles_from_counter_including_reset() -> None:
    lift = LiftCycles()
    for value in (100, 100, 101, 103, 2, 3):  # unit replaced after 103
        lift.step(value, "stowed")
    assert lift.cycles == 3 + 2 + 1


def test_lift_cycles_from_state_when_there_is_no_counter() -> None:
    lift = LiftCycles()
    for state in ("stowed", "deploying", "deployed", "stowing", "stowed", None, "deployed",
                  "stowed", "deploying", "stowed", "fault", "stowed"):
        lift.step(None, state)
    assert lift.cycles == 2  # an aborted deploy and a fault are not cycles


def test_counters_arithmetic() -> None:
    a = Counters(out_kwh=2.0, gaps=1, temp_cs=-100.0, temp_s=10.0)
    b = Counters(out_kwh=0.5, temp_cs=-20.0, temp_s=4.0)
    assert (a - b).out_kwh == 1.5
    assert (a - b).mean_temp_c == pytest.approx(-80 / 6)
    assert (a + b).gaps == 1
    assert Counters().mean_temp_c is None
