"""A bus's day from the office archive: the plan against what happened, typed.

:func:`bus_day` reads one bus's local day (split at the municipality's midnight) from either
archive back end and gives a :class:`DayView`: each planned stop with its arrival, departure and
outcome (served, shortened, skipped, with the planner's reason as a code the page renders in
the staff's language), the SOC series with the reserve line and every accepted plan's
projection, legs, visits, charging sessions, alerts and the gaps in the data.
"""

from office.dayview.build import bus_day
from office.dayview.models import (
    DayView,
    PlanEvent,
    ProjectionCurve,
    ReasonNote,
    SocPoint,
    StopLine,
)
from office.dayview.reasons import reason_text

__all__ = ["DayView", "PlanEvent", "ProjectionCurve", "ReasonNote", "SocPoint", "StopLine",
           "bus_day", "reason_text"]
