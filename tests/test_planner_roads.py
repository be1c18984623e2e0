"""The roads as the bus learns them: detours to expect, and what a km costs on each road.

The noon projection (issue 17) is a prediction of the day: it expects the detours the bus
has met (a learned road factor or overrun, not the best case of no detour) and prices
each road still ahead at its own cost per km (a slow gravel road spends less than a fast
asphalt one), learned from the bus's own legs. A road whose last drive ran longer (road
works) is expected so again, once the bus has seen such detours last.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from busd.config import PlannerConfig
from busd.event_catalog import LegCompleted
from busd.plan import Plan, haversine_m, load_plan
from busd.planner.energy import EnergyModel
from busd.planner.learning import learn_from
from busd.planner.projection import (
    Progress,
    Situation,
    build,
    initial_itinerary,
    plan_leg_km,
)
from tests.monitoring_helpers import leg_event

REPO = Path(__file__).resolve().parents[1]
CFG = PlannerConfig()


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(REPO / "config" / "plans" / "livani-winter.toml")


def straight_km(plan: Plan, a: str, b: str) -> float:
    places = {p.id: p for p in (plan.depot, *plan.stops, *plan.chargers)}
    return haversine_m(places[a].lat, places[a].lon, places[b].lat, places[b].lon) / 1000


def road_leg(a: str, b: str, km: float, kwh: float) -> LegCompleted:
    return leg_event(id=f"leg-{a}-{b}", km=km, out_kwh=kwh, temp_c=-5.0, from_place=a,
                     to_place=b)


def depot_soc(plan: Plan, energy: EnergyModel) -> float:
    depot = plan.depot
    sit = Situation(plan.at(depot.leave_at), 90.0, -5.0, depot.lat, depot.lon)
    built = build(plan, initial_itinerary(plan), Progress(place=depot.id), sit, energy, CFG)
    return built.project().depot_soc


def test_detours_met_on_the_roads_are_expected_in_the_projection(plan: Plan) -> None:
    model = EnergyModel(CFG)
    first, second = plan.depot.id, plan.stops[0].id
    gc = straight_km(plan, first, second)
    rate = model.drive_kwh_per_km(-5.0)
    # One long detour moves the expectation a little: a day's detour is luck.
    assert learn_from(model, road_leg(first, second, gc * 2.0, gc * 2.0 * rate), plan)
    assert CFG.road_factor < model.road_factor < CFG.road_factor + (2.0 - CFG.road_factor) / 4
    # Week after week of roads a fifth longer than the seed says: that is the rule.
    for _ in range(150):
        learn_from(model, road_leg(first, second, gc * 1.3 * 1.2, gc * 1.56 * rate), plan)
    assert model.road_factor == pytest.approx(1.3 * 1.2, rel=0.02)
    # The projection drives the longer roads: it comes home lower than with the seed.
    assert depot_soc(plan, model) < depot_soc(plan, EnergyModel(CFG)) - 2.0
    again = EnergyModel.from_dict(CFG, json.loads(json.dumps(model.to_dict())))
    assert again.road_factor == model.road_factor


def test_the_plans_own_leg_km_is_stretched_by_the_overrun_met_on_it(plan: Plan) -> None:
    stop = plan.stops[0]
    with_km = plan.model_copy(update={"stops": [stop.model_copy(update={"leg_km": 20.0}),
                                                *plan.stops[1:]]})
    assert plan_leg_km(with_km, plan.depot.id, stop.id) == 20.0
    assert plan_leg_km(with_km, plan.stops[1].id, stop.id) is None  # not the plan's leg
    model = EnergyModel(CFG)
    for _ in range(150):
        learn_from(model, road_leg(plan.depot.id, stop.id, 22.0, 22.0 * 0.4), with_km)
    assert model.road_overrun == pytest.approx(1.1, rel=0.01)
    assert model.road_factor == CFG.road_factor  # the leg had a plan length: not a lesson
    depot = plan.depot
    sit = Situation(plan.at(depot.leave_at), 90.0, -5.0, depot.lat, depot.lon)
    built = build(with_km, initial_itinerary(with_km), Progress(place=depot.id), sit, model,
                  CFG)
    assert built.instance.dist[0][built.node(stop.id)] == pytest.approx(22.0, rel=0.01)


def test_each_road_has_its_cost_per_km_and_the_days_factor_leaves_it_out(plan: Plan) -> None:
    model = EnergyModel(CFG)
    seed = model.seed_drive_kwh_per_km(-5.0)
    fast = (plan.depot.id, plan.stops[0].id)
    slow = (plan.stops[0].id, plan.stops[1].id)
    for _ in range(40):  # the slow road costs 20 % less per km, either way
        learn_from(model, road_leg(*fast, 10.0, 10.0 * seed * 1.1), plan)
        learn_from(model, road_leg(slow[1], slow[0], 10.0, 10.0 * seed * 1.1 * 0.8), plan)
    assert model.road_energy(*slow) / model.road_energy(*fast) == pytest.approx(0.8, rel=0.02)
    # A morning on the fast road at its usual cost: today is an ordinary day, the slow
    # road ahead is still cheaper (without road costs, the day would seem dearer).
    model.start_day(plan.date)
    learn_from(model, road_leg(*fast, 10.0, 10.0 * seed * 1.1), plan)
    average = model.drive_kwh_per_km(-5.0)
    assert average * model.road_energy(*fast) == pytest.approx(seed * 1.1, rel=0.02)
    assert average * model.road_energy(*slow) == pytest.approx(seed * 1.1 * 0.8, rel=0.02)
    again = EnergyModel.from_dict(CFG, json.loads(json.dumps(model.to_dict())))
    assert again.road_energy(*slow) == model.road_energy(*slow)


def test_the_projection_prices_the_roads_ahead_at_their_own_cost(plan: Plan) -> None:
    model = EnergyModel(CFG)
    seed = model.seed_drive_kwh_per_km(-5.0)
    cheap = EnergyModel(CFG)
    ids = [plan.depot.id, *(s.id for s in plan.stops), plan.depot.id]
    for _ in range(30):  # thirty days on the same roads
        for a, b in itertools.pairwise(ids):
            for m, share in ((model, 1.0), (cheap, 0.7 if a == ids[1] else 1.0)):
                learn_from(m, road_leg(a, b, 10.0, 10.0 * seed * share), plan)
    # The same bus, but one road of the day costs 30 % less: the day's km cost less, by
    # that road's share of the km ahead.
    depot = plan.depot
    sit = Situation(plan.at(depot.leave_at), 90.0, -5.0, depot.lat, depot.lon)
    day = [build(plan, initial_itinerary(plan), Progress(place=depot.id), sit, m, CFG)
           for m in (model, cheap)]
    inst = day[0].instance
    seq = [0, *day[0].active_seq, inst.depot]
    km = [inst.dist[a][b] for a, b in itertools.pairwise(seq)]
    share = km[1] / sum(km)  # the road from the first stop
    assert day[0].drive_kwh_per_km == pytest.approx(seed, rel=0.01)
    assert day[1].drive_kwh_per_km == pytest.approx(seed * (1 - 0.3 * share), rel=0.01)


def drive_days(plan: Plan, model: EnergyModel, kms: list[float], first: date) -> None:
    """One drive a day of the plan's first road, ``kms[k]`` km on day ``k``."""
    a, b = plan.depot.id, plan.stops[0].id
    for k, km in enumerate(kms):
        model.start_day(first + timedelta(days=k))
        assert learn_from(model, road_leg(a, b, km, km * 0.4), plan)


