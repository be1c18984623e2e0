"""From an archived record to the derived rows it gives: pure, no I/O.

The record's data is read with the bus's event catalogue (busd/event_catalog.py). A record
whose data does not fit (an older or newer bus, a bug) stays archived as it came and is
counted, not derived: :func:`plan` reports how many and the first reason.

Which row a record gives, and how it is keyed:

- visit_started/visit_ended, charging_started/charging_ended, leg_completed: one row per span,
  keyed by the event's own id; each event is a full snapshot, the latest seq wins.
- daily (``.../report/daily``): one row per bus and report day; the latest seq wins.
- plan_changed, plan_accepted, and a cmd_result of an office plan: one row per record.
- alert_raised/alert_cleared: one row per (bus, alert, raised_at), each filling its half.
- a visit_ended with the staff page's tallies also gives its ``visit_services`` row (keyed by
  the visit's id); service_counted and activity_changed are archived only (the visit_ended
  and the daily report carry the totals).
- lift_cycle, data_dropped and other command results: archived only (visits carry the lift
  cycles; gaps and the outbox's losses are read from the records).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from busd.event_catalog import (
    AlertCleared,
    AlertRaised,
    BusEvent,
    ChargingEnded,
    ChargingStarted,
    CommandResult,
    DailyReport,
    LegCompleted,
    PlanAccepted,
    PlanChanged,
    VisitEnded,
    VisitStarted,
    parse_event,
)
from office.archive.derived.tables import STATEMENT_ORDER, STATEMENTS, Statement
from telemetry.models import SCHEMA_CMD_RESULT, SCHEMA_EVENT, SCHEMA_REPORT

# Records of these schemas are read with the catalogue; telemetry never is.
DERIVED_SCHEMAS = (SCHEMA_EVENT, SCHEMA_REPORT, SCHEMA_CMD_RESULT)


@dataclass(frozen=True, slots=True)
class Stored:
    """What derivation needs of an archived record."""

    bus: str
    seq: int
    ts: datetime
    kind: str
    data: Any


@dataclass(frozen=True, slots=True)
class Write:
    statement: Statement
    values: dict[str, object]

    def key(self) -> tuple[Any, ...]:
        return tuple(self.values[c] for c in self.statement.table.key)


@dataclass(frozen=True, slots=True)
class Plan:
    """The writes of a set of records, in lock order, and the records that did not fit."""

    writes: list[Write]
    unfit: int = 0
    reason: str = ""  # the first misfit's reason, for the log


class Unfit(ValueError):
    """The record's data does not fit the catalogue."""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local_day(ts: datetime, tz: ZoneInfo) -> date:
    """The municipality's day ``ts`` falls on: days split at local midnight."""
    return ts.astimezone(tz).date()


