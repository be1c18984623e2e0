"""From the day's plan and the bus's situation to an :class:`Instance`, and projections.

The *itinerary* is what the driver currently follows: the plan's stops in the
announced order with their minutes, minus what accepted proposals skipped or
shortened, plus a charging stop if one was accepted. Stops already served
are gone; a visit in progress is the first node with only its remaining
minutes of service, plus the wait for its arrival window when the bus came early
(:func:`service_elapsed_min`). The instance's announced order (for the reorder cost) is the
itinerary's, followed by skipped stops in the plan's order.

Distances (:meth:`EnergyModel.expected_km`): the plan's ``leg_km`` for a stop reached from
its predecessor in the plan (and ``depot.return_leg_km`` home from the last stop), times
the learned road overrun (:attr:`EnergyModel.road_overrun`: the detours the bus has met
against the plan's km); else the km the bus has driven that road (a long-run mean, detours
included); else the great-circle distance times the learned road factor and the overrun.
So the projection is the expected day rather than the day without a detour; and a road
whose last drive ran longer (road works) or shorter is expected so again, by the share of
such deviations the bus has seen last (:mod:`busd.planner.roads_now`).
When the bus stands at a place of the plan (the tracker's open visit: :class:`Progress`)
it counts as being there.

Energy: the model's kWh per km at the outside temperature, weighed by the cost per km the
bus has learned for each road of the itinerary still ahead
(:meth:`EnergyModel.road_energy`); on site, the model's kW; both as the SOC spends them
(:meth:`EnergyModel.pack_factor`: the pack's losses on top of the kWh at its terminals).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from busd.config import PlannerConfig
from busd.event_catalog import Item as Item  # re-exported: the itinerary entry of the events
from busd.plan import Charger, Plan, haversine_m
from busd.planner.energy import Climate, EnergyModel
from busd.planner.model import ChargeParams, ChargerNode, Evaluation, Instance, StopNode, evaluate


def initial_itinerary(plan: Plan) -> tuple[Item, ...]:
    """The plan's stops in order, with a planned charging stop where the office put it."""
    items = [Item(kind="stop", id=s.id, minutes=s.planned_min) for s in plan.stops]
    for planned in plan.charging:
        charge = Item(kind="charge", id=planned.charger, minutes=planned.minutes)
        pos = next((k + 1 for k, i in enumerate(items) if i.id == planned.after), 0)
        items.insert(pos, charge)
    return tuple(items)


def plan_leg_km(plan: Plan, a: str | None, b: str | None) -> float | None:
    """The plan's own length of the road from ``a`` to ``b``, when it gives one: a stop's
    ``leg_km`` from its predecessor in the plan, ``return_leg_km`` from the last stop home."""
    for k, s in enumerate(plan.stops):
        if s.id == b and s.leg_km is not None:
            return s.leg_km if (plan.stops[k - 1].id if k else plan.depot.id) == a else None
    if b == plan.depot.id and plan.stops and a == plan.stops[-1].id:
        return plan.depot.return_leg_km
    return None


@dataclass(frozen=True)
class Progress:
    """The day's progress as the tracker (busd.monitoring.tracker) announced it."""

    done: frozenset[str] = frozenset()  # stops and chargers visited and left
    at: str | None = None  # stop or charger where the bus is on a visit now
    arrived: float | None = None  # epoch s: when that visit began
    place: str | None = None  # any plan place the bus stands at (the depot too)
    on_road: bool = False  # left a place of the plan (the depot too), not yet at another


def service_elapsed_min(plan: Plan, progress: Progress, now: float) -> float:
    """Minutes the visit in progress has served so far: since the bus arrived, or since the
    stop's arrival window opened when it came early (negative while it waits for the window).

    An itinerary's minutes at a stop are minutes of service, as the driver counts them: from
    the window's opening (residents come then), not from the arrival. Counted from the
    arrival, the wait would be taken for service, and the driver, still serving, would stay
    on past what the planner projects.
    """
    if progress.arrived is None:
        return 0.0
    start = progress.arrived
    stop = next((s for s in plan.stops if s.id == progress.at), None)
    if stop is not None and stop.window is not None:
        start = max(start, plan.at(stop.window.earliest))
    return (now - start) / 60


@dataclass(frozen=True)
class Situation:
    now: float
    soc: float
    outside_temp: float
    lat: float
    lon: float
    charging_kw: float | None = None  # power into the pack while the charger says charging


@dataclass(frozen=True)
class Built:
    instance: Instance
    node_ids: tuple[str, ...]  # node -> place id ("" for here, depot id last)
    active_seq: tuple[int, ...]
    active_minutes: dict[int, float]
    reserve_pct: float
    margin_pct: float
    site_kw: float
    drive_kwh_per_km: float
    names: dict[str, str] = field(default_factory=dict)
    climate: Climate = "heating"  # what the weather makes the bus spend on (the reasons say)

    def node(self, place_id: str) -> int:
        return self.node_ids.index(place_id)

    def project(self) -> Evaluation:
        return evaluate(self.instance, self.active_seq, self.active_minutes)


