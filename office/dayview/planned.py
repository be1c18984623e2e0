"""The planned times of a plan as the bus loaded it: its planner's own projection.

A day on which the driver was never offered a proposal has no projection in the archive; the
plan the bus loaded (its ``plan_changed`` carries it) is projected here with the bus's planner
(:mod:`busd.planner.projection`, the same code and default settings), from the depot at
``depot.leave_at`` on the plan's day. Only the times and minutes are used; the SOC the bus
set out with and the weather are not known here (full, 10 °C are assumed).
"""

from __future__ import annotations

from datetime import datetime

from busd.config import PlannerConfig
from busd.event_catalog import PointDoc
from busd.plan import Plan
from busd.planner.energy import EnergyModel
from busd.planner.projection import Progress, Situation, build, initial_itinerary
from busd.planner.proposal import projection_doc

_SOC_PCT = 100.0
_OUTSIDE_C = 10.0


def planned_points(plan: Plan, config: PlannerConfig | None = None) -> dict[str, PointDoc]:
    """Each stop's (and charger's) planned arrival, departure and minutes, by place id."""
    cfg = config or PlannerConfig()
    leave = datetime.combine(plan.date, plan.depot.leave_at, tzinfo=plan.zone).timestamp()
    situation = Situation(now=leave, soc=_SOC_PCT, outside_temp=_OUTSIDE_C,
                          lat=plan.depot.lat, lon=plan.depot.lon)
    built = build(plan, initial_itinerary(plan), Progress(place=plan.depot.id), situation,
                  EnergyModel(cfg), cfg)
    doc = projection_doc(built, built.project(), leave)
    return {p.id: p for p in doc.points if p.kind != "depot"}
