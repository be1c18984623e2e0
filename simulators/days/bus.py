"""One bus's day in-process: vehicle model, simulated driver, tracker, planner, on a manual clock.

The parts are the production ones, composed without processes or I/O:

- :class:`~simulators.can.model.VehicleModel` is the physics (with the day's consumption
  factors), stepped coarsely (5 s driving, 30 s standing: the energy balance holds, the
  accelerations are rounded);
- :class:`~simulators.scenario.driver.DayDriver` drives it, following the planner's active
  itinerary as the scenario runner's driver does (:func:`~simulators.scenario.follow.
  next_target`), and accepts a pending proposal ``driver.accept_after_s`` after it appeared;
- :class:`~busd.monitoring.segment.DayTracker` turns the model's readings into the tracker's
  events, which tell the planner where the bus is and teach the energy model
  (:func:`~busd.planner.learning.learn_from`), as the daemon's subscribers do;
- :class:`~busd.planner.core.PlannerCore` projects every ``max_interval_s`` and at once after
  an arrival or departure, as the planner component does.

The figures of the day (:class:`DayOutcome`) come from the model's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from busd.clock import ManualClock
from busd.config import MonitoringConfig, PlannerConfig
from busd.event_catalog import PlanDocument
from busd.monitoring.records import Sample, places_of
from busd.monitoring.segment import DayTracker
from busd.monitoring.tracker import event_of, settings_from
from busd.motion import DEFAULT_MOTION
from busd.planner.core import Outgoing, PlannerCore
from busd.planner.energy import EnergyModel
from busd.planner.learning import learn_from
from busd.planner.projection import Built, Situation, build
from simulators.can.model import ChargerState, VehicleModel, VehicleParams
from simulators.scenario.driver import DayDriver, DayTruth, Target
from simulators.scenario.follow import next_target
from simulators.scenario.model import LoadedScenario

DRIVE_STEP_S = 5.0
STAND_STEP_S = 30.0
NOON = time(12, 0)
_STATES = {ChargerState.IDLE: "idle", ChargerState.CHARGING: "charging",
           ChargerState.COMPLETE: "complete", ChargerState.FAULT: "fault"}


@dataclass
class DayOutcome:
    """What one bus did on one day (ground truth), and what the planner said about it."""

    served: dict[str, float]  # stop id -> minutes of service on site
    order: list[str]  # stops and chargers in the order the bus left them
    departure_ts: float
    departure_soc: float
    end_soc: float  # on arrival at the depot
    proposals: int  # distinct proposals shown to the driver
    accepted: int
    emergencies: int
    noon_projection: float | None  # the projected depot SOC at noon
    drive_kwh_per_km: float  # the day's true figures, measured on the model
    site_kw: float
    legs_km: dict[tuple[str, str], float] = field(default_factory=dict)
    truth: DayTruth | None = None
    noon_built: Built | None = None  # the projection at noon, as the planner built it

    @property
    def minutes(self) -> float:
        return sum(self.served.values())


def _sample(clock: ManualClock, model: VehicleModel, driver: DayDriver) -> Sample:
    t = model.state
    pos = driver.position(0.0)
    return Sample(
        mono=clock.monotonic(), ts=clock.now(), speed_kmh=t.speed_kmh,
        gps_speed_kmh=t.speed_kmh, odometer_km=t.odometer_km, lat=pos.lat, lon=pos.lon,
        power_kw=t.pack_power_kw if t.contactor_closed else 0.0, soc=t.soc,
        outside_temp_c=t.outside_temp_c, plugged=t.plugged,
        charger_state=_STATES.get(t.charger_state), charger_power_kw=t.charger_power_kw,
        charger_session_kwh=t.session_energy_kwh, lift_counter=t.lift_cycles,
    )


async def run_day(
    loaded: LoadedScenario,
    energy: EnergyModel,
    config: PlannerConfig,
    *,
    vehicle: VehicleParams | None = None,
    initial_soc: float | None = None,
) -> DayOutcome:
    """Simulate the scenario's day with ``energy`` (it learns, and keeps what it learned)."""
    plan = loaded.plan
    sc = loaded.scenario
    start = plan.at(plan.depot.leave_at) - sc.driver.depart_after_min * 60.0
    clock = ManualClock(start=start)
    model = VehicleModel(
        capacity_kwh=config.capacity_kwh, initial_soc=initial_soc or sc.initial_soc,
        outside_temp_c=loaded.temp_at(start), vehicle=vehicle, max_substep_s=DRIVE_STEP_S,
    )
    core = PlannerCore(config, bus_id=plan.bus or sc.bus_id, energy=energy)
    # The driver follows the itinerary of the last plan document published (the display),
    # as the scenario runner's driver reads the daemon's state file.
    shown: list[tuple[str, str, float]] = []

    def publish(out: list[Outgoing]) -> None:
        for o in out:
            if isinstance(o.payload, PlanDocument):
                shown[:] = [(i.kind, i.id, i.minutes) for i in o.payload.itinerary]

    publish(core.load(plan, start))
    monitoring = MonitoringConfig(energy_gap_s=STAND_STEP_S * 2)  # readings are exact here
    tracker = DayTracker(places=places_of(plan), settings=settings_from(monitoring,
                         DEFAULT_MOTION), zone=plan.zone)
    driver: DayDriver

    def served() -> list[str]:
        return [v.place_id for v in driver.truth.visits
                if v.kind != "depot" and v.departed_ts is not None]

    def follow(_done: frozenset[str], _now: float) -> Target:
        return next_target(loaded, shown, served())

    # The scenario's charger faults (the charge point reports 0x21 and stops), as the
    # scenario runner applies them; other faults need the processes the runner starts.
    faults = [(loaded.at(f.at), loaded.at(f.at) + f.duration_min * 60.0)
              for f in sc.faults if f.kind == "charger_fault"]

    def charger_fault() -> int:
        return 0x21 if any(a <= clock.now() < b for a, b in faults) else 0

    driver = DayDriver(loaded, clock, model, itinerary=follow, charger_fault=charger_fault)
    driver.ignition_on()
    seen: dict[str, float] = {}
    accepted = emergencies = 0
    noon: float | None = None
    noon_built: Built | None = None
    last_observe = -1e18
    noon_ts = plan.at(NOON)
    departure: tuple[float, float] | None = None
    while not driver.finished and clock.now() < loaded.end_ts:
        inputs = driver(0.0)
        if departure is None and driver.phase == "drive":
            departure = (clock.now(), model.state.soc)
        dt = DRIVE_STEP_S if driver.phase == "drive" else STAND_STEP_S
        model.step(dt, inputs)
        await clock.advance(dt)
        now = clock.now()
        moved = False
        for change in tracker.step(_sample(clock, model, driver)):
            if change.event is None:
                continue
            event = event_of(change)
            learn_from(energy, event, core.plan)
            if event.kind == "visit_started":
                core.visit_started(event.place_id, event.place_kind, change.row["start_ts"])
                moved = True
            elif event.kind == "visit_ended":
                core.visit_ended(event.place_id)
                moved = True
        if moved or now - last_observe >= config.max_interval_s:
            last_observe = now
            t = model.state
            pos = driver.position(0.0)
            charging = t.charger_power_kw if t.charger_state is ChargerState.CHARGING else None
            sit = Situation(now, t.soc, t.outside_temp_c, pos.lat, pos.lon,
                            charging_kw=charging or None)
            itinerary, progress = core.itinerary, core.progress
            publish(core.observe(sit))
            if noon is None and now >= noon_ts and core.projection is not None:
                noon = core.projection.depot_soc
                # The projection again, as the core built it, to tell its error's causes.
                noon_built = build(plan, itinerary, progress, sit, energy, config)
        pending = core.pending
        if pending is not None:
            first = seen.setdefault(pending.id, now)
            if pending.emergency and first == now:
                emergencies += 1
            if now - first >= sc.driver.accept_after_s:
                result, out = core.acknowledge(pending.id, now)
                publish(out)
                accepted += result.accepted
    truth = driver.truth
    return _outcome(loaded, truth, departure or (start, sc.initial_soc), seen, accepted,
                    emergencies, noon, noon_built)