def _here(plan: Plan, progress: Progress) -> str | None:
    """The plan place the bus stands at, if any: the tracker's visit, not a geofence here."""
    if progress.place in {p.id for p in [plan.depot, *plan.stops, *plan.chargers]}:
        return progress.place
    return None


def _charging_at(
    here: str | None, chargers: dict[str, Charger], progress: Progress, sit: Situation
) -> str | None:
    """The plan's charger the bus is charging at now, if any.

    Charging anywhere else (a socket at a stop or at the depot) has no place in the
    model: it shows as the SOC rising, reading by reading.
    """
    if not sit.charging_kw or sit.charging_kw <= 0 or here not in chargers:
        return None
    return here if here not in progress.done else None


def _under_way(charger: Charger, sit: Situation, cfg: PlannerConfig, site_kw: float
               ) -> ChargerNode:
    """A charging session in progress: the power measured now less what the bus uses
    standing (the charger feeds the heating first), already plugged in (no overhead), and
    no opening hours to wait for or to miss."""
    assert sit.charging_kw is not None
    power = max(1.0, sit.charging_kw - site_kw)
    if sit.soc > cfg.charge_taper_pct:
        # The model tapers above taper_pct by itself: undo the taper already in the reading.
        k = (1 - cfg.charge_taper_floor) / max(1e-9, 100.0 - cfg.charge_taper_pct)
        power /= max(cfg.charge_taper_floor, 1 - k * (sit.soc - cfg.charge_taper_pct))
    return ChargerNode(id=charger.id, power_kw=power, opens=sit.now, closes=sit.now + 86400.0,
                       overhead_min=0.0)


def kwh_to_spend(drive_kwh_per_km: float, site_kw: float, km: float,
                 minutes: Iterable[float]) -> float:
    """What an itinerary still spends (SOC kWh): its km on the road, its minutes on site."""
    return drive_kwh_per_km * km + site_kw * sum(minutes) / 60


