"""A proposal that leaves the place the bus drives to as it is waits for the arrival: the
leg is driven either way, and on arrival the model has learned from it."""

from __future__ import annotations

from datetime import time

import pytest

from busd.config import PlannerConfig
from busd.event_catalog import PlanDocument
from busd.plan import Plan, load_plan
from busd.planner.core import PlannerCore
from busd.planner.projection import Situation
from tests.test_planner_scenarios import PLAN_FILE, pending


def on_the_way_to_rozupe(plan: Plan) -> tuple[PlannerCore, Situation]:
    """The bus left the depot at 07:30 and is half-way to Rožupe at 07:40."""
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(time(7, 0)))
    depot, rozupe = plan.depot, plan.stop("rozupe")
    core.visit_started(depot.id, "depot", plan.at(time(7, 0)))
    core.visit_ended(depot.id)
    halfway = Situation(plan.at(time(7, 40)), 0.0, -12.0, (depot.lat + rozupe.lat) / 2,
                        (depot.lon + rozupe.lon) / 2)
    return core, halfway


def with_soc(sit: Situation, soc: float, now: float | None = None) -> Situation:
    return Situation(sit.now if now is None else now, soc, sit.outside_temp, sit.lat, sit.lon)


@pytest.mark.parametrize("soc", [80.0, 70.0])
def test_a_cut_of_later_stops_waits_for_the_arrival(soc: float) -> None:
    plan = load_plan(PLAN_FILE)
    core, halfway = on_the_way_to_rozupe(plan)
    out = core.observe(with_soc(halfway, soc))
    assert core.projection is not None and not core.projection.safe
    assert pending(core) is None  # on the road: the leg is driven either way
    assert core.proposal_at == "rozupe"
    # The retained plan document says where the change comes, for the office.
    documents = [o.payload for o in out if isinstance(o.payload, PlanDocument)]
    assert documents and documents[-1].proposal_at == "rozupe"
    rozupe = plan.stop("rozupe")
    arrival = plan.at(time(7, 52))
    core.visit_started("rozupe", "stop", arrival)
    core.observe(Situation(arrival, soc - 2, -12.0, rozupe.lat, rozupe.lon))
    proposal = pending(core)
    assert proposal is not None and proposal.kind in ("reduce", "charge")
    assert proposal.after.safe
    assert core.proposal_at is None


def test_a_cut_of_the_stop_ahead_or_an_emergency_does_not_wait() -> None:
    plan = load_plan(PLAN_FILE)
    core, halfway = on_the_way_to_rozupe(plan)
    core.observe(with_soc(halfway, 30.0))
    proposal = pending(core)
    assert proposal is not None
    rozupe = [i.minutes for i in proposal.itinerary if i.id == "rozupe"]
    assert proposal.emergency or rozupe != [plan.stop("rozupe").planned_min]


def test_at_the_depot_a_cut_is_proposed_at_once() -> None:
    """Before the bus leaves, nothing is driven yet: the driver hears of the cut there."""
    plan = load_plan(PLAN_FILE)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(time(7, 0)))
    depot = plan.depot
    core.visit_started(depot.id, "depot", plan.at(time(7, 0)))
    core.observe(Situation(plan.at(time(7, 20)), 70.0, -12.0, depot.lat, depot.lon))
    assert pending(core) is not None


def test_a_plan_loaded_on_the_road_still_knows_the_bus_is_on_the_road() -> None:
    """The office sends a new version of the day while the bus drives to Rožupe: the bus is
    still on the road, and a cut of later stops still waits for the arrival."""
    plan = load_plan(PLAN_FILE)
    core, halfway = on_the_way_to_rozupe(plan)
    core.load(plan.model_copy(update={"version": plan.version + 1}), halfway.now,
              cause="office")
    core.observe(with_soc(halfway, 70.0))
    assert core.projection is not None and not core.projection.safe
    assert pending(core) is None and core.proposal_at == "rozupe"


def test_an_arrival_the_tracker_missed_holds_the_change_an_hour_at_most() -> None:
    """The bus stood at Rožupe off the stop's usual spot, and the tracker never said it
    arrived: an hour after it was first held, the change is proposed all the same."""
    plan = load_plan(PLAN_FILE)
    core, halfway = on_the_way_to_rozupe(plan)
    core.observe(with_soc(halfway, 70.0))
    assert pending(core) is None
    core.observe(with_soc(halfway, 66.0, now=halfway.now + 3000))
    assert pending(core) is None and core.proposal_at == "rozupe"
    core.observe(with_soc(halfway, 64.0, now=halfway.now + 3700))
    assert pending(core) is not None and core.proposal_at is None
