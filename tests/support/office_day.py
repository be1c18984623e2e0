"""A bus's operating day as the office archive receives it, with figures a test can add up.

One day (local times, the municipality's zone): the bus leaves the depot at 08:00 for
Rožupe (60 of 60 min), is told to cut Sutri from 90 to 45 min (a proposal at 09:40 with the
planner's real reasons, accepted at 09:42), serves Sutri for 45 min, never reaches Kalupe
(30 min planned, no plan change: skipped), and is back at 11:30. Three legs (12.5 + 10 + 20 km,
3 + 2.5 + 5 kWh net), a lift alert at 10:10 for 2 minutes, an optional charging session,
SOC samples every 30 minutes, one record lost (a gap), and the bus's daily report at 23:00.
Both visits were counted on the staff page (:func:`visit_tallies`: the day's clients split
between notary and social; set-up and serving minutes), and the report sums them.
Used by the day view's, the reports' and the web pages' tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from busd.event_catalog import (
    Change,
    DailyReport,
    EventModel,
    Item,
    PlanAccepted,
    PlanChanged,
    PointDoc,
    ProjectionDoc,
    Proposal,
    Reason,
    StopOutcome,
    VisitEnded,
)
from busd.plan import Plan, parse_plan
from busd.planner.i18n import render_all
from busd.signals import BATTERY_SOC
from office.archive import ArchivedRecord
from telemetry.models import SCHEMA_TELEMETRY
from tests.support.bus_events import (
    alert_cleared,
    alert_raised,
    archived,
    charging,
    iso,
    leg,
    visit_ended,
    visit_started,
)

LEGS_KM = (12.5, 10.0, 20.0)
LEGS_KWH = (3.0, 2.5, 5.0)
PLANNED = (("rozupe", "Rozupe", 60.0), ("sutri", "Sutri", 90.0), ("kalupe", "Kalupe", 30.0))
SUTRI_AFTER_MIN = 45.0
RESERVE_PCT = 15.0
THRESHOLD_PCT = 20.0
CHARGE_KWH = 14.5


@dataclass(frozen=True, slots=True)
class DaySpec:
    bus: str = "lv-01"
    day: date = date(2026, 3, 9)
    tz: str = "Europe/Riga"
    first_seq: int = 1
    temp_c: float = -12.0
    clients: int = 14
    charge: bool = False
    telemetry: bool = True
    lose_one: bool = True  # drop one record: the archive has a gap
    counted: bool = True  # the visits were counted on the staff page (services, activities)
    loaded: bool = False  # the day starts with the office's plan loaded (plan_changed, 07:55)
    proposed: bool = True  # the Sutri proposal is made and accepted

    def at(self, hhmm: str) -> datetime:
        """A local time of the day, as UTC."""
        hour, minute = (int(x) for x in hhmm.split(":"))
        local = datetime.combine(self.day, time(hour, minute), tzinfo=ZoneInfo(self.tz))
        return local.astimezone(UTC)


def reason(code: str, **params: str | float | int) -> Reason:
    """A planner reason as busd/planner/proposal.py makes it (code, parameters, texts)."""
    return Reason(code=code, params=params, text=render_all(code, params))


SUTRI_REASONS = [
    reason("unsafe", soc=11.0, need=20.0, reserve=15.0, margin=5.0),
    reason("cold", temp=-12.0, site_kw=1.8, drive=0.31),
    reason("shorten", name="Sutri", before=90.0, after=45.0),
    reason("result", eta="11:30", soc=21.0),
]
SUTRI_CHANGE = Change(kind="shorten", stop="sutri", before_min=90.0, after_min=45.0)


def _projection(spec: DaySpec, soc: float, sutri_min: float, depot_soc: float) -> ProjectionDoc:
    """From 09:40: Sutri 10:01 on for ``sutri_min``, Kalupe, the depot; SOC falling."""
    start = spec.at("10:01")
    sutri_end = start + timedelta(minutes=sutri_min)
    kalupe = sutri_end + timedelta(minutes=20)
    depot = kalupe + timedelta(minutes=50)
    points = [
        PointDoc(id="sutri", kind="stop", eta=iso(start), etd=iso(sutri_end),
                 soc_arrive=soc - 4, soc_depart=soc - 8, minutes=sutri_min, late_min=0.0),
        PointDoc(id="kalupe", kind="stop", eta=iso(kalupe),
                 etd=iso(kalupe + timedelta(minutes=30)), soc_arrive=soc - 12,
                 soc_depart=soc - 14, minutes=30.0, late_min=0.0),
        PointDoc(id="livani", kind="depot", eta=iso(depot), etd=iso(depot),
                 soc_arrive=depot_soc, soc_depart=depot_soc, minutes=0.0, late_min=0.0),
    ]
    return ProjectionDoc(ts=iso(spec.at("09:40")), soc=soc, safe=depot_soc >= THRESHOLD_PCT,
                         reserve_pct=RESERVE_PCT, margin_pct=5.0, threshold_pct=THRESHOLD_PCT,
                         depot_soc=depot_soc, depot_margin_pct=depot_soc - THRESHOLD_PCT,
                         depot_eta=iso(depot), points=points)


def day_plan(spec: DaySpec) -> Plan:
    """The day's plan as the office sent it: leave Līvāni at 08:00, Rožupe, Sutri, Kalupe."""
    return parse_plan({
        "date": spec.day.isoformat(), "version": 3, "timezone": spec.tz, "bus": spec.bus,
        "depot": {"id": "livani", "name": "Līvāni", "lat": 56.3543, "lon": 26.1758,
                  "leave_at": "08:00", "return_by": "16:00"},
        "stops": [{"id": sid, "name": name, "lat": 56.30 + 0.03 * i, "lon": 26.25 + 0.05 * i,
                   "planned_min": minutes, "min_min": 15}
                  for i, (sid, name, minutes) in enumerate(PLANNED)]})


