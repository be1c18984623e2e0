"""A clock-free vehicle and battery model of a 6 t electric service minibus.

:meth:`VehicleModel.step` advances the model by ``dt_s`` seconds under explicit
:class:`Inputs` (target speed, doors, lift, charger, weather, HVAC); nothing
here reads a clock, so a test or a scenario can run a whole day in
milliseconds and the CAN simulator can step it on any injected clock.

The model keeps its own **ground truth** (:class:`Truth`): the exact SOC,
odometer and energy counters the daemon's decoded and integrated values are
later compared against. Energy bookkeeping (terminal energy, kWh)::

    capacity × ΔSOC/100 = energy_charged + energy_regen − energy_out − energy_loss

where ``energy_loss`` is the I²R heat in the pack. Power and current are
positive when the pack discharges, as on the bus (busd/signals.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import IntEnum

from simulators.can.battery import (
    PackParams,
    cell_spread,
    charge_taper,
    current_for_power,
    pack_ocv,
    pack_resistance,
)

G = 9.81
MAX_SUBSTEP_S = 0.2  # integration step; larger steps are split
_J_PER_KWH = 3.6e6


class ChargerState(IntEnum):
    """As OBC_Status.ChargerState carries it."""

    IDLE = 0
    CHARGING = 1
    COMPLETE = 2
    FAULT = 3


class BmsState(IntEnum):
    """As BMS_Status.BmsState carries it."""

    INIT = 0
    STANDBY = 1
    DRIVE = 2
    CHARGE = 3
    FAULT = 4


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the driver, the weather and the charge point do; everything explicit.

    ``charger_power_kw`` is what the plugged-in charge point can deliver; the
    BMS takes less near full. While ``plugged`` the drive-away interlock holds
    the bus still whatever ``target_speed_kmh`` says.
    """

    target_speed_kmh: float = 0.0
    doors_open: bool = False
    lift_out: bool = False
    plugged: bool = False
    charger_power_kw: float = 0.0
    outside_temp_c: float = -5.0
    hvac_on: bool = True
    ready: bool = True
    grade_pct: float = 0.0
    charger_fault_code: int = 0
    bms_fault_flags: int = 0


@dataclass(frozen=True, slots=True)
class VehicleParams:
    mass_kg: float = 6000.0
    crr: float = 0.011  # rolling resistance, winter tyres on asphalt
    cda_m2: float = 3.4  # drag coefficient × frontal area
    drive_eff: float = 0.88  # battery → wheel
    regen_eff: float = 0.70  # wheel → battery
    regen_max_kw: float = 60.0
    regen_min_kmh: float = 5.0  # below this the friction brakes stop the bus
    accel_mps2: float = 0.9
    decel_mps2: float = 1.1
    base_load_kw: float = 1.0  # computers, lights, displays: always on while ready
    hvac_setpoint_c: float = 18.0  # no heating above this outside temperature
    hvac_kw_per_k: float = 0.17  # ≈5 kW at −12 °C
    hvac_max_kw: float = 8.0
    cooling_above_c: float = 24.0
    cooling_kw_per_k: float = 0.12
    door_open_heat_factor: float = 1.3  # open doors let the heat out
    aux_voltage_ready: float = 27.6  # 24 V system charged by the DC/DC
    aux_voltage_off: float = 25.2


@dataclass(slots=True)
class Truth:
    """The model's exact state: what the daemon should end up believing."""

    t_s: float = 0.0
    soc: float = 90.0
    soh: float = 97.0
    odometer_km: float = 0.0
    speed_kmh: float = 0.0
    energy_out_kwh: float = 0.0  # discharge at the pack terminals (∫V·I, I > 0)
    energy_regen_kwh: float = 0.0  # charge back while not plugged in (regeneration)
    energy_charged_kwh: float = 0.0  # charge back from a charger
    energy_loss_kwh: float = 0.0  # I²R heat inside the pack
    pack_voltage: float = 0.0  # terminal voltage (the CAN frame reads 0 with the contactor open)
    pack_current: float = 0.0
    pack_power_kw: float = 0.0
    ocv: float = 0.0
    cell_v_min: float = 0.0
    cell_v_max: float = 0.0
    battery_temp_c: float = 15.0
    temp_min_c: float = 15.0
    temp_max_c: float = 15.0
    traction_kw: float = 0.0  # battery side, negative while regenerating
    hvac_kw: float = 0.0
    load_kw: float = 0.0  # base load + HVAC
    outside_temp_c: float = -5.0
    ready: bool = True
    contactor_closed: bool = True
    bms_state: BmsState = BmsState.STANDBY
    bms_fault_flags: int = 0
    plugged: bool = False
    charger_state: ChargerState = ChargerState.IDLE
    charger_power_kw: float = 0.0
    session_energy_kwh: float = 0.0
    charger_fault_code: int = 0
    doors_open: bool = False
    lift_out: bool = False
    lift_cycles: int = 0  # completed out-and-back cycles
    parking_brake: bool = True
    aux_voltage: float = 27.6


