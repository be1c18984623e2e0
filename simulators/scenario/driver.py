"""The simulated driver: drives the active plan and records the ground truth.

:class:`DayDriver` is the CAN simulator's input source (elapsed simulated
seconds → :class:`Inputs`) and the GPS simulator's position source. It waits
at the depot with the ignition off until the runner switches it on, leaves at
the plan's time, drives each leg at road speed for the road's km (the position
moves along the road's geometry as the model's odometer advances), stands on
site with doors, heating and lift cycles for the stop's minutes, charges at a
charger stop, and parks at the depot in the evening.

What to do next is asked of ``itinerary`` at every decision, so a plan the
driver accepted mid-day takes effect at once (a shortened visit ends earlier;
a skipped stop is not driven to). Ground truth is read from the vehicle
model at every transition: km, kWh out and back, minutes on site per visit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from busd.clock import Clock
from simulators.can.model import Inputs, VehicleModel, VehicleParams
from simulators.gps.route import SimPosition, bearing_deg, distance_m
from simulators.scenario.model import LoadedScenario


@dataclass(frozen=True)
class Target:
    """The next place to drive to and what to do there."""

    place_id: str
    kind: str  # stop | charger | depot
    minutes: float = 0.0  # on site (stop) or plugged in (charger)
    earliest_ts: float | None = None  # do not start the service before (arrival window)


Itinerary = Callable[[frozenset[str], float], Target]
"""(places already served today, now) → where to go next; the depot when nothing is left."""


def static_itinerary(loaded: LoadedScenario) -> Itinerary:
    """The plan file's stops in order (what the bus does without a planner)."""
    plan = loaded.plan

    def next_target(done: frozenset[str], _now: float) -> Target:
        for stop in plan.stops:
            if stop.id not in done:
                earliest = plan.at(stop.window.earliest) if stop.window else None
                return Target(stop.id, "stop", stop.planned_min, earliest)
        return Target(plan.depot.id, "depot")

    return next_target


@dataclass
class VisitTruth:
    place_id: str
    kind: str
    arrived_ts: float
    departed_ts: float | None = None
    soc_arrived: float = 0.0
    soc_departed: float | None = None
    lift_cycles: int = 0
    charged_kwh: float = 0.0

    @property
    def minutes(self) -> float | None:
        return None if self.departed_ts is None else (self.departed_ts - self.arrived_ts) / 60.0


@dataclass
class LegTruth:
    from_id: str
    to_id: str
    start_ts: float
    road_km: float
    end_ts: float | None = None
    km: float = 0.0
    out_kwh: float = 0.0
    regen_kwh: float = 0.0


@dataclass
class DayTruth:
    """What really happened, from the vehicle model."""

    legs: list[LegTruth] = field(default_factory=list)
    visits: list[VisitTruth] = field(default_factory=list)
    km: float = 0.0
    out_kwh: float = 0.0
    regen_kwh: float = 0.0
    charged_kwh: float = 0.0
    min_soc: float = 100.0
    final_soc: float | None = None
    ignition_on_ts: float | None = None
    ignition_off_ts: float | None = None
    lift_cycles: int = 0
    # (simulated time, kWh out so far), every model step: the energy in any window.
    energy_log: list[tuple[float, float]] = field(default_factory=list)

    def out_kwh_between(self, start: float, end: float) -> float:
        """Energy out of the pack between two simulated times (from the log)."""
        import bisect

        times = [t for t, _ in self.energy_log]

        def at(ts: float) -> float:
            i = bisect.bisect_right(times, ts)
            return self.energy_log[i - 1][1] if i > 0 else 0.0

        return max(0.0, at(end) - at(start))

    def stop_visits(self) -> list[VisitTruth]:
        return [v for v in self.visits if v.kind == "stop"]


LIFT_CYCLE_S = 180.0  # deploy, dwell (runner: 120 s), stow, with room to spare
DOORS_S = 240.0  # doors open after arriving and before leaving


