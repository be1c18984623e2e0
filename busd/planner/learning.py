"""Teaches the planner's energy model from the tracker's completed legs and visits.

Sits between the tracker and the event emitter: every event passes through
unchanged; a completed leg or a finished visit with its figures also updates
the model (driving kWh/km, on-site kW, both against outside temperature), which
is then saved so that learning survives restarts.
"""

from __future__ import annotations

from typing import Any

import structlog

from busd.planner.component import Planner
from busd.ports import EventEmitter

log = structlog.get_logger("busd.planner.learning")


class LearningEmitter:
    """An EventEmitter that forwards everything and learns from legs and visits."""

    def __init__(self, *, planner: Planner, downstream: EventEmitter) -> None:
        self._planner = planner
        self._downstream = downstream
        self.learned = 0

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        self._downstream.emit(kind, payload)
        if self._learn(kind, payload):
            self.learned += 1
            self._planner.save_energy()

    def report(self, kind: str, payload: dict[str, Any]) -> None:
        self._downstream.report(kind, payload)

    def _learn(self, kind: str, row: dict[str, Any]) -> bool:
        temp = row.get("temp_c")
        if temp is None or row.get("gap_s", 0) or row.get("status") not in ("closed", None):
            return False  # no temperature, or figures with a data gap: not a lesson
        model = self._planner.energy_model
        net = (row.get("out_kwh") or 0.0) - (row.get("regen_kwh") or 0.0)
        if kind == "leg_completed" and row.get("km"):
            return model.learn_leg(float(row["km"]), net, float(temp))
        if kind == "visit_ended" and row.get("place_kind") in ("stop", "unplanned"):
            return model.learn_visit(float(row.get("duration_min") or 0.0), net, float(temp))
        return False
