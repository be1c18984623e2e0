"""Teaches the planner's energy model from the tracker's completed legs and visits.

A subscriber of the tracker (:class:`~busd.ports.EventSubscriber`): a completed
leg or a finished visit with its figures updates the model (driving kWh/km,
on-site kW, both against outside temperature), which is then saved so that
learning survives restarts.
"""

from __future__ import annotations

import structlog

from busd.event_catalog import Event, LegCompleted, VisitEnded
from busd.planner.component import Planner
from busd.planner.energy import EnergyModel

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
        return learn_from(self._planner.energy_model, event)


def learn_from(model: EnergyModel, event: Event) -> bool:
    """Teach ``model`` one completed leg or stop visit; False when it is not a lesson."""
    if not isinstance(event, LegCompleted | VisitEnded):
        return False
    net = event.out_kwh - event.regen_kwh
    if isinstance(event, LegCompleted):
        return learn_leg(model, km=event.km, net_kwh=net, temp_c=event.temp_c,
                         gap_s=event.gap_s, status=event.status)
    return learn_visit(model, minutes=event.duration_min, net_kwh=net, temp_c=event.temp_c,
                       gap_s=event.gap_s, status=event.status, place_kind=event.place_kind)


# The rules of what is a lesson, as plain figures: the bus applies them to its tracker's
# events, the office (office/schedule) to the same legs and visits in its archive, so the
# office's copy of a bus's model learns exactly what the bus learned.


def learn_leg(model: EnergyModel, *, km: float, net_kwh: float, temp_c: float | None,
              gap_s: float, status: str) -> bool:
    """A completed leg: True when the model learned from it."""
    if temp_c is None or gap_s or status != "closed":
        return False  # no temperature, or figures with a data gap: not a lesson
    return bool(km) and model.learn_leg(km, net_kwh, temp_c)


def learn_visit(model: EnergyModel, *, minutes: float, net_kwh: float, temp_c: float | None,
                gap_s: float, status: str, place_kind: str | None) -> bool:
    """A finished visit: True when the model learned from it."""
    if temp_c is None or gap_s or status != "closed":
        return False
    if place_kind in ("stop", "unplanned"):
        return model.learn_visit(minutes, net_kwh, temp_c)
    return False