def read(record: Stored) -> BusEvent:
    """The record's data as its catalogue model; :class:`Unfit` if it does not fit."""
    try:
        event = parse_event(record.data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Unfit(f"{record.kind}: {where}: {first['msg']}"[:200]) from None
    if event.kind != record.kind:
        raise Unfit(f"record kind {record.kind!r} but data of kind {event.kind!r}"[:200])
    return event


_RENAMED = {"start": "start_ts", "end": "end_ts"}
# Figures a bus on an older catalogue does not send (switched-off time, the charger's and the
# pack's side of a charge): their catalogue defaults.
_ADDED: dict[str, object] = {
    "off_s": 0.0, "charger_kwh": None, "battery_kwh": None, "charge_diff_kwh": None,
    "switched_off_min": 0.0, "charging_charger_kwh": None, "charging_battery_kwh": 0.0,
    "charging_diff_kwh": None, "charger_counter_rejects": 0}


def _pick(statement: Statement, fields: dict[str, Any]) -> dict[str, object]:
    return {c: fields[c] if c in fields else _ADDED[c] for c in statement.columns}


def _span(name: str, record: Stored, event: VisitStarted | VisitEnded | ChargingStarted
          | ChargingEnded | LegCompleted, tz: ZoneInfo) -> Write:
    statement = STATEMENTS[name]
    fields = {_RENAMED.get(k, k): v for k, v in event.model_dump().items()}
    start = utc(event.start)
    fields |= {"bus": record.bus, "seq": record.seq, "day": local_day(start, tz),
               "start_ts": start, "end_ts": None if event.end is None else utc(event.end)}
    return Write(statement, _pick(statement, fields))


def _services(record: Stored, event: VisitEnded, tz: ZoneInfo) -> Write:
    """A counted visit's row of ``visit_services`` (its tallies, as the visit_ended has them)."""
    start = utc(event.start)
    return Write(STATEMENTS["visit_services"], {
        "bus": record.bus, "id": event.id, "seq": record.seq, "day": local_day(start, tz),
        "start_ts": start, "place_id": event.place_id, "place_name": event.place_name,
        "services": _json(event.services), "activities_min": _json(event.activities_min or {})})


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def derive(record: Stored, tz: ZoneInfo) -> list[Write]:
    """The writes one record gives (none for kinds with no table); :class:`Unfit` raised."""
    event = read(record)
    common = {"bus": record.bus}
    match event:
        case VisitEnded() if event.services is not None:
            return [_span("visits", record, event, tz), _services(record, event, tz)]
        case VisitStarted() | VisitEnded():
            return [_span("visits", record, event, tz)]
        case ChargingStarted() | ChargingEnded():
            return [_span("charging", record, event, tz)]
        case LegCompleted():
            return [_span("legs", record, event, tz)]
        case DailyReport():
            statement = STATEMENTS["daily_reports"]
            values = event.model_dump(exclude={"kind"}) | common | {
                "seq": record.seq, "ts": record.ts, "created": utc(event.created),
                "stops": _json([s.to_dict() for s in event.stops]),
                "services": _json(event.services), "activities_min": _json(event.activities_min)}
            return [Write(statement, _pick(statement, values))]
        case PlanChanged() | PlanAccepted() | CommandResult():
            change = _plan_change(record, event, tz)
            return [] if change is None else [Write(STATEMENTS["plan_changes"], change)]
        case AlertRaised():
            raised = utc(event.raised_at)
            return [Write(STATEMENTS["alert_raised"], common | {
                "alert": event.alert, "raised_at": raised, "day": local_day(raised, tz),
                "message": event.message, "details": _json(event.details),
                "raised_seq": record.seq})]
        case AlertCleared():
            raised = utc(event.raised_at)
            return [Write(STATEMENTS["alert_cleared"], common | {
                "alert": event.alert, "raised_at": raised, "day": local_day(raised, tz),
                "cleared_at": raised + timedelta(seconds=event.duration_s),
                "duration_s": event.duration_s, "cleared_details": _json(event.details),
                "cleared_seq": record.seq})]
    return []


def _plan_change(record: Stored, event: PlanChanged | PlanAccepted | CommandResult,
                 tz: ZoneInfo) -> dict[str, object] | None:
    values: dict[str, object] = {
        "bus": record.bus, "seq": record.seq, "ts": record.ts,
        "day": local_day(record.ts, tz), "version": None, "proposal_id": None,
        "proposal_kind": None, "emergency": None, "accepted": None, "reason": None,
        "changes": "[]", "reasons": "[]", "itinerary": None, "depot_soc_before": None,
        "depot_soc_after": None}
    match event:
        case PlanChanged():
            values |= {"cause": event.cause, "version": event.version,
                       "proposal_id": event.proposal_id}
            proposal = event.proposal
            if proposal is not None:
                values |= {
                    "proposal_id": proposal.id, "proposal_kind": proposal.kind,
                    "version": proposal.plan_version, "emergency": proposal.emergency,
                    "changes": _json([c.to_dict() for c in proposal.changes]),
                    "reasons": _json([r.to_dict() for r in proposal.reasons]),
                    "itinerary": _json([i.to_dict() for i in proposal.itinerary]),
                    "depot_soc_before": proposal.before.depot_soc,
                    "depot_soc_after": proposal.after.depot_soc}
        case PlanAccepted():
            values |= {"cause": "accepted", "proposal_id": event.proposal_id,
                       "proposal_kind": event.proposal_kind,
                       "emergency": event.proposal_kind == "emergency",
                       "changes": _json([c.to_dict() for c in event.changes]),
                       "reasons": _json([r.to_dict() for r in event.reasons]),
                       "itinerary": _json([i.to_dict() for i in event.itinerary])}
        case CommandResult():
            if event.command != "plan":
                return None
            values |= {"cause": "command", "accepted": event.accepted,
                       "reason": event.reason or None, "version": event.detail.version}
    return values


def plan(records: Iterable[Stored], tz: ZoneInfo) -> Plan:
    """The writes of ``records``, in the order they must be applied (see tables.STATEMENTS)."""
    writes: list[Write] = []
    unfit = 0
    reason = ""
    for record in records:
        try:
            writes.extend(derive(record, tz))
        except Unfit as err:
            unfit += 1
            reason = reason or str(err)
    rank = {name: i for i, name in enumerate(STATEMENT_ORDER)}
    writes.sort(key=lambda w: (rank[w.statement.name], w.key(), w.values.get(
        w.statement.guard or "seq", 0)))
    return Plan(writes, unfit, reason)