def first_road_km(plan: Plan, model: EnergyModel) -> float:
    a, b = plan.depot.id, plan.stops[0].id
    return model.expected_km(a, b, plan_km=None, straight_km=straight_km(plan, a, b))


def test_road_works_that_have_lasted_are_expected_again_and_one_clear_drive_ends_them(
    plan: Plan,
) -> None:
    gc = straight_km(plan, plan.depot.id, plan.stops[0].id)
    clear, works = gc * CFG.road_factor, gc * CFG.road_factor * 1.3
    model = EnergyModel(CFG)
    # a month of a clear road, then road works for ten days: every drive like the last
    drive_days(plan, model, [clear] * 30 + [works] * 10, date(2026, 3, 1))
    long_run = model.road_km(plan.depot.id, plan.stops[0].id, gc)
    assert long_run is not None and long_run < works * 0.97  # the long run: a few days of it
    # nine drives have shown the works last: the road is expected most of the way to them
    assert first_road_km(plan, model) > long_run + 0.7 * (works - long_run)
    # the projection drives the detour: it comes home lower than the long run says
    assert depot_soc(plan, model) < depot_soc(plan, _without_last_drives(model)) - 0.5
    # the works end: one clear drive, and the road is expected clear again
    drive_days(plan, model, [clear], date(2026, 4, 10))  # the day after
    long_run = model.road_km(plan.depot.id, plan.stops[0].id, gc)
    assert long_run is not None and long_run > clear
    assert first_road_km(plan, model) < clear + 0.5 * (long_run - clear)
    # and the model keeps it all through a restart
    again = EnergyModel.from_dict(CFG, json.loads(json.dumps(model.to_dict())))
    assert first_road_km(plan, again) == first_road_km(plan, model)