class DayDriver:
    """Input source and position source of a scenario's bus."""

    def __init__(
        self,
        loaded: LoadedScenario,
        clock: Clock,
        model: VehicleModel,
        *,
        itinerary: Itinerary | None = None,
        lift_cycle: Callable[[], None] | None = None,
        lift_stowed: Callable[[], bool] = lambda: True,
        charger_fault: Callable[[], int] = lambda: 0,
    ) -> None:
        self.loaded = loaded
        self.clock = clock
        self.model = model
        self.itinerary = itinerary or static_itinerary(loaded)
        self._lift_cycle = lift_cycle
        self._lift_stowed = lift_stowed
        self._charger_fault = charger_fault
        self.truth = DayTruth()
        self.phase = "off"  # off | depot | drive | site | home | parked
        self.plugged = False  # plugged in at a charger, as the last inputs said
        self.place_id = loaded.plan.depot.id
        self.target: Target | None = None
        self.done: set[str] = set()
        self._leg: LegTruth | None = None
        self._leg_line: list[tuple[float, float]] = []
        self._leg_start_odo = 0.0
        self._leg_cruise = 60.0
        self._visit: VisitTruth | None = None
        self._visit_end_ts = 0.0
        self._service_start_ts = 0.0
        self._lift_times: list[float] = []
        self._pos = (loaded.plan.depot.lat, loaded.plan.depot.lon)
        self._heading = 0.0
        self._braking_m = 0.0

    # --- runner hooks ----------------------------------------------------------------

    def ignition_on(self) -> None:
        if self.phase == "off":
            self.phase = "depot"
            self.truth.ignition_on_ts = self.clock.now()
            self._open_visit(self.loaded.plan.depot.id, "depot")

    @property
    def finished(self) -> bool:
        return self.phase == "parked"

    # --- input source ------------------------------------------------------------------

    def __call__(self, _elapsed_s: float) -> Inputs:
        inputs = self._inputs()
        self.plugged = inputs.plugged  # the runner's charger fault waits for it
        return inputs

    def _inputs(self) -> Inputs:
        now = self.clock.now()
        t = self.model.state
        self.truth.min_soc = min(self.truth.min_soc, t.soc)
        self.truth.energy_log.append((now, t.energy_out_kwh))
        temp = self.loaded.temp_at(now)
        if self.phase in ("off", "parked"):
            return Inputs(ready=False, hvac_on=False, outside_temp_c=temp)
        if self.phase == "depot":
            leave = max(self.loaded.plan.at(self.loaded.plan.depot.leave_at),
                        (self.truth.ignition_on_ts or now)
                        + self.loaded.scenario.driver.depart_after_min * 60.0)
            if now >= leave:
                self._depart(now)
            else:
                return Inputs(outside_temp_c=temp)
        if self.phase == "drive":
            return self._drive(now, temp)
        if self.phase == "site":
            return self._site(now, temp)
        if self.phase == "home":
            if now >= self._visit_end_ts:
                self._park(now)
                return Inputs(ready=False, hvac_on=False, outside_temp_c=temp)
            return Inputs(doors_open=now < self._visit_end_ts - 60.0, outside_temp_c=temp)
        raise AssertionError(self.phase)

    # --- phases ------------------------------------------------------------------------

    def _depart(self, now: float) -> None:
        t = self.model.state
        if self._visit is not None:
            self._visit.departed_ts = now
            self._visit.soc_departed = t.soc
            if self._visit.kind == "charger":
                self._visit.charged_kwh = t.energy_charged_kwh - self._charged_at_arrival
            self._visit = None
        target = self.itinerary(frozenset(self.done), now)
        self.target = target
        km, cruise, line = self.loaded.road(self.place_id, target.place_id)
        self._leg = LegTruth(self.place_id, target.place_id, now, km)
        self._leg_out0, self._leg_regen0 = t.energy_out_kwh, t.energy_regen_kwh
        self._leg_line = line
        self._leg_start_odo = t.odometer_km
        self._leg_cruise = cruise
        v = cruise / 3.6
        self._braking_m = v * v / (2 * VehicleParams().decel_mps2) + 3.0
        self.truth.legs.append(self._leg)
        self.phase = "drive"

    def _drive(self, now: float, temp: float) -> Inputs:
        assert self._leg is not None and self.target is not None
        t = self.model.state
        driven_m = (t.odometer_km - self._leg_start_odo) * 1000.0
        self._update_position(driven_m)
        remaining = self._leg.road_km * 1000.0 - driven_m
        if remaining > self._braking_m:
            return Inputs(target_speed_kmh=self._leg_cruise, outside_temp_c=temp)
        if t.speed_kmh > 0.0:
            return Inputs(target_speed_kmh=0.0, outside_temp_c=temp)
        self._arrive(now)
        return Inputs(outside_temp_c=temp)

    def _arrive(self, now: float) -> None:
        assert self._leg is not None and self.target is not None
        t = self.model.state
        leg = self._leg
        leg.end_ts = now
        leg.km = t.odometer_km - self._leg_start_odo
        leg.out_kwh = t.energy_out_kwh - self._leg_out0
        leg.regen_kwh = t.energy_regen_kwh - self._leg_regen0
        self._leg = None
        target = self.target
        self.place_id = target.place_id
        place = self.loaded.places[target.place_id]
        self._pos = (place.lat, place.lon)
        self._open_visit(target.place_id, target.kind)
        if target.kind == "depot":
            self.phase = "home"
            self._visit_end_ts = now + 600.0
            return
        self.phase = "site"
        self._service_start_ts = max(now, target.earliest_ts or now)
        n = self.loaded.scenario.driver.lift_cycles_per_visit if target.kind == "stop" else 0
        span = target.minutes * 60.0 - 2 * DOORS_S - LIFT_CYCLE_S
        self._lift_times = [self._service_start_ts + DOORS_S + span * (k + 0.5) / n
                            for k in range(n)] if n and span > 0 else []

    def _open_visit(self, place_id: str, kind: str) -> None:
        t = self.model.state
        self._visit = VisitTruth(place_id, kind, self.clock.now(), soc_arrived=t.soc)
        self._cycles_at_arrival = t.lift_cycles
        self._charged_at_arrival = t.energy_charged_kwh
        self.truth.visits.append(self._visit)

    def _minutes_here(self) -> float:
        """Minutes the active plan wants here now: a visit may have been shortened, a charge
        follows what the planner now projects the day to need."""
        assert self.target is not None
        if self.target.kind not in ("stop", "charger"):
            return self.target.minutes
        current = self.itinerary(frozenset(self.done), self.clock.now())
        if current.place_id == self.target.place_id:
            return current.minutes
        return self.target.minutes

    def _site(self, now: float, temp: float) -> Inputs:
        assert self.target is not None and self._visit is not None
        minutes = self._minutes_here()
        end = self._service_start_ts + minutes * 60.0
        while self._lift_times and now >= self._lift_times[0]:
            if self._lift_times[0] + LIFT_CYCLE_S < end - DOORS_S / 2 and self._lift_cycle:
                self._lift_cycle()
                self._visit.lift_cycles += 1
            self._lift_times.pop(0)
        if now >= end and self._lift_stowed():
            self.done.add(self.target.place_id)
            self._depart(now)
            return self._drive(now, temp)
        since = now - self._visit.arrived_ts
        doors = since < DOORS_S or now > end - DOORS_S
        if self.target.kind == "charger":
            plugged = since >= 60.0 and now < end - 60.0
            if plugged:
                power = (self.loaded.scenario.chargers.power_kw
                         or self.loaded.plan.chargers[0].power_kw)
                for c in self.loaded.plan.chargers:
                    if c.id == self.target.place_id:
                        power = self.loaded.scenario.chargers.power_kw or c.power_kw
                return Inputs(doors_open=False, plugged=True, charger_power_kw=power,
                              charger_fault_code=self._charger_fault(), outside_temp_c=temp)
        return Inputs(doors_open=doors, outside_temp_c=temp)

    def _park(self, now: float) -> None:
        t = self.model.state
        if self._visit is not None:
            self._visit.departed_ts = None  # the bus stays at the depot
        self.phase = "parked"
        self.truth.ignition_off_ts = now
        self.truth.final_soc = t.soc
        self.record_totals()

    def record_totals(self) -> None:
        t = self.model.state
        self.truth.km = t.odometer_km
        self.truth.out_kwh = t.energy_out_kwh
        self.truth.regen_kwh = t.energy_regen_kwh
        self.truth.charged_kwh = t.energy_charged_kwh
        self.truth.lift_cycles = sum(v.lift_cycles for v in self.truth.visits)

    # --- position source ------------------------------------------------------------------

    def _update_position(self, driven_m: float) -> None:
        assert self._leg is not None
        line = self._leg_line
        lengths = [distance_m(a, b) for a, b in pairwise(line)]
        total = sum(lengths)
        frac = min(1.0, max(0.0, driven_m / (self._leg.road_km * 1000.0)))
        along = frac * total
        for (a, b), seg in zip(pairwise(line), lengths, strict=False):
            if along <= seg or seg == lengths[-1]:
                f = along / seg if seg > 0 else 1.0
                f = min(1.0, f)
                self._pos = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
                self._heading = bearing_deg(a, b)
                return
            along -= seg

    def position(self, _elapsed_s: float) -> SimPosition:
        speed = self.model.state.speed_kmh
        lat, lon = self._pos
        if speed <= 0.0:
            return SimPosition(lat=lat, lon=lon)
        return SimPosition(lat=lat, lon=lon, speed_kmh=speed, heading=self._heading)

