"""The derived tables' rows, as the dashboard reads them: one pydantic model per table.

A model's fields are its table's columns (office/archive/derived/tables.py builds the SQL from
them), so a column cannot be added to one without the other. Times are UTC; ``day`` is the
municipality's local day (the archive's time zone), split at local midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator

from busd.event_catalog import Change, Item, Reason, Scalar, StopOutcome

SpanStatus = Literal["open", "closed", "interrupted"]


class DerivedRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bus: str

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: object) -> object:
        # PostgreSQL hands timestamps back in the session's zone; rows compare equal across
        # back ends only in one.
        return value.astimezone(UTC) if isinstance(value, datetime) else value


class _Span(DerivedRow):
    id: str  # the event's own id: kind and start time
    seq: int  # the bus's record that gave this row its state
    day: date
    status: SpanStatus
    start_ts: AwareDatetime
    end_ts: AwareDatetime | None
    duration_min: float


class Visit(_Span):
    """A stop at a place: minutes on site, energy used there, lift cycles, SOC."""

    place_id: str | None
    place_name: str | None
    place_kind: str | None
    lat: float | None
    lon: float | None
    out_kwh: float
    regen_kwh: float
    charged_kwh: float
    net_kwh: float
    gap_s: float
    off_s: float  # parked switched off (no CAN at all): used nothing, and no gap
    lift_cycles: int
    temp_c: float | None
    soc_start: float | None
    soc_end: float | None
    soc_min: float | None


class Leg(_Span):
    """A drive from one place to the next: km, kWh out and regenerated, kWh/km, °C."""

    from_place: str | None
    from_name: str | None
    to_place: str | None
    to_name: str | None
    km: float
    km_source: Literal["odometer", "gps"]
    out_kwh: float
    regen_kwh: float
    net_kwh: float
    kwh_per_km: float | None
    avg_kmh: float | None
    gap_s: float
    off_s: float
    temp_c: float | None
    soc_start: float | None
    soc_end: float | None
    soc_used: float | None


class ChargingSession(_Span):
    """A charging session: where, energy added, peak power, SOC before and after."""

    place_id: str | None
    place_name: str | None
    place_kind: str | None
    lat: float | None
    lon: float | None
    energy_added_kwh: float
    session_kwh: float | None
    peak_kw: float
    charger_kwh: float | None  # what the charger reports for the session
    battery_kwh: float | None  # what went into the pack (∫V·I)
    charge_diff_kwh: float | None  # charger minus battery: the charging losses
    soc_start: float | None
    soc_end: float | None
    temp_c: float | None


class DayReport(DerivedRow):
    """A bus's daily report (``.../report/daily``) for its operating ``day``."""

    day: date
    seq: int
    ts: AwareDatetime  # when the bus made the report record
    created: AwareDatetime
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
    clients_served: int  # every service type together
    alerts: int
    energy_gap_min: float
    switched_off_min: float
    charging_charger_kwh: float | None
    charging_battery_kwh: float
    charging_diff_kwh: float | None
    open_records: int
    charger_counter_rejects: int = 0  # charger counter readings rejected (a reset, a jump)
    services: dict[str, int] = {}  # clients served per service type
    activities_min: dict[str, float] = {}  # minutes on site per activity


class VisitServices(DerivedRow):
    """One counted visit's services and activity time, as its visit_ended carried them (the
    staff page's tallies on the bus; counts only): what the monthly report sums per place
    (:meth:`~office.archive.derived.reads.DerivedReads.visit_services`). Visits not counted
    (the depot, one still open, a bus without the staff page) have no row."""

    id: str  # the visit's id (as in ``visits``)
    seq: int  # the visit_ended record that gave it
    day: date
    start_ts: AwareDatetime
    place_id: str | None
    place_name: str | None
    services: dict[str, int]  # clients served per service type, every configured type
    activities_min: dict[str, float]  # minutes per activity ({}: the toggle was not used)

    @property
    def clients_served(self) -> int:
        return sum(self.services.values())


PlanCause = Literal["file", "office", "proposed", "superseded", "withdrawn", "accepted",
                    "command"]


class PlanChange(DerivedRow):
    """One plan event: a plan loaded (``file``, ``office``), a proposal made (``proposed``),
    gone (``superseded``, ``withdrawn``) or accepted by the driver (``accepted``), or the
    bus's answer to an office plan (``command``: ``accepted`` and ``reason``)."""

    seq: int
    ts: AwareDatetime
    day: date
    cause: PlanCause
    version: int | None
    proposal_id: str | None
    proposal_kind: str | None
    emergency: bool | None
    accepted: bool | None
    reason: str | None
    changes: list[Change]
    reasons: list[Reason]  # each in lv, lt and en: the staff's language is picked at display
    itinerary: list[Item] | None
    depot_soc_before: float | None  # the proposal's projected SOC at the depot, before/after
    depot_soc_after: float | None


class Alert(DerivedRow):
    """A problem situation, raised and (once the clear arrived) cleared. Either half may be
    missing while its record has not arrived (``message`` None: only the clear is known)."""

    alert: str
    raised_at: AwareDatetime
    day: date  # the local day it was raised on
    message: str | None
    details: dict[str, Scalar | None] | None
    raised_seq: int | None
    cleared_at: AwareDatetime | None
    duration_s: float | None
    cleared_details: dict[str, Scalar | None] | None
    cleared_seq: int | None