class VehicleModel:
    """Vehicle, battery and on-board charger; advanced only by :meth:`step`."""

    def __init__(
        self,
        *,
        capacity_kwh: float = 110.0,
        initial_soc: float = 90.0,
        odometer_km: float = 0.0,
        battery_temp_c: float | None = None,
        outside_temp_c: float = -5.0,
        vehicle: VehicleParams | None = None,
        pack: PackParams | None = None,
        max_substep_s: float = MAX_SUBSTEP_S,
    ) -> None:
        """``max_substep_s``: the integration step; a many-day evaluation (simulators/days)
        takes coarser steps, which keep the energy balance but round the accelerations."""
        if capacity_kwh <= 0:
            raise ValueError("capacity_kwh must be positive")
        if not 0.0 <= initial_soc <= 100.0:
            raise ValueError("initial_soc must be within 0..100")
        self.capacity_kwh = capacity_kwh
        self.max_substep_s = max_substep_s
        self.vehicle = vehicle or VehicleParams()
        self.pack = pack or PackParams()
        temp = (
            battery_temp_c
            if battery_temp_c is not None
            else max(outside_temp_c, self.pack.managed_min_temp_c)
        )
        self._t = Truth(
            soc=initial_soc,
            soh=self.pack.soh_pct,
            odometer_km=odometer_km,
            battery_temp_c=temp,
            outside_temp_c=outside_temp_c,
        )
        self._speed_mps = 0.0
        self._last_lift_out = False
        self._electrics(0.0, 0.0)

    @property
    def state(self) -> Truth:
        """The live state (read-only by convention; the frame encoder reads it every tick)."""
        return self._t

    def truth(self) -> Truth:
        """A snapshot of the ground truth that later steps do not change."""
        return replace(self._t)

    def step(self, dt_s: float, inputs: Inputs) -> None:
        """Advance by ``dt_s`` seconds of simulated time under ``inputs``."""
        if dt_s < 0:
            raise ValueError("dt_s must not be negative")
        n = max(1, math.ceil(dt_s / self.max_substep_s))
        h = dt_s / n
        for _ in range(n):
            self._substep(h, inputs)

    # -- one integration step -------------------------------------------------

    def _substep(self, dt: float, u: Inputs) -> None:
        t = self._t
        v = self.vehicle
        t.t_s += dt
        t.outside_temp_c = u.outside_temp_c
        t.ready = u.ready
        t.doors_open = u.doors_open
        t.bms_fault_flags = u.bms_fault_flags
        if self._last_lift_out and not u.lift_out:
            t.lift_cycles += 1
        self._last_lift_out = u.lift_out
        t.lift_out = u.lift_out

        # Motion: the drive-away interlock keeps a plugged or not-ready bus still.
        target = 0.0 if (u.plugged or not u.ready) else max(0.0, u.target_speed_kmh) / 3.6
        v0 = self._speed_mps
        if target > v0:
            v1 = min(target, v0 + v.accel_mps2 * dt)
        else:
            v1 = max(target, v0 - v.decel_mps2 * dt)
        accel = (v1 - v0) / dt if dt > 0 else 0.0
        v_mean = 0.5 * (v0 + v1)
        self._speed_mps = v1
        t.speed_kmh = v1 * 3.6
        t.odometer_km += v_mean * dt / 1000.0
        t.parking_brake = v1 == 0.0 and target == 0.0

        traction_w = self._traction_power(v_mean, accel, u, v)
        t.traction_kw = traction_w / 1000.0

        # Loads on the HV bus (the DC/DC feeds computers and lights from it).
        if u.ready:
            t.hvac_kw = self._hvac_kw(u) if u.hvac_on else 0.0
            t.load_kw = v.base_load_kw + t.hvac_kw
        else:
            t.hvac_kw = 0.0
            t.load_kw = 0.0
        demand_w = traction_w + t.load_kw * 1000.0

        # Charger: covers the loads and gives the pack what its taper allows.
        charger_w = self._charger(u, demand_w)
        t.charger_power_kw = charger_w / 1000.0
        self._electrics(demand_w - charger_w, dt)
        if t.plugged:
            t.session_energy_kwh += charger_w * dt / _J_PER_KWH

    def _traction_power(self, v_mean: float, accel: float, u: Inputs, v: VehicleParams) -> float:
        """Battery-side traction power (W): motoring / efficiency, or capped regeneration."""
        if v_mean <= 0.0 and accel == 0.0:
            return 0.0
        rho = 101325.0 / (287.05 * (u.outside_temp_c + 273.15))
        f_roll = v.mass_kg * G * v.crr if v_mean > 0 else 0.0
        f_aero = 0.5 * rho * v.cda_m2 * v_mean * v_mean
        f_grade = v.mass_kg * G * u.grade_pct / 100.0
        wheel_w = (v.mass_kg * accel + f_roll + f_aero + f_grade) * v_mean
        if wheel_w >= 0.0:
            return wheel_w / v.drive_eff
        if v_mean * 3.6 < v.regen_min_kmh:
            return 0.0  # friction brakes
        return max(wheel_w * v.regen_eff, -v.regen_max_kw * 1000.0)

    def _hvac_kw(self, u: Inputs) -> float:
        v = self.vehicle
        heat = max(0.0, v.hvac_setpoint_c - u.outside_temp_c) * v.hvac_kw_per_k
        if u.doors_open:
            heat *= v.door_open_heat_factor
        cool = max(0.0, u.outside_temp_c - v.cooling_above_c) * v.cooling_kw_per_k
        return min(v.hvac_max_kw, heat + cool)

    def _charger(self, u: Inputs, demand_w: float) -> float:
        """Charger output power (W) and the charger state; resets the session on plug-in."""
        t = self._t
        if u.plugged and not t.plugged:
            t.session_energy_kwh = 0.0
        t.plugged = u.plugged
        t.charger_fault_code = u.charger_fault_code if u.plugged else 0
        if not u.plugged:
            t.charger_state = ChargerState.IDLE
            return 0.0
        if u.charger_fault_code:
            t.charger_state = ChargerState.FAULT
            return 0.0
        available_w = max(0.0, u.charger_power_kw) * 1000.0
        if available_w <= 0.0:
            t.charger_state = ChargerState.IDLE
            return 0.0
        if t.soc >= 99.95:
            # Full: the charger keeps feeding the loads so the pack stays full.
            t.charger_state = ChargerState.COMPLETE
            return min(available_w, max(0.0, demand_w))
        t.charger_state = ChargerState.CHARGING
        accept_w = self.pack.max_charge_kw * 1000.0 * charge_taper(t.soc, self.pack)
        return min(available_w, max(0.0, demand_w) + accept_w)

    def _electrics(self, pack_power_w: float, dt: float) -> None:
        """Pack current, sag, SOC and energy counters for ``pack_power_w`` (+ = discharge)."""
        t = self._t
        p = self.pack
        t.contactor_closed = t.ready or t.plugged
        if not t.contactor_closed:
            pack_power_w = 0.0
        t.ocv = pack_ocv(t.soc, p)
        r = pack_resistance(t.battery_temp_c, p)
        current = current_for_power(pack_power_w, t.ocv, r)
        if t.soc <= 0.0 and current > 0.0:
            current = 0.0  # the BMS opens the contactor rather than go below empty
        terminal_w = (t.ocv - current * r) * current
        loss_w = current * current * r
        # Energy-based SOC: chemical power is terminal power plus the I²R heat.
        chem_kwh = (terminal_w + loss_w) * dt / _J_PER_KWH
        t.soc = min(100.0, max(0.0, t.soc - 100.0 * chem_kwh / self.capacity_kwh))
        e_kwh = terminal_w * dt / _J_PER_KWH
        if e_kwh > 0.0:
            t.energy_out_kwh += e_kwh
        elif t.plugged:
            t.energy_charged_kwh -= e_kwh
        else:
            t.energy_regen_kwh -= e_kwh
        t.energy_loss_kwh += loss_w * dt / _J_PER_KWH

        t.pack_current = current
        t.pack_voltage = t.ocv - current * r
        t.pack_power_kw = terminal_w / 1000.0
        below, above = cell_spread(t.soc, current)
        mean_cell = t.pack_voltage / p.cells_series
        t.cell_v_min = mean_cell - below
        t.cell_v_max = mean_cell + above

        # Pack temperature: relaxes towards the managed temperature, warmed by I²R.
        target = max(t.outside_temp_c, p.managed_min_temp_c)
        t.battery_temp_c += (
            (target - t.battery_temp_c) / p.thermal_time_constant_s
            + loss_w / p.thermal_mass_j_per_k
        ) * dt
        gradient = 1.0 + min(4.0, abs(current) / 100.0)
        t.temp_min_c = t.battery_temp_c - 0.5 * gradient
        t.temp_max_c = t.battery_temp_c + 0.5 * gradient

        if t.bms_fault_flags:
            t.bms_state = BmsState.FAULT
        elif t.plugged and t.charger_state is ChargerState.CHARGING:
            t.bms_state = BmsState.CHARGE
        elif t.ready:
            t.bms_state = BmsState.DRIVE
        else:
            t.bms_state = BmsState.STANDBY
        t.aux_voltage = self.vehicle.aux_voltage_ready if t.ready else self.vehicle.aux_voltage_off
