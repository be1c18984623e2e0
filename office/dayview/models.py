"""The day view's typed contract: what a bus's day page shows, nothing rendered yet.

Times are UTC (the page shows them in the municipality's zone); ``ReasonNote`` keeps the
planner's reason as a code with parameters, so the page renders it in the staff's language
(:func:`office.dayview.reasons.reason_text`), never by parsing the English sentence.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from busd.event_catalog import Scalar
from office.archive import Alert, ChargingSession, DayReport, Gap, Leg, Visit, VisitServices
from office.reports.labels import in_order


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class ReasonNote(_Model):
    """Why a stop got less time: a reason code with its parameters, and the bus's own
    renderings (lv, lt, en) as a fallback for a code this office does not know."""

    code: str
    params: dict[str, Scalar]
    texts: dict[str, str] = {}


StopStatus = Literal["served", "shortened", "skipped", "pending"]


class StopLine(_Model):
    """One planned stop: the plan as sent against what happened."""

    stop_id: str
    name: str
    planned_min: float | None  # None: the archive holds no plan for it (an unplanned stop)
    planned_arrival: AwareDatetime | None  # the loaded plan's projection, or the first proposal's
    planned_departure: AwareDatetime | None
    arrival: AwareDatetime | None  # the first visit's start
    departure: AwareDatetime | None  # the last visit's end (None: still there)
    minutes: float  # on site, over every visit of the day
    visits: int
    status: StopStatus
    reasons: list[ReasonNote]  # empty when served; the planner's, or the office's own code


class SocPoint(_Model):
    ts: AwareDatetime
    soc: float


class ProjectionCurve(_Model):
    """An accepted plan's projected SOC (its proposal's ``after``), from its acceptance on."""

    proposal_id: str
    kind: str
    accepted_at: AwareDatetime
    points: list[SocPoint]


class PlanEvent(_Model):
    """One plan event of the day, for the timeline: a plan loaded, a proposal made, accepted,
    superseded, withdrawn, or the bus's answer to an office plan."""

    ts: AwareDatetime
    cause: str
    version: int | None
    proposal_id: str | None
    proposal_kind: str | None
    emergency: bool
    accepted: bool | None
    reasons: list[ReasonNote]


class DayView(_Model):
    """Everything a bus's day page shows, for local day ``day`` in zone ``tz``."""

    bus: str
    day: date
    tz: str
    start: AwareDatetime  # the local day's bounds, UTC
    end: AwareDatetime
    stops: list[StopLine]
    plan_version: int | None = None  # the plan the bus loaded for the day (None: not archived)
    plan_events: list[PlanEvent]
    soc: list[SocPoint]
    soc_source: Literal["telemetry", "spans", "none"]  # spans: legs' and visits' ends
    reserve_pct: float | None
    threshold_pct: float | None  # reserve plus the planner's margin
    projections: list[ProjectionCurve]
    legs: list[Leg]
    visits: list[Visit]
    charging: list[ChargingSession]
    alerts: list[Alert]
    gaps: list[Gap]
    report: DayReport | None  # the bus's own daily report, once it came
    # The counted visits' clients per service type and minutes per activity, by visit id (a
    # visit not counted on the staff page has none).
    services: dict[str, VisitServices] = {}

    @property
    def clients_served(self) -> int | None:
        """The day's clients: the daily report's, or before it came the counted visits'."""
        if self.report is not None:
            return self.report.clients_served
        if self.services:
            return sum(v.clients_served for v in self.services.values())
        return None

    @property
    def service_types(self) -> list[str]:
        """The service types counted at any visit of the day, in the staff page's order."""
        return in_order(t for v in self.services.values() for t in v.services)

    @property
    def missing_records(self) -> int:
        return sum(g.missing for g in self.gaps)

