"""From the schedule to each bus's plan for one day, checked against energy before it is sent.

For a day and a bus: the points due by their cycles (nothing on a public holiday; on a reserve
day, the make-ups the office confirmed), put in the order that keeps the arrival windows and
the depot's return time (exact over every order for a usual day, nearest-neighbour beyond),
with the schedule's road distances as the plan's ``leg_km``. The result is a
:class:`busd.plan.Plan`, the very model ``cmd/plan`` and the plan files carry.

The energy check is the bus's planner itself: :func:`busd.planner.projection.build` projects
the plan from the depot at the time it leaves, at the SOC the bus leaves with and the month's
temperature, with the bus's learned model (office/schedule/energy.py) or its seeded one. A day
that does not reach the depot above the reserve plus margin is *unsafe*: flagged in the result,
and ``busd office plan generate`` exits non-zero.

The plan's version is the generation time in epoch seconds: it increases with every generation
(the bus accepts a plan only with a version above the one it follows) and the bus echoes it in
its ``cmd/result`` (``detail.version``), so an answer names the plan it is about.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, ValidationError

from busd.plan import Plan, Stop, haversine_m, plan_problems
from busd.planner.energy import EnergyModel
from busd.planner.projection import Progress, Situation, build, initial_itinerary
from office.schedule.cycles import DayKind, day_kind, due_points
from office.schedule.model import Bus, Schedule, ServicePoint

# Orders tried exhaustively up to this many stops (7! = 5040 timings); beyond, greedy.
EXACT_STOPS = 7


class StopCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    arrive: str  # local HH:MM
    depart: str
    late_min: float  # after the window's latest
    soc_arrive: float


class BusDay(BaseModel):
    """One bus's plan for the day and what the checks found; ``plan`` None: nothing planned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bus: str
    date: date
    kind: DayKind
    plan: Plan | None
    make_ups: list[str]  # proposal ids included (reserve days)
    energy: str  # "learned" or "seeded"
    temp_c: float
    start_soc: float
    depot_soc: float | None
    threshold_pct: float | None  # reserve + margin the depot arrival must keep
    km: float
    return_at: str | None  # local HH:MM back at the depot
    stops: list[StopCheck]
    safe: bool
    problems: list[str]  # why not safe, in words

    @property
    def flagged(self) -> bool:
        return not self.safe


@dataclass(frozen=True, slots=True)
class _Timing:
    order: tuple[ServicePoint, ...]
    arrive: tuple[datetime, ...]  # when each visit starts (after waiting for its window)
    late: tuple[float, ...]  # minutes after each window's latest
    back: datetime  # at the depot
    depot_late_min: float
    km: float

    @property
    def cost(self) -> tuple[float, float]:
        return (round(sum(self.late) + self.depot_late_min, 3), round(self.km, 3))


def road_km(schedule: Schedule, a: str, a_pos: tuple[float, float], b: str,
            b_pos: tuple[float, float], road_factor: float) -> float:
    """The schedule's road distance, else great-circle times the road factor (as the bus)."""
    known = schedule.road_km(a, b)
    if known is not None:
        return known
    return haversine_m(*a_pos, *b_pos) / 1000 * road_factor


def _timing(schedule: Schedule, day: date, order: Sequence[ServicePoint], speed_kmh: float,
            road_factor: float) -> _Timing:
    """Times along ``order``: waiting for a window to open, late after it closes."""
    zone = schedule.zone
    depot = schedule.depot
    t = datetime.combine(day, depot.leave_at, tzinfo=zone)
    here, pos = depot.id, (depot.lat, depot.lon)
    km = 0.0
    arrive: list[datetime] = []
    late: list[float] = []
    for p in order:
        leg = road_km(schedule, here, pos, p.id, (p.lat, p.lon), road_factor)
        km += leg
        t += timedelta(hours=leg / speed_kmh)
        late_here = 0.0
        if p.window is not None:
            earliest = datetime.combine(day, p.window.earliest, tzinfo=zone)
            latest = datetime.combine(day, p.window.latest, tzinfo=zone)
            t = max(t, earliest)
            late_here = max(0.0, (t - latest).total_seconds() / 60)
        arrive.append(t)
        late.append(late_here)
        t += timedelta(minutes=p.planned_min)
        here, pos = p.id, (p.lat, p.lon)
    leg = road_km(schedule, here, pos, depot.id, (depot.lat, depot.lon), road_factor)
    km += leg
    t += timedelta(hours=leg / speed_kmh)
    back_by = datetime.combine(day, depot.return_by, tzinfo=zone)
    return _Timing(tuple(order), tuple(arrive), tuple(late), t,
                   max(0.0, (t - back_by).total_seconds() / 60), km)


def _windows_in_order(order: Sequence[ServicePoint]) -> bool:
    """The plan model's rule: windowed stops in the order of their windows."""
    windows = [p.window for p in order if p.window is not None]
    return all(a.earliest <= b.earliest for a, b in itertools.pairwise(windows))