def proposal(spec: DaySpec) -> Proposal:
    return Proposal(id=f"p-{spec.bus}-{spec.day}", plan_version=1, created=iso(spec.at("09:40")),
                    kind="reduce", emergency=False, changes=[SUTRI_CHANGE],
                    itinerary=[Item(kind="stop", id="sutri", minutes=45.0),
                               Item(kind="stop", id="kalupe", minutes=30.0)],
                    before=_projection(spec, 60.0, 90.0, 11.0),
                    after=_projection(spec, 60.0, 45.0, 21.0), reasons=SUTRI_REASONS)


def visit_tallies(spec: DaySpec) -> list[tuple[dict[str, int], dict[str, float]]]:
    """Rožupe's and Sutri's counts per service type and minutes per activity: half the day's
    clients at each, split between notary and social."""
    half = spec.clients // 2
    rest = spec.clients - half
    return [({"notary": half // 2, "social": half - half // 2},
             {"setup": 10.0, "serving": 50.0}),
            ({"notary": rest // 2, "social": rest - rest // 2},
             {"setup": 5.0, "serving": 40.0})]


def summed(parts: list[dict[str, int]] | list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + value
    return out


def report(spec: DaySpec) -> DailyReport:
    tallies = visit_tallies(spec) if spec.counted else []
    km = sum(LEGS_KM)
    net = sum(LEGS_KWH)
    return DailyReport(
        day=spec.day, created=iso(spec.at("23:00")), km=km, energy_out_kwh=net + 1.2,
        energy_regen_kwh=1.2, energy_charged_kwh=CHARGE_KWH if spec.charge else 0.0,
        energy_net_kwh=net, driving_kwh_per_km=net / km, kwh_per_km=net / km,
        driving_min=30 + 28 + 43, on_site_min=105.0, charging_min=40.0 if spec.charge else 0.0,
        legs=3, visits=2, unplanned_stops=0, stops_served=1, stops_shortened=1, stops_skipped=1,
        stops=[StopOutcome(stop_id="rozupe", name="Rozupe", status="served", planned_min=60,
                           minutes=60, reason=None),
               StopOutcome(stop_id="sutri", name="Sutri", status="shortened", planned_min=90,
                           minutes=45, reason="Forecast: …"),
               StopOutcome(stop_id="kalupe", name="Kalupe", status="skipped", planned_min=30,
                           minutes=0, reason="not visited")],
        charging_sessions=1 if spec.charge else 0, min_soc=44.0, lift_cycles=4,
        clients_served=spec.clients, alerts=1, energy_gap_min=0.0, open_records=0,
        services={k: int(v) for k, v in summed([t[0] for t in tallies]).items()},
        activities_min=summed([t[1] for t in tallies]))


def counted(spec: DaySpec, ended: VisitEnded,
            tallies: tuple[dict[str, int], dict[str, float]]) -> VisitEnded:
    if not spec.counted:
        return ended
    return ended.model_copy(update={"services": tallies[0], "activities_min": tallies[1]})


def sample(spec: DaySpec, seq: int, ts: datetime, soc: float) -> ArchivedRecord:
    return ArchivedRecord.model_validate({
        "bus": spec.bus, "seq": seq, "ts": ts, "schema": SCHEMA_TELEMETRY, "kind": "sample",
        "topic": f"multimobile/v1/{spec.bus}/telemetry", "received": ts + timedelta(seconds=1),
        "data": {"full": True, "values": {BATTERY_SOC: soc, "vehicle.speed": 0.0}}})


def day_records(spec: DaySpec) -> list[ArchivedRecord]:
    """The day's records in seq order, from ``spec.first_seq`` (see the module's docstring)."""
    a = spec.at
    rozupe, sutri = visit_tallies(spec)
    events: list[tuple[EventModel | float, datetime]] = [
        (leg(f"leg-1@{spec.day}", a("08:00"), a("08:30"), km=LEGS_KM[0], kwh=LEGS_KWH[0],
             temp_c=spec.temp_c), a("08:30")),
        (visit_started(f"visit-1@{spec.day}", a("08:31"), place="rozupe"), a("08:31")),
        (counted(spec, visit_ended(f"visit-1@{spec.day}", a("08:31"), a("09:31"), place="rozupe"),
                 rozupe), a("09:31")),
        (leg(f"leg-2@{spec.day}", a("09:32"), a("10:00"), km=LEGS_KM[1], kwh=LEGS_KWH[1],
             temp_c=spec.temp_c), a("10:00")),
        (visit_started(f"visit-2@{spec.day}", a("10:01"), place="sutri"), a("10:01")),
        (alert_raised("lift_fault", a("10:10")), a("10:10")),
        (alert_cleared("lift_fault", a("10:10"), 120.0), a("10:12")),
        (counted(spec, visit_ended(f"visit-2@{spec.day}", a("10:01"), a("10:46"), place="sutri"),
                 sutri), a("10:46")),
        (leg(f"leg-3@{spec.day}", a("10:47"), a("11:30"), km=LEGS_KM[2], kwh=LEGS_KWH[2],
             temp_c=spec.temp_c), a("11:30")),
    ]
    if spec.proposed:
        events += [
            (PlanChanged(cause="proposed", proposal=proposal(spec)), a("09:40")),
            (PlanAccepted(proposal_id=proposal(spec).id, proposal_kind="reduce",
                          changes=[SUTRI_CHANGE], itinerary=proposal(spec).itinerary,
                          reasons=SUTRI_REASONS), a("09:42"))]
    if spec.loaded:
        events.append((PlanChanged(cause="office", version=3, plan=day_plan(spec)), a("07:55")))
    if spec.charge:
        session = charging(f"charge-1@{spec.day}", a("12:00"), a("12:40"), CHARGE_KWH)
        events.append((session, a("12:40")))
    if spec.telemetry:
        for i in range(8):  # 08:00 … 11:30, SOC 80 → 45
            ts = a("08:00") + timedelta(minutes=30 * i)
            events.append((80.0 - 5 * i, ts))
    events.append((report(spec), a("23:00")))
    events.sort(key=lambda e: e[1])
    records = []
    seq = spec.first_seq
    for i, (event, ts) in enumerate(events):
        if spec.lose_one and i == 5:
            seq += 1  # this record never reached the office
        if isinstance(event, float):
            records.append(sample(spec, seq, ts, event))
        else:
            records.append(archived(event, seq, ts, spec.bus))
        seq += 1
    return records


def last_seq(records: list[ArchivedRecord]) -> int:
    return max(r.seq for r in records)