def build(
    plan: Plan,
    itinerary: Sequence[Item],
    progress: Progress,
    sit: Situation,
    energy: EnergyModel,
    cfg: PlannerConfig,
) -> Built:
    stops_by_id = {s.id: s for s in plan.stops}
    chargers_by_id = {c.id: c for c in plan.chargers}
    active = [i for i in itinerary if i.id not in progress.done]
    here = _here(plan, progress)
    charging_at = _charging_at(here, chargers_by_id, progress, sit)
    if charging_at is not None:
        # Charging now: that stop is under way, first, whether the itinerary had it (perhaps
        # after a stop not yet served) or the driver plugged in on their own.
        under_way = next((i for i in active if i.id == charging_at),
                         Item(kind="charge", id=charging_at, minutes=0.0))
        active = [under_way, *(i for i in active if i.id != charging_at)]
    order: list[str] = [i.id for i in active if i.kind == "stop"]
    skipped = [s.id for s in plan.stops if s.id not in order and s.id not in progress.done]
    if progress.at in order:  # a visit in progress is always first
        order.remove(progress.at)
        order.insert(0, progress.at)
    stop_ids = order + skipped
    # A visit in progress: the service left of it, and the wait for its window if the bus
    # came early (the bus stands, heated, all that time).
    elapsed = service_elapsed_min(plan, progress, sit.now)

    stop_nodes: list[StopNode] = []
    active_minutes_by_id = {i.id: i.minutes for i in active if i.kind == "stop"}
    # The residents of a visit under way are already waiting: its minutes are the last to
    # go, after every later stop's above their minimum (they can still be told), as if it
    # were the most important stop of the day.
    first_priority = max((s.priority for s in plan.stops), default=0) + 1
    for index, sid in enumerate(stop_ids):
        s = stops_by_id[sid]
        in_progress = sid == progress.at
        spent = elapsed if in_progress else 0.0
        stop_nodes.append(
            StopNode(
                id=sid, index=index,
                planned_min=max(0.0, s.planned_min - spent),
                min_min=max(0.0, s.min_min - spent),
                priority=first_priority if in_progress else s.priority, must=s.must_serve,
                latest=plan.at(s.window.latest) if s.window is not None else None,
                in_progress=in_progress,
            )
        )
    # A charger the bus has already charged at and left is not offered again: the
    # itinerary knows places by id, so a second charge there would be taken as done
    # and never counted (the planner would propose it again and again).
    charger_list: list[Charger] = [c for c in plan.chargers if c.id not in progress.done]
    drive = energy.drive_kwh_per_km(sit.outside_temp)
    site = energy.site_kw(sit.outside_temp)
    # The loads the charger feeds (kW at the pack's terminals), before the SOC they cost.
    loads = site
    # The model's kWh are the terminals'; the SOC falls by the pack's own losses more.
    drive *= energy.pack_factor("drive")
    site *= energy.pack_factor("site")
    # Into the pack: what the charger gives less the heating it feeds, at most what the
    # pack takes (the charger covers the loads on top of that when it can).
    charger_nodes = [
        _under_way(c, sit, cfg, loads) if c.id == charging_at else ChargerNode(
            id=c.id, power_kw=max(1.0, min(c.power_kw - loads, cfg.max_charge_kw)),
            opens=plan.at(c.opens), closes=plan.at(c.closes),
        )
        for c in charger_list
    ]
    node_ids = ("", *stop_ids, *(c.id for c in charger_list), plan.depot.id)
    places = {plan.depot.id: plan.depot, **stops_by_id, **chargers_by_id}
    road = energy.road_factor
    overrun = energy.road_overrun

    def km(a: str, b: str) -> float:
        if a == b:
            return 0.0
        pa, pb = places[a], places[b]
        return energy.expected_km(
            a, b, plan_km=plan_leg_km(plan, a, b),
            straight_km=haversine_m(pa.lat, pa.lon, pb.lat, pb.lon) / 1000)

    def km_from_here(b: str) -> float:
        if here is not None and here in places:
            return km(here, b)
        t = places[b]
        return haversine_m(sit.lat, sit.lon, t.lat, t.lon) / 1000 * road * overrun

    ids = node_ids
    dist = tuple(
        tuple(
            0.0 if i == j else (km_from_here(b) if i == 0 else (0.0 if j == 0 else km(a, b)))
            for j, b in enumerate(ids)
        )
        for i, a in enumerate(ids)
    )
    def inst_is_charger(v: int) -> bool:
        return len(stop_ids) < v < len(ids) - 1

    # Active itinerary as nodes, with its minutes (a visit in progress: what is left of it).
    active_seq: list[int] = []
    minutes: dict[int, float] = {}
    if progress.at in order:
        v = 1
        active_seq.append(v)
        minutes[v] = max(0.0, active_minutes_by_id.get(progress.at, 0.0) - elapsed)
    for item in active:
        if item.id == progress.at and progress.at in order:
            continue  # the visit in progress, already first
        v = ids.index(item.id)
        active_seq.append(v)
        if item.kind == "stop":
            minutes[v] = item.minutes
    legs = list(zip([0, *active_seq], [*active_seq, len(ids) - 1], strict=False))
    # The instance has one kWh per km: the bus's average, weighed by what a km costs on
    # each road still ahead (slow gravel less than fast asphalt), the itinerary's roads.
    ahead_km = sum(dist[a][b] for a, b in legs)
    if ahead_km > 0:
        drive *= sum(
            dist[a][b] * (energy.road_energy(here or "", ids[b], sit.outside_temp) if a == 0
                          else energy.road_energy(ids[a], ids[b], sit.outside_temp))
            for a, b in legs
        ) / ahead_km
    margin = energy.margin_pct(kwh_to_spend(drive, site, ahead_km, minutes.values()))
    # After a charging stop of the itinerary, the line needs a margin for the energy after
    # it only: the charge makes up for whatever the model got wrong before it. So the charge
    # the projection shows at noon is the one the bus will take, not one that shrinks as
    # the day's margin does.
    after_charge: float | None = None
    first_charge = next((k for k, v in enumerate(active_seq) if inst_is_charger(v)), None)
    if first_charge is not None:
        rest = [*active_seq[first_charge:], len(ids) - 1]
        after_kwh = kwh_to_spend(drive, site,
                                 sum(dist[a][b] for a, b in itertools.pairwise(rest)),
                                 (minutes.get(v, 0.0) for v in rest))
        after_charge = cfg.reserve_pct + energy.margin_pct(after_kwh)
    inst = Instance(
        now=sit.now,
        soc_pct=sit.soc,
        capacity_kwh=cfg.capacity_kwh,
        threshold_pct=cfg.reserve_pct + margin,
        drive_kwh_per_km=drive,
        site_kw=site,
        speed_kmh=cfg.speed_kmh,
        stops=tuple(stop_nodes),
        chargers=tuple(charger_nodes),
        return_by=plan.at(plan.depot.return_by),
        dist=dist,
        charge=ChargeParams(
            max_pct=cfg.charge_max_pct, taper_pct=cfg.charge_taper_pct,
            taper_floor=cfg.charge_taper_floor, overhead_min=cfg.charge_overhead_min,
            buffer_pct=cfg.charge_buffer_pct,
        ),
        step_min=cfg.visit_step_min,
        reorder_penalty_min=cfg.reorder_penalty_min,
        after_charge_threshold_pct=after_charge,
    )
    names = {p.id: p.name for p in places.values()}
    return Built(
        inst, ids, tuple(active_seq), minutes, cfg.reserve_pct, margin, site, drive, names,
        energy.climate(sit.outside_temp),
    )


def itinerary_of(built: Built, ev: Evaluation, progress: Progress, elapsed_min: float) -> tuple[
    Item, ...
]:
    """An evaluated sequence back as itinerary items (a visit in progress: its full length)."""
    items = []
    for p in ev.points[:-1]:
        pid = built.node_ids[p.node]
        if built.instance.is_charger(p.node):
            items.append(Item(kind="charge", id=pid, minutes=round(p.minutes, 1)))
        else:
            m = p.minutes + (elapsed_min if pid == progress.at else 0.0)
            items.append(Item(kind="stop", id=pid, minutes=round(m, 1)))
    return tuple(items)