def best_order(schedule: Schedule, day: date, points: Sequence[ServicePoint], *,
               speed_kmh: float, road_factor: float) -> _Timing:
    """The order with the least lateness (windows and depot together), then the fewest km."""
    if not points:
        return _timing(schedule, day, (), speed_kmh, road_factor)
    if len(points) <= EXACT_STOPS:
        candidates = (o for o in itertools.permutations(points) if _windows_in_order(o))
        return min((_timing(schedule, day, o, speed_kmh, road_factor) for o in candidates),
                   key=lambda timing: timing.cost)
    # Beyond: the windowed stops in window order, each other stop inserted where it adds least.
    order = sorted((p for p in points if p.window is not None),
                   key=lambda p: p.window.earliest if p.window else time(0))
    for p in (p for p in points if p.window is None):
        options = [[*order[:k], p, *order[k:]] for k in range(len(order) + 1)]
        order = list(min((_timing(schedule, day, o, speed_kmh, road_factor) for o in options),
                         key=lambda timing: timing.cost).order)
    return _timing(schedule, day, order, speed_kmh, road_factor)


def to_plan(schedule: Schedule, bus: Bus, day: date, order: Sequence[ServicePoint],
            version: int) -> Plan:
    """The day's plan as the bus takes it (``cmd/plan``, plan files)."""
    stops: list[Stop] = []
    previous = schedule.depot.id
    for p in order:
        cycle = p.cycles[0].every
        stops.append(Stop(id=p.id, name=p.name, lat=p.lat, lon=p.lon, geofence_m=p.geofence_m,
                          window=p.window, planned_min=p.planned_min, min_min=p.min_min,
                          priority=p.priority, must_serve=p.must_serve,
                          leg_km=schedule.road_km(previous, p.id), cycle=cycle))
        previous = p.id
    depot = schedule.depot.model_copy(
        update={"return_leg_km": schedule.road_km(previous, schedule.depot.id)
                if order else None})
    return Plan(bus=bus.id, date=day, version=version, timezone=schedule.timezone, depot=depot,
                stops=stops, chargers=list(schedule.chargers))


def bus_day(schedule: Schedule, bus: Bus, day: date, *, version: int, energy: EnergyModel,
            energy_source: str, make_ups: Sequence[tuple[str, str]] = (),
            temp_c: float | None = None) -> BusDay:
    """``bus``'s plan for ``day`` and its checks. ``make_ups``: (proposal id, point id) pairs
    confirmed for this day."""
    kind = day_kind(schedule, day)
    temp = schedule.temp_c(day) if temp_c is None else temp_c
    cfg = bus.energy
    points: list[ServicePoint] = [] if kind == "holiday" else due_points(schedule, bus.id, day)
    included: list[str] = []
    if kind != "holiday":
        mine = set(schedule.points_of(bus))
        for pid, point_id in make_ups:
            if point_id not in mine:
                continue
            included.append(pid)
            if point_id not in {p.id for p in points}:
                points.append(schedule.point(point_id))
    base = BusDay(bus=bus.id, date=day, kind=kind, plan=None, make_ups=included,
                  energy=energy_source, temp_c=temp, start_soc=bus.start_soc, depot_soc=None,
                  threshold_pct=None, km=0.0, return_at=None, stops=[], safe=True, problems=[])
    if not points:
        return base
    timing = best_order(schedule, day, points, speed_kmh=cfg.speed_kmh,
                        road_factor=energy.road_factor)
    try:
        plan = to_plan(schedule, bus, day, timing.order, version)
    except ValidationError as err:  # e.g. two due points with overlapping windows
        found = [f"{key}: {reason}" for key, reason in plan_problems(err)]
        return base.model_copy(update={"safe": False, "problems": found})
    leaving = Situation(now=plan.at(schedule.depot.leave_at), soc=bus.start_soc,
                        outside_temp=temp, lat=schedule.depot.lat, lon=schedule.depot.lon)
    built = build(plan, initial_itinerary(plan), Progress(place=schedule.depot.id), leaving,
                  energy, cfg)
    ev = built.project()
    threshold = built.instance.threshold_pct
    node_ids = built.node_ids
    checks: list[StopCheck] = []
    problems: list[str] = []
    # Times from the order's own timing (it waits for windows to open, which the energy
    # projection does not need to); SOC from the projection, stop by stop in the same order.
    for point, p, arrive, late in zip(ev.points[:-1], timing.order, timing.arrive, timing.late,
                                      strict=True):
        assert node_ids[point.node] == p.id
        checks.append(StopCheck(
            id=p.id, arrive=arrive.strftime("%H:%M"),
            depart=(arrive + timedelta(minutes=p.planned_min)).strftime("%H:%M"),
            late_min=round(late, 1), soc_arrive=round(point.soc_arrive, 1)))
        if late > 0:
            problems.append(f"{p.id}: arrives {late:.0f} min after its window closes")
    if timing.depot_late_min > 0:
        problems.append(f"back at the depot {timing.depot_late_min:.0f} min after "
                        f"{schedule.depot.return_by.strftime('%H:%M')}")
    if not ev.safe:
        problems.append(f"projected SOC at the depot {ev.depot_soc:.1f} % is below the reserve "
                        f"and margin {threshold:.1f} % ({energy_source} model, {temp:.0f} °C)")
    return base.model_copy(update={
        "plan": plan, "depot_soc": round(ev.depot_soc, 1),
        "threshold_pct": round(threshold, 1), "km": round(ev.km, 1),
        "return_at": timing.back.strftime("%H:%M"), "stops": checks, "safe": not problems,
        "problems": problems})