def test_detours_that_come_and_go_day_by_day_leave_the_long_run_as_it_was(plan: Plan) -> None:
    gc = straight_km(plan, plan.depot.id, plan.stops[0].id)
    clear, detour = gc * CFG.road_factor, gc * CFG.road_factor * 1.3
    model = EnergyModel(CFG)
    # a detour every other day: yesterday's road says nothing of today's
    drive_days(plan, model, [clear, detour] * 20, date(2026, 3, 1))
    long_run = model.road_km(plan.depot.id, plan.stops[0].id, gc)
    assert long_run is not None
    assert first_road_km(plan, model) == pytest.approx(long_run, rel=1e-9)


def test_a_drive_weeks_ago_says_nothing_of_the_road_today(plan: Plan) -> None:
    gc = straight_km(plan, plan.depot.id, plan.stops[0].id)
    works = gc * CFG.road_factor * 1.3
    model = EnergyModel(CFG)
    drive_days(plan, model, [gc * CFG.road_factor] * 30 + [works] * 10, date(2026, 3, 1))
    long_run = model.road_km(plan.depot.id, plan.stops[0].id, gc)
    assert long_run is not None and first_road_km(plan, model) > long_run + 1.0
    model.start_day(date(2026, 4, 9) + timedelta(days=30))  # a month after the last
    long_run = model.road_km(plan.depot.id, plan.stops[0].id, gc)
    assert long_run is not None
    assert first_road_km(plan, model) == pytest.approx(long_run, rel=1e-9)


def _without_last_drives(model: EnergyModel) -> EnergyModel:
    """``model`` as it would be had it not kept the roads' last drives."""
    data = model.to_dict()
    for key in ("last_km", "last_km_day", "persistence"):
        data.pop(key)
    return EnergyModel.from_dict(CFG, data)


def test_a_leg_of_two_roads_teaches_neither_the_roads_length_nor_its_last_drive(
    plan: Plan,
) -> None:
    """A charging stop called off as the bus arrived: the tracker saw no visit there, and
    one leg ran from the stop before to the stop after, twice the road's km. That is
    another route, not the road: the road's length and its last drive stay as they were."""
    a, b = plan.depot.id, plan.stops[0].id
    gc = straight_km(plan, a, b)
    clear = gc * CFG.road_factor
    model = EnergyModel(CFG)
    drive_days(plan, model, [clear] * 10, date(2026, 3, 1))
    known, expected = model.road_km(a, b, gc), first_road_km(plan, model)
    drive_days(plan, model, [clear * 2.0], date(2026, 3, 11))
    assert model.road_km(a, b, gc) == known
    assert first_road_km(plan, model) == expected
    assert model.road_factor == pytest.approx(CFG.road_factor, rel=0.01)
    # a detour of road works, 40 % longer, is the road's length today
    drive_days(plan, model, [clear * 1.4], date(2026, 3, 12))
    longer = model.road_km(a, b, gc)
    assert longer is not None and known is not None and longer > known
