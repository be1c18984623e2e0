"""The CAN simulator's vehicle/battery model: physics and bookkeeping (pure, no clock)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.can.battery import (
    PackParams,
    charge_taper,
    pack_ocv,
    pack_resistance,
)
from simulators.can.duty import DutyCycle
from simulators.can.model import ChargerState, Inputs, VehicleModel


def run(model: VehicleModel, seconds: float, inputs: Inputs, dt: float = 0.5) -> None:
    for _ in range(round(seconds / dt)):
        model.step(dt, inputs)


def net_pack_energy(m: VehicleModel) -> float:
    t = m.state
    return t.energy_charged_kwh + t.energy_regen_kwh - t.energy_out_kwh - t.energy_loss_kwh


def test_driving_consumes_within_a_minibus_range() -> None:
    for temp in (-12.0, 15.0):
        m = VehicleModel(initial_soc=90, outside_temp_c=temp)
        run(m, 1800, Inputs(target_speed_kmh=60, outside_temp_c=temp))
        t = m.truth()
        assert t.odometer_km == pytest.approx(30.0, abs=0.2)  # 30 min at 60 km/h, minus the ramp
        per_km = t.energy_out_kwh / t.odometer_km
        assert 0.35 <= per_km <= 0.6, (temp, per_km)
        assert t.soc < 90
        assert t.pack_current > 0  # positive = discharge


def test_heating_while_standing_costs_more_in_the_cold() -> None:
    used = {}
    for temp in (-12.0, 15.0, 18.0):
        m = VehicleModel(initial_soc=80, outside_temp_c=temp)
        run(m, 3600, Inputs(outside_temp_c=temp))
        used[temp] = m.state.energy_out_kwh
    assert 4.0 <= used[-12.0] <= 8.0  # a few kW of heating plus ~1 kW of computers and lights
    assert used[15.0] < used[-12.0]
    assert used[18.0] == pytest.approx(1.0, rel=0.05)  # no heating: only the base load
    m = VehicleModel(initial_soc=80)
    run(m, 600, Inputs(outside_temp_c=-12.0, hvac_on=False))
    assert m.state.hvac_kw == 0.0


def test_open_doors_let_the_heat_out() -> None:
    closed, opened = VehicleModel(), VehicleModel()
    run(closed, 600, Inputs(outside_temp_c=-12))
    run(opened, 600, Inputs(outside_temp_c=-12, doors_open=True))
    assert opened.state.energy_out_kwh > closed.state.energy_out_kwh * 1.1


def test_charging_is_constant_power_to_80_then_tapers() -> None:
    # A 150 kW DC charger: the BMS's 60 kW acceptance and its taper set the pace.
    m = VehicleModel(initial_soc=40, outside_temp_c=15)
    plug = Inputs(plugged=True, charger_power_kw=150, outside_temp_c=15)
    powers: list[tuple[float, float]] = []  # (SOC, power into the pack)
    for _ in range(4 * 3600):
        m.step(1.0, plug)
        powers.append((m.state.soc, -m.state.pack_power_kw))
        assert m.state.charger_power_kw == pytest.approx(
            max(0.0, -m.state.pack_power_kw) + m.state.load_kw
        )
        if m.state.charger_state is ChargerState.COMPLETE:
            break
    below = [p for soc, p in powers if soc < 79]
    above = [(soc, p) for soc, p in powers if soc > 81]
    assert below and min(below) == pytest.approx(60.0) and max(below) == pytest.approx(60.0)
    assert above[0][1] < 60.0
    tail = [p for soc, p in above]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(tail))  # keeps decreasing
    assert m.state.charger_state is ChargerState.COMPLETE
    assert m.state.soc == pytest.approx(100.0, abs=0.1)
    assert m.state.charger_power_kw == pytest.approx(m.state.load_kw)  # full: feeds the loads
    assert m.state.energy_charged_kwh > 0.5 * m.capacity_kwh
    assert m.state.session_energy_kwh >= m.state.energy_charged_kwh


def test_taper_curve() -> None:
    p = PackParams()
    assert charge_taper(50, p) == 1.0
    assert charge_taper(80, p) == 1.0
    assert charge_taper(90, p) == pytest.approx(0.5)
    assert charge_taper(100, p) == p.taper_floor


def test_plugged_bus_does_not_drive_and_session_restarts_on_replug() -> None:
    m = VehicleModel(initial_soc=50)
    run(m, 60, Inputs(plugged=True, charger_power_kw=22, target_speed_kmh=50))
    assert m.state.speed_kmh == 0.0
    assert m.state.session_energy_kwh > 0
    run(m, 5, Inputs())
    assert m.state.charger_state is ChargerState.IDLE
    run(m, 5, Inputs(plugged=True, charger_power_kw=22))
    assert m.state.session_energy_kwh < 22 * 6 / 3600


def test_charger_fault() -> None:
    m = VehicleModel(initial_soc=50)
    run(m, 10, Inputs(plugged=True, charger_power_kw=22, charger_fault_code=7))
    assert m.state.charger_state is ChargerState.FAULT
    assert m.state.charger_fault_code == 7
    assert m.state.energy_charged_kwh == 0.0


def test_regeneration_is_counted_separately() -> None:
    m = VehicleModel(initial_soc=60)
    run(m, 120, Inputs(target_speed_kmh=70), dt=0.1)
    out_before = m.state.energy_out_kwh
    assert m.state.energy_regen_kwh == 0.0
    run(m, 30, Inputs(target_speed_kmh=0), dt=0.1)  # brake to a stop
    assert m.state.speed_kmh == 0.0
    assert m.state.energy_regen_kwh > 0.05
    assert m.state.energy_charged_kwh == 0.0  # not plugged: regen, not charging
    assert m.state.energy_out_kwh >= out_before  # loads still draw while braking


def test_energy_conservation() -> None:
    m = VehicleModel(initial_soc=70, outside_temp_c=-12)
    duty = DutyCycle(cruise_kmh=50, drive_s=300, stop_s=200, outside_temp_c=-12)
    for i in range(2 * 500 * 10):
        m.step(0.1, duty(i * 0.1))
    run(m, 1800, Inputs(plugged=True, charger_power_kw=40, outside_temp_c=-12))
    t = m.truth()
    soc_kwh = (t.soc - 70) / 100 * m.capacity_kwh
    assert soc_kwh == pytest.approx(net_pack_energy(m), rel=1e-6, abs=1e-6)
    # Without the I²R losses, SOC × capacity still matches the terminal energy within 3 %.
    terminal = t.energy_charged_kwh + t.energy_regen_kwh - t.energy_out_kwh
    moved = t.energy_charged_kwh + t.energy_regen_kwh + t.energy_out_kwh
    assert abs(soc_kwh - terminal) < 0.03 * moved
    assert t.energy_regen_kwh > 0 and t.energy_out_kwh > 0 and t.energy_charged_kwh > 0


def test_voltage_follows_soc_and_sags_under_load() -> None:
    p = PackParams()
    assert pack_ocv(10, p) < pack_ocv(50, p) < pack_ocv(95, p)
    m = VehicleModel(initial_soc=60, outside_temp_c=0)
    run(m, 1, Inputs(outside_temp_c=0, hvac_on=False))
    resting = m.state.pack_voltage
    run(m, 30, Inputs(target_speed_kmh=80, outside_temp_c=0))
    t = m.state
    assert t.pack_voltage < resting - 2  # sag while accelerating
    sag = t.pack_current * pack_resistance(t.battery_temp_c, p)
    assert t.pack_voltage == pytest.approx(t.ocv - sag, rel=1e-4)
    assert 2.5 < t.cell_v_min < t.cell_v_max < 4.3
    assert t.cell_v_max - t.cell_v_min < 0.1
    assert -30 < t.temp_min_c < t.temp_max_c < 60
    assert t.soh == p.soh_pct


def test_not_ready_opens_the_contactor() -> None:
    m = VehicleModel(initial_soc=60)
    run(m, 10, Inputs(ready=False, target_speed_kmh=50))
    t = m.state
    assert not t.contactor_closed and t.pack_current == 0.0 and t.speed_kmh == 0.0
    assert t.aux_voltage < 26


def test_duty_cycle_drives_stops_opens_doors_and_cycles_the_lift() -> None:
    duty = DutyCycle(cruise_kmh=60, drive_s=120, stop_s=60, outside_temp_c=-12)
    m = VehicleModel(outside_temp_c=-12)
    saw_doors_while_moving = False
    for i in range(2 * 180 * 10):
        u = duty(i * 0.1)
        m.step(0.1, u)
        saw_doors_while_moving |= m.state.doors_open and m.state.speed_kmh > 0
        if i * 0.1 == pytest.approx(60):
            assert m.state.speed_kmh == pytest.approx(60)
            assert not m.state.parking_brake
    assert not saw_doors_while_moving
    assert m.state.lift_cycles == 2
    assert m.state.odometer_km == pytest.approx(2 * (60 * 120 / 3600), rel=0.15)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 100),
            st.booleans(),
            st.floats(0, 150),
            st.floats(-30, 35),
            st.floats(0.01, 30),
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(0, 100),
)
def test_any_input_sequence_keeps_the_books_straight(
    steps: list[tuple[float, bool, float, float, float]], soc0: float,
) -> None:
    m = VehicleModel(initial_soc=soc0)
    last = m.truth()
    clamped = soc0 in (0.0, 100.0)
    for speed, plugged, power, temp, dt in steps:
        m.step(dt, Inputs(target_speed_kmh=speed, plugged=plugged, charger_power_kw=power,
                          outside_temp_c=temp))
        t = m.truth()
        assert 0.0 <= t.soc <= 100.0
        assert t.speed_kmh >= 0.0
        for name in ("odometer_km", "energy_out_kwh", "energy_regen_kwh", "energy_charged_kwh",
                     "energy_loss_kwh"):
            assert getattr(t, name) >= getattr(last, name), name
        clamped |= not 0.0 < t.soc < 100.0
        last = t
    if not clamped:  # the BMS's cut-off at empty and full is the only leak
        assert (m.state.soc - soc0) / 100 * m.capacity_kwh == pytest.approx(
            net_pack_energy(m), abs=1e-6
        )
