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
    temp = event.temp_c
    if temp is None or event.gap_s or event.status != "closed":
        return False  # no temperature, or figures with a data gap: not a lesson
    net = event.out_kwh - event.regen_kwh
    if isinstance(event, LegCompleted):
        return bool(event.km) and model.learn_leg(event.km, net, temp)
    if event.place_kind in ("stop", "unplanned"):
        return model.learn_visit(event.duration_min, net, temp)
    return False
