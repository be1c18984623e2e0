"""Charging under way: the projection counts the energy coming in, and the charging stop
is treated as the one in progress (first, at the power measured, already plugged in)."""

from __future__ import annotations

import copy
import tomllib
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from busd import signals as sig
from busd.config import PlannerConfig
from busd.plan import Plan, parse_plan
from busd.planner.component import Planner
from busd.planner.core import PlannerCore
from busd.planner.model import charge_hours
from busd.planner.projection import Situation
from tests.progress_helpers import serve
from tests.test_planner_component import feed, make
from tests.test_planner_scenarios import PLAN_FILE, pending


@pytest.fixture
def raw() -> dict[str, Any]:
    return tomllib.loads(PLAN_FILE.read_text())


def at_preili(plan: Plan, soc: float, charging_kw: float | None) -> Situation:
    preili = next(c for c in plan.chargers if c.id == "preili")
    return Situation(plan.at(time(12, 10)), soc, -12.0, preili.lat, preili.lon,
                     charging_kw=charging_kw)


def day(plan: Plan, done: tuple[str, ...] = ("rozupe", "rudzati")) -> PlannerCore:
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(plan.depot.leave_at))
    serve(core, *done)
    # The tracker's word: the bus stands at Preiļi since 12:09.
    core.visit_started("preili", "charger", plan.at(time(12, 9)))
    return core


def test_plugging_in_on_the_drivers_own_counts_the_charge_and_proposes_nothing(
    raw: dict[str, Any],
) -> None:
    plan = parse_plan(raw)
    # Without the charger's word, standing at Preiļi with 35 % looks like a day to cut short.
    idle = day(plan)
    idle.observe(at_preili(plan, 35, None))
    assert idle.projection is not None and not idle.projection.safe
    assert idle.pending is not None
    # Charging at 40 kW: the charge is the stop under way, and the day is safe with it.
    core = day(plan)
    core.observe(at_preili(plan, 35, 40.0))
    assert core.projection is not None and core.projection.safe
    first = core.projection.points[0]
    assert (first.id, first.kind) == ("preili", "charge")
    assert first.soc_arrive == 35 and first.soc_depart > 50
    assert core.pending is None


def test_a_planned_charge_taken_early_comes_first_in_the_projection(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["charging"] = [{"charger": "preili", "after": "turki", "minutes": 40}]
    plan = parse_plan(data)
    core = day(plan)
    core.observe(at_preili(plan, 35, 40.0))
    assert core.projection is not None
    assert [p.id for p in core.projection.points][:2] == ["preili", "turki"]


def test_arriving_at_a_planned_charger_keeps_the_charge_in_the_projection(
    raw: dict[str, Any],
) -> None:
    # Reached (progress says "at preili") but not plugged in yet: the charge still counts.
    data = copy.deepcopy(raw)
    data["charging"] = [{"charger": "preili", "after": "rudzati", "minutes": 40}]
    plan = parse_plan(data)
    core = day(plan)
    core.observe(at_preili(plan, 35, None))
    assert core.projection is not None
    first = core.projection.points[0]
    assert (first.id, first.kind) == ("preili", "charge")
    assert first.soc_depart > first.soc_arrive


def test_the_measured_power_sets_the_time_and_there_is_no_plugging_in_overhead(
    raw: dict[str, Any],
) -> None:
    plan = parse_plan(raw)
    slow, fast = day(plan), day(plan)
    slow.observe(at_preili(plan, 35, 11.0))
    fast.observe(at_preili(plan, 35, 40.0))
    assert slow.projection is not None and fast.projection is not None
    p_slow, p_fast = slow.projection.points[0], fast.projection.points[0]
    assert p_slow.minutes > 3 * p_fast.minutes
    # the session is under way: its minutes are the charging alone, at the power measured
    # less the heating the charger feeds first
    built = fast._build(at_preili(plan, 35, 40.0))
    hours = charge_hours(built.instance, 40.0 - built.site_kw, 35, p_fast.soc_depart)
    assert p_fast.minutes == pytest.approx(hours * 60, abs=0.1)


def charging_kw(planner: Planner) -> float | None:
    situation = planner._situation()
    assert situation is not None  # the state has a SOC
    return situation.charging_kw


async def test_the_component_reads_the_chargers_state_and_power(tmp_path: Path) -> None:
    planner, state, clock, _sink = make(tmp_path)
    feed(state, 40.0, 56.2944, 26.7246)
    assert charging_kw(planner) is None  # nothing from the charger
    state.update(sig.CHARGER_STATE, "charging", source="test")
    state.update(sig.CHARGER_POWER, 38.5, source="test")
    assert charging_kw(planner) == 38.5
    state.update(sig.CHARGER_STATE, "complete", source="test")
    assert charging_kw(planner) is None
    state.update(sig.CHARGER_STATE, "charging", source="test")
    await clock.advance(state.freshness(sig.CHARGER_POWER) + 1)  # the charger went silent
    feed(state, 41.0, 56.2944, 26.7246)
    assert charging_kw(planner) is None


def charge_accepted_at_turki(plan: Plan) -> PlannerCore:
    """Rožupe and Rudzāti served, the bus arrives at Turki at 12:10 with 56 % at −12 °C:
    the planner proposes a charge at Preiļi, and the driver accepts it."""
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(plan.depot.leave_at))
    serve(core, "rozupe", "rudzati")
    turki = plan.stop("turki")
    core.visit_started("turki", "stop", plan.at(time(12, 10)))
    core.observe(Situation(plan.at(time(12, 10)), 56, -12.0, turki.lat, turki.lon))
    proposal = pending(core)
    assert proposal is not None and proposal.kind == "charge"
    core.acknowledge(proposal.id, plan.at(time(12, 11)))
    return core


