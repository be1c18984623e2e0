"""What the scenario runner shows of a day in progress (``busd demo``'s progress line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Progress:
    """What the terminal shows; handed to the ``progress`` callback about twice a second."""

    now: float
    start: float
    end: float
    phase: str
    place: str
    target: str | None
    soc: float
    speed_kmh: float
    plan_version: int | None
    plan_changes: int
    backlog: int | None
    records: int
    daemon_running: bool
    faults_active: list[str]


def plan_version(document: Any) -> int | None:
    """The active plan's version in the office's view of the retained ``.../plan``.

    That view is the planner's document (itinerary, projection, proposal); the
    plan itself, with its version, is under ``"plan"``.
    """
    if not isinstance(document, dict):
        return None
    plan = document.get("plan")
    version = plan.get("version") if isinstance(plan, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
