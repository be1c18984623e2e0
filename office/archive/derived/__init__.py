"""The derived tables: visits, legs, charging sessions, daily reports, plan changes, alerts.

Filled from the bus's event records in the same transaction that archives them
(:mod:`office.archive.derived.derive` reads them with the event catalogue), rebuilt from the
records on demand, and read as typed rows (:mod:`office.archive.derived.models`).
"""

from office.archive.derived.models import (
    Alert,
    ChargingSession,
    DayReport,
    Leg,
    PlanChange,
    Visit,
    VisitServices,
)
from office.archive.derived.reads import RebuildResult

__all__ = ["Alert", "ChargingSession", "DayReport", "Leg", "PlanChange", "RebuildResult",
           "Visit", "VisitServices"]
