"""Teaches the planner's energy model from the tracker's completed legs and visits.

A subscriber of the tracker (:class:`~busd.ports.EventSubscriber`): a completed
leg or a finished visit with its figures updates the model (driving kWh/km,
on-site kW, both against outside temperature; a leg the plan gives a length for, the
road overrun), which is then saved so that learning survives restarts.
"""

from __future__ import annotations

import structlog

from busd.event_catalog import Event, LegCompleted, VisitEnded
from busd.plan import Plan, haversine_m
from busd.planner.component import Planner
from busd.planner.energy import EnergyModel
from busd.planner.projection import plan_leg_km

log = structlog.get_logger("busd.planner.learning")


class EnergyLearner:
    """Learns from the tracker's legs and visits (its subscriber)."""

    def __init__(self, *, planner: Planner) -> None:
        self._planner = planner
        self.learned = 0

    def on_event(self, event: Event) -> None:
        if self._learn(event):
            self.learned += 1
            self._planner.save_energy()

    def _learn(self, event: Event) -> bool:
        return learn_from(self._planner.energy_model, event, self._planner.core.plan)


def learn_from(model: EnergyModel, event: Event, plan: Plan | None = None) -> bool:
    """Teach ``model`` one completed leg or stop visit; False when it is not a lesson.

    With the day's ``plan``, a leg between two of its places that it gives a length for
    also teaches the road overrun (the km driven against the plan's)."""
    if not isinstance(event, LegCompleted | VisitEnded):
        return False
    temp = event.temp_c
    if temp is None or event.gap_s or event.status != "closed":
        return False  # no temperature, or figures with a data gap: not a lesson
    net = event.out_kwh - event.regen_kwh
    if isinstance(event, LegCompleted):
        road = _road_of(plan, event) if plan is not None else None
        planned = straight = None
        if plan is not None and road is not None and event.km_source == "odometer":
            planned = plan_leg_km(plan, *road)
            straight = _great_circle_km(plan, *road) if planned is None else None
        learned = bool(event.km) and model.learn_leg(event.km, net, temp,
                                                     great_circle_km=straight, road=road)
        if planned is not None:
            learned = model.learn_overrun(event.km, planned) or learned
        return learned
    if event.place_kind in ("stop", "unplanned"):
        return model.learn_visit(event.duration_min, net, temp)
    return False


def _road_of(plan: Plan, event: LegCompleted) -> tuple[str, str] | None:
    """The leg's road as two places of the plan (None: it began or ended elsewhere)."""
    places = {p.id for p in (plan.depot, *plan.stops, *plan.chargers)}
    a, b = event.from_place, event.to_place
    return (a, b) if a in places and b in places and a != b and a and b else None


def _great_circle_km(plan: Plan, a: str, b: str) -> float:
    """The straight line between two places of the plan."""
    places = {p.id: p for p in (plan.depot, *plan.stops, *plan.chargers)}
    pa, pb = places[a], places[b]
    return haversine_m(pa.lat, pa.lon, pb.lat, pb.lon) / 1000