def test_an_accepted_charge_lasts_what_the_projection_needs_now_without_a_new_proposal(
    raw: dict[str, Any],
) -> None:
    plan = parse_plan(raw)
    core = charge_accepted_at_turki(plan)
    turki = plan.stop("turki")
    proposed = next(i.minutes for i in core.itinerary if i.kind == "charge")
    # Less energy left than the proposal counted on: the charge lengthens, and the driver
    # is not asked again (the length is not part of the proposal's shape).
    out = core.observe(Situation(plan.at(time(12, 12)), 52, -12.0, turki.lat, turki.lon))
    longer = next(i.minutes for i in core.itinerary if i.kind == "charge")
    assert longer > proposed + 1
    assert core.pending is None and [o.name for o in out if o.kind == "event"] == []
    assert core.projection is not None
    charge = next(p for p in core.projection.points if p.kind == "charge")
    assert longer == pytest.approx(charge.minutes, abs=0.1)


def test_once_plugged_in_the_charge_never_shortens_on_a_wavering_reading(
    raw: dict[str, Any],
) -> None:
    plan = parse_plan(raw)
    core = charge_accepted_at_turki(plan)
    serve(core, "turki")
    core.visit_started("preili", "charger", plan.at(time(12, 9)))

    def charge_minutes(kw: float) -> float:
        core.observe(at_preili(plan, 35, kw))
        return next(i.minutes for i in core.itinerary if i.kind == "charge")

    slow = charge_minutes(30.0)
    assert charge_minutes(45.0) == slow  # a better reading: the driver keeps charging
    assert charge_minutes(15.0) > slow + 1  # a worse one: longer


def test_a_charge_under_way_is_not_proposed_for_dropping_when_the_day_turns_out_better(
    raw: dict[str, Any],
) -> None:
    """Plugged in, with the day now well above its line, the charge is the stop under way:
    its length is the itinerary's (it only lengthens), and the driver, standing at the
    charger, is not asked to "drop" a charge that is nearly done. On the demo's charger
    day this proposal came four minutes before the driver unplugged anyway."""
    plan = parse_plan(raw)
    core = charge_accepted_at_turki(plan)
    serve(core, "turki")
    core.visit_started("preili", "charger", plan.at(time(13, 30)))
    preili = next(c for c in plan.chargers if c.id == "preili")
    for minutes_in, soc in ((5, 40.0), (25, 55.0), (40, 65.0)):
        core.observe(Situation(plan.at(time(13, 30)) + 60 * minutes_in, soc, -12.0,
                               preili.lat, preili.lon, charging_kw=40.0))
    assert core.projection is not None
    # Without the rest of the charge the day would keep the restore line: the old trigger.
    assert core.projection.depot_margin_pct >= PlannerConfig().restore_margin_pct
    assert pending(core) is None
    assert [i.kind for i in core.itinerary].count("charge") == 1
