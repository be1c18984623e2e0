"""Every event the bus emits, as frozen pydantic models: the one catalogue.

As :mod:`busd.signals` is for signals, this module is for events. Producers
(the tracker, planner, alert board, outbox, command dispatcher, daily summary)
build these models; consumers (the learning emitter, stop notes, the event
forwarder, the outbox, the office) receive them; ``docs/schema/event-*.json``
and ``docs/asyncapi.yaml`` are generated from them. ``kind`` names each one:
it is the MQTT topic's last part (``.../event/{kind}``, ``.../report/daily``,
``.../cmd/result``) and the discriminator of :data:`BusEvent`.

An event's data never repeats ``bus``, ``ts`` or ``schema``: the record's
envelope carries them (telemetry/models.py). Times inside an event (a visit's
start, when an alert was raised) are UTC ISO 8601 strings with milliseconds,
like the envelope's ``ts``. Numbers must be finite: NaN and infinity are not
JSON, and a model refuses them (``allow_inf_nan=False``).

The planner's documents (an itinerary entry, a proposal and its projections)
live here too, since the plan events and the retained ``plan`` carry them;
:mod:`busd.planner.proposal` and :mod:`busd.planner.projection` re-export them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from busd.plan import Plan

UtcTs = Annotated[str, Field(
    pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$",
    description="UTC, ISO 8601 with milliseconds",
)]
Scalar = float | int | bool | str


class EventModel(BaseModel):
    """The base of every catalogue model: frozen, strict about fields, finite numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)

    def to_json(self) -> str:
        """Compact JSON, as stored in the outbox and published (aliases, never NaN)."""
        return self.model_dump_json(by_alias=True)

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)


# --- the planner's documents ----------------------------------------------------------


class Item(EventModel):
    """One entry of an itinerary: a visit or a charging stop."""

    kind: Literal["stop", "charge"]
    id: str
    minutes: float = Field(ge=0, description="on site; for a charge, the estimate")


class Change(EventModel):
    """One machine-readable change of a proposal."""

    kind: Literal[
        "shorten", "lengthen", "skip", "restore", "reorder", "charge", "drop_charge", "go_to"
    ]
    stop: str | None = None
    before_min: float | None = None
    after_min: float | None = None
    order_before: list[str] | None = None
    order_after: list[str] | None = None
    charger: str | None = None
    after: str | None = Field(default=None, description="charge after this stop (None: now)")
    kwh: float | None = None
    soc_to: float | None = None


class Reason(EventModel):
    """Why, as a code with parameters and its rendering in lv, lt and en."""

    code: str
    params: dict[str, str | float | int]
    text: dict[str, str] = Field(description="language code (lv, lt, en): the sentence")


class PointDoc(EventModel):
    id: str
    kind: Literal["stop", "charge", "depot"]
    eta: str
    etd: str
    soc_arrive: float
    soc_depart: float
    minutes: float
    late_min: float


class ProjectionDoc(EventModel):
    ts: str
    soc: float
    safe: bool
    reserve_pct: float
    margin_pct: float
    threshold_pct: float
    depot_soc: float
    depot_margin_pct: float = Field(description="depot SOC minus reserve and margin")
    depot_eta: str
    points: list[PointDoc]


class Proposal(EventModel):
    """A change to the driver's itinerary, waiting for the driver's acknowledgement."""

    id: str
    plan_version: int
    created: str
    kind: Literal["reduce", "charge", "restore", "reorder", "emergency"]
    emergency: bool
    changes: list[Change]
    itinerary: list[Item]
    before: ProjectionDoc
    after: ProjectionDoc
    reasons: list[Reason]


class PlanDocument(EventModel):
    """What the planner publishes retained on ``.../plan`` (inside the envelope) and keeps in
    ``state.json``: the plan, the itinerary the driver follows, progress, the projection and
    any pending proposal."""

    plan: Plan | None = Field(description="the day's plan; None before one is loaded")
    itinerary: list[Item]
    done: list[str] = Field(description="ids of the itinerary entries already served")
    at: str | None = Field(description="id of the place the bus is at, if any")
    projection: ProjectionDoc | None
    pending: Proposal | None = Field(description="the proposal awaiting the driver, if any")
    proposal_at: str | None = Field(
        default=None, description="on the road: id of the place ahead where the planner will "
        "propose a change it holds until the bus arrives (the change leaves that place as it "
        "is; the leg is driven either way)")


# --- the tracker: legs, visits, charging sessions, lift cycles ---------------------------


