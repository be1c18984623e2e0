"""Teaches the planner's energy model from the tracker's completed legs and visits.

Sits between the tracker and the event emitter: every event passes through
unchanged; a completed leg or a finished visit with its figures also updates
the model (driving kWh/km, on-site kW, both against outside temperature), which
is then saved so that learning survives restarts.
"""

from __future__ import annotations

import structlog

from busd.event_catalog import DailyReport, Event, LegCompleted, VisitEnded
from busd.planner.component import Planner
from busd.ports import EventEmitter

log = structlog.get_logger("busd.planner.learning")


class LearningEmitter:
    """An EventEmitter that forwards everything and learns from legs and visits."""

    def __init__(self, *, planner: Planner, downstream: EventEmitter) -> None:
        self._planner = planner
        self._downstream = downstream
        self.learned = 0

    def emit(self, event: Event) -> None:
        self._downstream.emit(event)
        if self._learn(event):
            self.learned += 1
            self._planner.save_energy()

    def report(self, report: DailyReport) -> None:
        self._downstream.report(report)

    def _learn(self, event: Event) -> bool:
        if not isinstance(event, LegCompleted | VisitEnded):
            return False
        temp = event.temp_c
        if temp is None or event.gap_s or event.status != "closed":
            return False  # no temperature, or figures with a data gap: not a lesson
        model = self._planner.energy_model
        net = event.out_kwh - event.regen_kwh
        if isinstance(event, LegCompleted):
            return bool(event.km) and model.learn_leg(event.km, net, temp)
        if event.place_kind in ("stop", "unplanned"):
            return model.learn_visit(event.duration_min, net, temp)
        return False