def _outcome(loaded: LoadedScenario, truth: DayTruth, departure: tuple[float, float],
             seen: dict[str, float], accepted: int, emergencies: int,
             noon: float | None, noon_built: Built | None) -> DayOutcome:
    plan = loaded.plan
    served: dict[str, float] = {}
    site_kwh = site_h = 0.0
    for v in truth.visits:
        if v.kind != "stop" or v.departed_ts is None:
            continue
        stop = plan.stop(v.place_id)
        begin = max(v.arrived_ts, plan.at(stop.window.earliest) if stop.window else 0.0)
        minutes = min(stop.planned_min, max(0.0, (v.departed_ts - begin) / 60.0))
        served[v.place_id] = served.get(v.place_id, 0.0) + minutes
        site_kwh += truth.out_kwh_between(v.arrived_ts, v.departed_ts)
        site_h += (v.departed_ts - v.arrived_ts) / 3600.0
    legs = [leg for leg in truth.legs if leg.end_ts is not None]
    km = sum(leg.km for leg in legs)
    net = sum(leg.out_kwh - leg.regen_kwh for leg in legs)
    home = next((v for v in reversed(truth.visits) if v.kind == "depot"), None)
    end_soc = home.soc_arrived if home is not None and truth.visits.index(home) > 0 \
        else truth.min_soc
    return DayOutcome(
        served=served,
        order=[v.place_id for v in truth.visits if v.kind != "depot" and v.departed_ts],
        departure_ts=departure[0], departure_soc=departure[1], end_soc=end_soc,
        proposals=len(seen), accepted=accepted, emergencies=emergencies,
        noon_projection=noon,
        drive_kwh_per_km=net / km if km > 0 else 0.0,
        site_kw=site_kwh / site_h if site_h > 0 else 0.0,
        legs_km={(leg.from_id, leg.to_id): leg.km for leg in legs},
        truth=truth,
        noon_built=noon_built,
    )