class _Span(EventModel):
    """The figures every leg, visit and charging session carries."""

    id: str = Field(description="the record's id (kind and start time): stable across updates")
    day: dt.date = Field(description="the local operating day it started on")
    status: Literal["open", "closed", "interrupted"] = Field(
        description="interrupted: closed at its last checkpoint after busd was down")
    start: UtcTs
    end: UtcTs | None = Field(description="None while open")
    duration_min: float
    out_kwh: float = Field(description="energy out of the battery (integrated V·I)")
    regen_kwh: float = Field(description="regenerated while driving")
    charged_kwh: float = Field(description="put in by a charger")
    net_kwh: float
    gap_s: float = Field(description="how long the energy figures had no data")
    gaps: int
    off_s: float = Field(default=0.0, description="how long the bus was switched off (no CAN "
                         "at all while parked): it used nothing, and it is no gap")
    gps_km: float = Field(description="GPS track length (cross-check of the odometer)")
    lift_cycles: int
    lift_counter: int | None = Field(description="the lift unit's own counter at the end")
    temp_c: float | None = Field(description="mean outside temperature")
    odo_start: float | None
    odo_end: float | None
    soc_start: float | None
    soc_end: float | None


class _AtPlace(_Span):
    place_id: str | None
    place_name: str | None
    place_kind: Literal["depot", "stop", "charger", "unplanned"] | None
    lat: float | None
    lon: float | None
    radius_m: float | None
    soc_min: float | None


class VisitStarted(_AtPlace):
    """The bus stopped at a place (in its geofence, stopped for the minimum time)."""

    kind: Literal["visit_started"] = "visit_started"


class VisitEnded(_AtPlace):
    """The bus left the place (outside the geofence plus the exit margin)."""

    kind: Literal["visit_ended"] = "visit_ended"
    services: dict[str, int] | None = Field(
        default=None, description="clients served per service type (counts only); None "
        "where nothing is counted (the depot, a bus without the staff page)")
    activities_min: dict[str, float] | None = Field(
        default=None, description="minutes per activity on site, when the toggle was used")


class _Charge(_AtPlace):
    peak_kw: float
    session_kwh: float | None = Field(description="the charger's own session counter")
    energy_added_kwh: float
    charger_kwh: float | None = Field(
        default=None, description="energy the charger reports for the session (its counter, "
        "impossible jumps rejected); None when it reports none")
    battery_kwh: float | None = Field(
        default=None, description="energy into the pack, the battery side's integral of V·I")
    charge_diff_kwh: float | None = Field(
        default=None, description="charger minus battery: the charging losses")
    counter_rejects: int = Field(
        default=0, ge=0, description="charger counter readings rejected (a reset, a jump to a "
        "lifetime total)")


class ChargingStarted(_Charge):
    """The charger reports charging (a charging session began)."""

    kind: Literal["charging_started"] = "charging_started"


class ChargingEnded(_Charge):
    """The charger was unplugged, or went idle or faulty: the session's energy and SOC."""

    kind: Literal["charging_ended"] = "charging_ended"


class LegCompleted(_Span):
    """The drive from one place (or the depot) to the next, closed on arrival."""

    kind: Literal["leg_completed"] = "leg_completed"
    from_place: str | None
    from_name: str | None
    to_place: str | None
    to_name: str | None
    km: float
    km_source: Literal["odometer", "gps"]
    kwh_per_km: float | None = Field(description="net (out minus regeneration) per km")
    avg_kmh: float | None
    soc_used: float | None


class LiftCycle(EventModel):
    """The wheelchair lift went out and came back stowed (one event per cycle counted;
    after a restart, the cycles the unit counted while busd was down come as one)."""

    kind: Literal["lift_cycle"] = "lift_cycle"
    cycles: int = Field(ge=1, description="cycles this event counts (usually 1)")
    day_cycles: int = Field(ge=0, description="cycles counted so far this run of the day")
    counter: int | None = Field(description="the lift unit's own counter, if it has one")
    place_id: str | None = Field(description="the place being visited, if any")
    place_name: str | None


# --- the staff page: services by type, time by activity -------------------------------


class ServiceCounted(EventModel):
    """A specialist counted a client served (+1) or took a count back (-1): numbers only."""

    kind: Literal["service_counted"] = "service_counted"
    visit_id: str = Field(description="the tracker's visit the count belongs to")
    day: dt.date
    place_id: str | None
    service: str = Field(description="the service type (config services.types)")
    delta: Literal[1, -1]
    count: int = Field(ge=0, description="this type's count at the visit, after the change")
    visit_total: int = Field(ge=0, description="every type's count at the visit")


