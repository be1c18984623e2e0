"""Catalogue events for the office's tests, archived the way a real bus's would be.

Each event is a busd/event_catalog.py model, stored as the outbox stores it (``to_json``),
framed as the uplink frames it (``_record_json``), and read as the office reads an MQTT message
(``office.records.parse_records``): the archive gets exactly what it gets in production.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from busd.event_catalog import (
    AlertCleared,
    AlertRaised,
    Change,
    ChargingEnded,
    ChargingStarted,
    CommandDetail,
    CommandResult,
    DailyReport,
    EventModel,
    Item,
    LegCompleted,
    PlanAccepted,
    PlanChanged,
    PointDoc,
    ProjectionDoc,
    Proposal,
    Reason,
    StopOutcome,
    VisitEnded,
    VisitStarted,
)
from office.archive import ArchivedRecord
from office.records import Topics, parse_records
from telemetry.outbox import Row, Stream
from telemetry.uplink import _record_json, row_topic

TOPICS = Topics()


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def archived(event: EventModel, seq: int, ts: datetime, bus: str = "lv-01") -> ArchivedRecord:
    """``event`` as the archive receives it: record ``seq`` of ``bus``, made at ``ts``."""
    kind = str(getattr(event, "kind"))  # noqa: B009  (every catalogue model has one)
    stream: Stream = ("report" if isinstance(event, DailyReport)
              else "cmd_result" if isinstance(event, CommandResult) else "event")
    row = Row(seq=seq, stream=stream, kind=kind, ts=ts.timestamp(), body=event.to_json())
    topic = f"{TOPICS.prefix.format(bus_id=bus)}/{row_topic(row)}"
    parsed = parse_records(TOPICS, topic, _record_json(json.dumps(bus), row).encode(),
                           ts + timedelta(seconds=1))
    assert not parsed.rejected, parsed.reason
    (record,) = parsed.records
    return record


def _span(id_: str, start: datetime, end: datetime | None, **extra: object) -> dict[str, object]:
    minutes = 0.0 if end is None else (end - start).total_seconds() / 60
    return {"id": id_, "day": start.date(), "status": "open" if end is None else "closed",
            "start": iso(start), "end": None if end is None else iso(end),
            "duration_min": minutes, "out_kwh": 2.5, "regen_kwh": 0.0, "charged_kwh": 0.0,
            "net_kwh": 2.5, "gap_s": 0.0, "gaps": 0, "gps_km": 0.0, "lift_cycles": 0,
            "lift_counter": None, "temp_c": -12.0, "odo_start": 1000.0,
            "odo_end": 1000.0, "soc_start": 80.0, "soc_end": 78.0} | extra


def _place(place: str) -> dict[str, object]:
    return {"place_id": place, "place_name": place.title(), "place_kind": "stop",
            "lat": 56.4, "lon": 26.4, "radius_m": 150.0, "soc_min": 77.5}


def visit_started(id_: str, start: datetime, place: str = "rozupe") -> VisitStarted:
    return VisitStarted.model_validate(_span(id_, start, None) | _place(place))


def visit_ended(id_: str, start: datetime, end: datetime, place: str = "rozupe",
                lift_cycles: int = 2) -> VisitEnded:
    return VisitEnded.model_validate(_span(id_, start, end, lift_cycles=lift_cycles)
                                     | _place(place))


def leg(id_: str, start: datetime, end: datetime, *, km: float = 12.5, kwh: float = 3.0,
        temp_c: float = -12.0) -> LegCompleted:
    return LegCompleted.model_validate(_span(id_, start, end, out_kwh=kwh + 0.4, regen_kwh=0.4,
                                             net_kwh=kwh, temp_c=temp_c) | {
        "from_place": "livani", "from_name": "Līvāni", "to_place": "rozupe",
        "to_name": "Rožupe", "km": km, "km_source": "odometer", "kwh_per_km": kwh / km,
        "avg_kmh": 40.0, "soc_used": 4.0})


def charging(id_: str, start: datetime, end: datetime | None, kwh: float) -> ChargingStarted \
        | ChargingEnded:
    fields = _span(id_, start, end, charged_kwh=kwh) | _place("preili") | {
        "peak_kw": 22.0, "session_kwh": kwh, "energy_added_kwh": kwh}
    model = ChargingStarted if end is None else ChargingEnded
    return model.model_validate(fields)


def alert_raised(alert: str, raised: datetime) -> AlertRaised:
    return AlertRaised(alert=alert, message=f"{alert} now", raised_at=iso(raised),
                       details={"code": 7})


def alert_cleared(alert: str, raised: datetime, duration_s: float) -> AlertCleared:
    return AlertCleared(alert=alert, raised_at=iso(raised), duration_s=duration_s,
                        details={"code": 7})


def _projection(ts: datetime, depot_soc: float) -> ProjectionDoc:
    point = PointDoc(id="livani", kind="depot", eta=iso(ts), etd=iso(ts), soc_arrive=depot_soc,
                     soc_depart=depot_soc, minutes=0.0, late_min=0.0)
    return ProjectionDoc(ts=iso(ts), soc=50.0, safe=depot_soc >= 20, reserve_pct=15.0,
                         margin_pct=5.0, threshold_pct=20.0, depot_soc=depot_soc,
                         depot_margin_pct=depot_soc - 20, depot_eta=iso(ts), points=[point])


REASON = Reason(code="depot_below_reserve", params={"soc": 11.0},
                text={"lv": "Depo SOC zem rezerves", "lt": "Depo SOC žemiau rezervo",
                      "en": "Depot SOC below the reserve"})
SHORTEN = Change(kind="shorten", stop="sutri", before_min=90.0, after_min=45.0)
ITINERARY = [Item(kind="stop", id="sutri", minutes=45.0)]


def proposed(proposal_id: str, ts: datetime) -> PlanChanged:
    proposal = Proposal(id=proposal_id, plan_version=3, created=iso(ts), kind="reduce",
                        emergency=False, changes=[SHORTEN], itinerary=ITINERARY,
                        before=_projection(ts, 11.0), after=_projection(ts, 21.0),
                        reasons=[REASON])
    return PlanChanged(cause="proposed", proposal=proposal)


def accepted(proposal_id: str) -> PlanAccepted:
    return PlanAccepted(proposal_id=proposal_id, proposal_kind="reduce", changes=[SHORTEN],
                        itinerary=ITINERARY, reasons=[REASON])


def plan_answer(accepted: bool, version: int) -> CommandResult:
    return CommandResult(command="plan", id="c1", accepted=accepted,
                         reason="" if accepted else "version must increase",
                         detail=CommandDetail(version=version if accepted else None))


def daily(day: date, created: datetime, *, km: float = 80.0, clients: int = 14,
          counter_rejects: int = 0) -> DailyReport:
    return DailyReport(
        day=day, created=iso(created), km=km, energy_out_kwh=30.0, energy_regen_kwh=3.0,
        energy_charged_kwh=0.0, energy_net_kwh=27.0, driving_kwh_per_km=0.3,
        kwh_per_km=27.0 / km, driving_min=150.0, on_site_min=360.0, charging_min=0.0, legs=6,
        visits=5, unplanned_stops=0, stops_served=4, stops_shortened=1, stops_skipped=0,
        stops=[StopOutcome(stop_id="sutri", name="Sutri", status="shortened", planned_min=90,
                           minutes=45, reason="Depot SOC below the reserve")],
        charging_sessions=0, min_soc=21.0, lift_cycles=6, clients_served=clients, alerts=1,
        energy_gap_min=0.0, open_records=0, charger_counter_rejects=counter_rejects)
