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
    net = event.out_kwh - event.regen_kwh
    soc_used = None if event.soc_start is None or event.soc_end is None \
        else event.soc_start - event.soc_end
    if isinstance(event, LegCompleted):
        return learn_leg(model, km=event.km, net_kwh=net, temp_c=event.temp_c,
                         gap_s=event.gap_s, status=event.status, plan=plan,
                         road=_road_of(plan, event.from_place, event.to_place),
                         odometer=event.km_source == "odometer", soc_used=soc_used)
    return learn_visit(model, minutes=event.duration_min, net_kwh=net, temp_c=event.temp_c,
                       gap_s=event.gap_s, status=event.status, place_kind=event.place_kind,
                       soc_used=soc_used)


# The rules of what is a lesson, as plain figures: the bus applies them to its tracker's
# events, the office (office/schedule) to the same legs and visits in its archive, so the
# office's copy of a bus's model learns exactly what the bus learned.


def learn_leg(model: EnergyModel, *, km: float, net_kwh: float, temp_c: float | None,
              gap_s: float, status: str, plan: Plan | None = None,
              road: tuple[str, str] | None = None, odometer: bool = True,
              soc_used: float | None = None) -> bool:
    """A completed leg: True when the model learned from it.

    On a ``road`` between two places of the day's ``plan`` (odometer km), the leg also
    teaches that road's cost per km, its length as it is now (road works that last), and
    the road factor (km per straight-line km) or, where the plan gives the leg's length,
    the road overrun (km per plan km)."""
    if temp_c is None or gap_s or status != "closed":
        return False  # no temperature, or figures with a data gap: not a lesson
    planned = straight = None
    if plan is not None and road is not None and odometer:
        planned = plan_leg_km(plan, *road)
        great_circle = _great_circle_km(plan, *road)
        if km >= 1.0:  # the road as it is now, against the long run before this leg
            model.learn_road(*road, km, plan_km=planned, straight_km=great_circle)
        straight = great_circle if planned is None else None
    learned = bool(km) and model.learn_leg(km, net_kwh, temp_c, great_circle_km=straight,
                                           road=road if plan is not None else None,
                                           soc_used=soc_used)
    if planned is not None:
        learned = model.learn_overrun(km, planned) or learned
    return learned


def learn_visit(model: EnergyModel, *, minutes: float, net_kwh: float, temp_c: float | None,
                gap_s: float, status: str, place_kind: str | None,
                soc_used: float | None = None) -> bool:
    """A finished visit: True when the model learned from it."""
    if temp_c is None or gap_s or status != "closed":
        return False
    if place_kind in ("stop", "unplanned"):
        return model.learn_visit(minutes, net_kwh, temp_c, soc_used=soc_used)
    return False


def _road_of(plan: Plan | None, a: str | None, b: str | None) -> tuple[str, str] | None:
    """The leg's road as two places of the plan (None: it began or ended elsewhere)."""
    if plan is None or a is None or b is None or a == b:
        return None
    places = {p.id for p in (plan.depot, *plan.stops, *plan.chargers)}
    return (a, b) if a in places and b in places else None


def _great_circle_km(plan: Plan, a: str, b: str) -> float:
    """The straight line between two places of the plan."""
    places = {p.id: p for p in (plan.depot, *plan.stops, *plan.chargers)}
    pa, pb = places[a], places[b]
    return haversine_m(pa.lat, pa.lon, pb.lat, pb.lon) / 1000