class ActivityChanged(EventModel):
    """The activity on site changed (or ended with the visit: ``activity`` None)."""

    kind: Literal["activity_changed"] = "activity_changed"
    visit_id: str
    day: dt.date
    place_id: str | None
    activity: str | None = Field(description="the activity now (config services.activities)")
    previous: str | None
    activities_min: dict[str, float] = Field(
        description="minutes per activity at the visit so far, the previous one closed")


# --- the planner ---------------------------------------------------------------------


class PlanChanged(EventModel):
    """The active plan or the pending proposal changed.

    ``cause``: ``file``/``office``: a plan was loaded (``version``, and the ``plan`` itself:
    the office's record of the day as planned); ``proposed``: a new proposal awaits the
    driver (``proposal``); ``superseded``/``withdrawn``: the pending proposal is gone
    (``proposal_id``)."""

    kind: Literal["plan_changed"] = "plan_changed"
    cause: Literal["file", "office", "proposed", "superseded", "withdrawn"]
    version: int | None = None
    proposal_id: str | None = None
    proposal: Proposal | None = None
    plan: Plan | None = Field(
        default=None, description="file/office: the plan loaded, as the bus follows it")


class PlanAccepted(EventModel):
    """The driver accepted a proposal: the changes, the new itinerary and the reasons."""

    kind: Literal["plan_accepted"] = "plan_accepted"
    proposal_id: str
    proposal_kind: Literal["reduce", "charge", "restore", "reorder", "emergency"]
    changes: list[Change]
    itinerary: list[Item]
    reasons: list[Reason]


# --- alerts --------------------------------------------------------------------------

AlertDetails = dict[str, Scalar | None]


class AlertRaised(EventModel):
    """A problem situation began (one alert per situation, not one per update)."""

    kind: Literal["alert_raised"] = "alert_raised"
    alert: str = Field(description="which alert: lift_moving, charger_fault, "
                       "storage_unwritable, ...")
    message: str
    raised_at: UtcTs
    details: AlertDetails = Field(default_factory=dict)


class AlertCleared(EventModel):
    """The problem situation ended (or, after a restart, was not raised again)."""

    kind: Literal["alert_cleared"] = "alert_cleared"
    alert: str
    raised_at: UtcTs
    duration_s: float
    details: AlertDetails = Field(default_factory=dict)


# --- the outbox ------------------------------------------------------------------------


class DataDropped(EventModel):
    """The full (or too old) outbox dropped records: the loss, reported."""

    kind: Literal["data_dropped"] = "data_dropped"
    reason: Literal["max_age_days", "max_mb"]
    records: int = Field(ge=1)
    by_stream: dict[Literal["telemetry", "event", "report", "cmd_result"], int]
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)
    from_: UtcTs = Field(alias="from", description="time of the oldest record dropped")
    to: UtcTs = Field(description="time of the newest record dropped")


# --- commands --------------------------------------------------------------------------


class CommandDetail(EventModel):
    """What an answer adds: the bus's time (ping), the accepted version, the problems (plan),
    what is resent and what is gone (resend)."""

    bus_ts: UtcTs | None = Field(default=None, description="ping: the bus's clock")
    version: int | None = Field(default=None, description="plan: the version now accepted")
    scheduled: dt.date | None = Field(
        default=None, description="plan: accepted for this later day, kept on the bus until "
        "then (absent: followed now)")
    problems: list[tuple[str, str]] | None = Field(
        default=None, description="plan: each problem as [key, reason]")
    resent: int | None = Field(
        default=None, ge=0, description="resend: records the bus publishes again")
    pending: int | None = Field(
        default=None, ge=0, description="resend: records of the range not yet acknowledged "
        "by the broker; they go out in order anyway")
    missing: list[tuple[int, int]] | None = Field(
        default=None, description="resend: ranges [first, last] the bus no longer has "
        "(at most 100 listed)")
    missing_records: int | None = Field(
        default=None, ge=0, description="resend: every record of the range the bus no longer "
        "has, listed or not")


class CommandReceived(EventModel):
    """``.../cmd/result``: the receipt, kept when a valid command reaches the bus and before
    it runs, so the office knows it was delivered; its answer follows as a ``cmd_result``.
    A command answered before (a duplicate) gets its answer again, with no receipt."""

    kind: Literal["cmd_received"] = "cmd_received"
    command: str = Field(description="ping, plan, resend")
    id: str = Field(description="the command's id")


class CommandResult(EventModel):
    """``.../cmd/result``: the answer to every command, accepted or not."""

    kind: Literal["cmd_result"] = "cmd_result"
    command: str = Field(description="ping, plan, ... or '?' when unreadable")
    id: str | None = Field(default=None, description="the command's id, when it could be read")
    accepted: bool
    reason: str = Field(default="", description="exactly why not, when rejected")
    detail: CommandDetail = Field(default_factory=lambda: CommandDetail())


# --- the daily report ------------------------------------------------------------------


class StopOutcome(EventModel):
    stop_id: str
    name: str
    status: Literal["served", "shortened", "skipped"]
    planned_min: float
    minutes: float
    reason: str | None = Field(description="why shortened or skipped")


class DailyReport(EventModel):
    """``.../report/daily``: the day's monitoring summary."""

    kind: Literal["daily"] = "daily"
    day: dt.date
    created: UtcTs
    km: float
    energy_out_kwh: float
    energy_regen_kwh: float
    energy_charged_kwh: float
    energy_net_kwh: float
    driving_kwh_per_km: float | None
    kwh_per_km: float | None
    driving_min: float
    on_site_min: float
    charging_min: float
    legs: int
    visits: int
    unplanned_stops: int
    stops_served: int
    stops_shortened: int
    stops_skipped: int
    stops: list[StopOutcome]
    charging_sessions: int
    min_soc: float | None
    lift_cycles: int
    clients_served: int = Field(description="every service type together")
    services: dict[str, int] = Field(
        default_factory=dict, description="clients served per service type")
    activities_min: dict[str, float] = Field(
        default_factory=dict, description="minutes on site per activity")
    alerts: int
    energy_gap_min: float
    switched_off_min: float = Field(
        default=0.0, description="parked with the bus switched off (no CAN at all): not a gap")
    charging_charger_kwh: float | None = Field(
        default=None, description="the charger's reported energy over the day's sessions")
    charging_battery_kwh: float = Field(
        default=0.0, description="the battery side's energy over the day's charging sessions")
    charging_diff_kwh: float | None = Field(
        default=None, description="charger minus battery over the day's sessions")
    charger_counter_rejects: int = Field(default=0, ge=0)
    open_records: int


# --- the catalogue ----------------------------------------------------------------------

TrackerEvent = VisitStarted | VisitEnded | LegCompleted | ChargingStarted | ChargingEnded
# What goes to ``.../event/{kind}``.
Event = Annotated[
    VisitStarted | VisitEnded | LegCompleted | ChargingStarted | ChargingEnded | LiftCycle
    | ServiceCounted | ActivityChanged
    | PlanChanged | PlanAccepted | AlertRaised | AlertCleared | DataDropped,
    Field(discriminator="kind"),
]
# Everything durable the bus emits: events, the daily report, command answers.
BusEvent = Annotated[
    VisitStarted | VisitEnded | LegCompleted | ChargingStarted | ChargingEnded | LiftCycle
    | ServiceCounted | ActivityChanged
    | PlanChanged | PlanAccepted | AlertRaised | AlertCleared | DataDropped | DailyReport
    | CommandResult | CommandReceived,
    Field(discriminator="kind"),
]
Report = DailyReport

EVENT_MODELS: Final[tuple[type[EventModel], ...]] = (
    VisitStarted, VisitEnded, LegCompleted, ChargingStarted, ChargingEnded, LiftCycle,
    ServiceCounted, ActivityChanged,
    PlanChanged, PlanAccepted, AlertRaised, AlertCleared, DataDropped,
)
REPORT_MODELS: Final[tuple[type[EventModel], ...]] = (DailyReport,)


def kind_of(model: type[EventModel]) -> str:
    """The ``kind`` a catalogue model carries (its default)."""
    default = model.model_fields["kind"].default
    assert isinstance(default, str)
    return default


BUS_EVENT: Final[TypeAdapter[BusEvent]] = TypeAdapter(BusEvent)


def parse_event(data: object) -> BusEvent:
    """A record's ``data`` (dict or JSON text) as its catalogue model; ValidationError if not."""
    if isinstance(data, str | bytes):
        return BUS_EVENT.validate_json(data)
    return BUS_EVENT.validate_python(data)


__all__ = [
    "ActivityChanged",
    "AlertCleared",
    "AlertRaised",
    "BusEvent",
    "Change",
    "ChargingEnded",
    "ChargingStarted",
    "CommandDetail",
    "CommandReceived",
    "CommandResult",
    "DailyReport",
    "DataDropped",
    "Event",
    "EventModel",
    "Item",
    "LegCompleted",
    "LiftCycle",
    "PlanAccepted",
    "PlanChanged",
    "PlanDocument",
    "PointDoc",
    "ProjectionDoc",
    "Proposal",
    "Reason",
    "Report",
    "ServiceCounted",
    "StopOutcome",
    "TrackerEvent",
    "UtcTs",
    "VisitEnded",
    "VisitStarted",
    "kind_of",
    "parse_event",
]
