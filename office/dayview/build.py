"""A bus's day, assembled from the archive: the plan as sent against what happened.

The plan the office can see is what the bus sent: the plan it loaded (from a file or the
office; its ``plan_changed`` carries it), projected with the bus's planner for the planned
times; its daily report lists every planned stop with its planned minutes and outcome, and
each proposal carries the projection it was made from (``before``: arrival and departure at
each remaining stop), which gives the planned times when the loaded plan is not archived.
A stop cut short or skipped takes its reason from the plan change the driver accepted (its
``changes`` and ``reasons``, as codes); a stop that got less time with no plan change behind
it gets the office's own code.

The day is the municipality's local day: rows are read for the archive's days around it and
kept by their own times, so a municipality in another zone than the archive's still splits
at its own midnight.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from busd.event_catalog import PointDoc, Proposal, Reason
from busd.monitoring.plan_projections import projection_points
from busd.monitoring.summary import SHORTENED_TOLERANCE_MIN
from busd.plan import Plan
from office.archive import Archive, DayReport, Gap, PlanChange, Visit
from office.archive.gaps_sql import day_bounds
from office.dayview.models import (
    DayView,
    PlanEvent,
    ProjectionCurve,
    ReasonNote,
    SocPoint,
    StopLine,
    StopStatus,
)
from office.dayview.planned import planned_points
from office.dayview.reads import loaded_plans, plan_changes, proposals, soc_series

# A change of this kind for a stop is explained by the reason of this code (busd/planner/
# proposal.py adds one reason per change, in the changes' order).
_REASON_OF_CHANGE = {"skip": "skip", "shorten": "shorten", "go_to": "end_visit"}
# Reasons that belong to one change; every other reason explains the whole proposal.
_PER_CHANGE = frozenset({"skip", "shorten", "lengthen", "restore", "reorder", "charge",
                         "drop_charge", "end_visit", "go_charger", "go_depot", "result"})
# Which change kinds give a stop which outcome.
_LESS_TIME = {"skip": "skipped", "shorten": "shortened", "go_to": "shortened"}


def note(reason: Reason) -> ReasonNote:
    return ReasonNote(code=reason.code, params=dict(reason.params), texts=dict(reason.text))


def stop_reasons(change: PlanChange) -> dict[str, tuple[str, list[ReasonNote]]]:
    """For each stop an accepted proposal gave less time: its outcome and reasons (the
    proposal's general reasons, then the stop's own)."""
    general = [note(r) for r in change.reasons if r.code not in _PER_CHANGE]
    by_code: dict[str, list[Reason]] = defaultdict(list)
    for reason in change.reasons:
        by_code[reason.code].append(reason)
    taken: dict[str, int] = defaultdict(int)
    out: dict[str, tuple[str, list[ReasonNote]]] = {}
    for item in change.changes:
        code = _REASON_OF_CHANGE.get(item.kind)
        if code is None or item.stop is None:
            continue
        own = by_code[code][taken[code]:taken[code] + 1]
        taken[code] += 1
        out[item.stop] = (_LESS_TIME[item.kind], general + [note(r) for r in own])
    return out


def _office_reason(status: StopStatus, minutes: float,
                   planned: float | None) -> list[ReasonNote]:
    if status == "skipped":
        return [ReasonNote(code="not_visited", params={})]
    if status == "shortened":
        return [ReasonNote(code="stayed_shorter",
                           params={"minutes": round(minutes, 1), "planned": planned or 0.0})]
    return []


def _status(visits: list[Visit], minutes: float, planned: float | None,
            over: bool) -> StopStatus:
    if not visits:
        return "skipped" if over else "pending"
    if any(v.end_ts is None for v in visits):
        return "pending"
    if planned is not None and minutes < planned - SHORTENED_TOLERANCE_MIN:
        return "shortened"
    return "served"


def _planned(report: DayReport | None, sent: Plan | None, first: Proposal | None,
             visits: list[Visit]) -> list[tuple[str, str, float | None]]:
    """(stop id, name, planned minutes) in the plan's order, from the best source there is:
    the bus's report, the plan it loaded, its first proposal, the places it visited."""
    if report is not None and report.stops:
        return [(s.stop_id, s.name, s.planned_min) for s in report.stops]
    if sent is not None:
        return [(s.id, s.name, s.planned_min) for s in sent.stops]
    if first is not None:
        return [(p.id, p.id, p.minutes) for p in first.before.points if p.kind == "stop"]
    seen: dict[str, str] = {}
    for v in visits:
        if v.place_kind == "stop" and v.place_id is not None:
            seen.setdefault(v.place_id, v.place_name or v.place_id)
    return [(sid, name, None) for sid, name in seen.items()]


def _stops(report: DayReport | None, sent: Plan | None, first: Proposal | None,
           visits: list[Visit], changes: list[PlanChange], over: bool) -> list[StopLine]:
    at: dict[str, list[Visit]] = defaultdict(list)
    for v in visits:
        if v.place_id is not None:
            at[v.place_id].append(v)
    planner: dict[str, tuple[str, list[ReasonNote]]] = {}
    for change in changes:  # in time order: a later acceptance's reason wins
        if change.cause == "accepted":
            planner |= stop_reasons(change)
    reported = {s.stop_id: s for s in report.stops} if report is not None else {}
    # Planned times: the plan the bus loaded, as its planner projects it from the depot; a
    # stop it does not have, from the first proposal's projection.
    times: dict[str, PointDoc] = {p.id: p for p in first.before.points} if first else {}
    if sent is not None:
        times |= planned_points(sent)
    lines = []
    for sid, name, planned in _planned(report, sent, first, visits):
        here = at.get(sid, [])
        minutes = sum(v.duration_min for v in here)
        status: StopStatus = (reported[sid].status if sid in reported
                              else _status(here, minutes, planned, over))
        reasons: list[ReasonNote] = []
        if status in ("shortened", "skipped"):
            reasons = (planner[sid][1] if sid in planner
                       else _office_reason(status, minutes, planned))
        point = times.get(sid)
        ends = [v.end_ts for v in here]
        lines.append(StopLine(
            stop_id=sid, name=here[0].place_name or name if here else name,
            planned_min=planned,
            planned_arrival=None if point is None else datetime.fromisoformat(point.eta),
            planned_departure=None if point is None else datetime.fromisoformat(point.etd),
            arrival=min(v.start_ts for v in here) if here else None,
            departure=None if not here or None in ends else max(e for e in ends if e),
            minutes=round(minutes, 1), visits=len(here), status=status, reasons=reasons))
    return lines


def _soc_from_spans(legs_and_visits: list[tuple[datetime, datetime | None, float | None,
                                                float | None]]) -> list[SocPoint]:
    points: dict[datetime, float] = {}
    for start, end, soc_start, soc_end in legs_and_visits:
        if soc_start is not None:
            points[start] = soc_start
        if end is not None and soc_end is not None:
            points[end] = soc_end
    return [SocPoint(ts=ts, soc=soc) for ts, soc in sorted(points.items())]


async def _gaps(archive: Archive, bus: str, day: date, start: datetime,
                end: datetime) -> list[Gap]:
    found: dict[int, Gap] = {}
    for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
        for gap in await archive.gaps(bus, d):
            if start <= gap.after < end:
                found[gap.first] = gap
    return [found[k] for k in sorted(found)]


async def bus_day(archive: Archive, bus: str, day: date, *, tz: str,
                  now: datetime | None = None) -> DayView:
    """``bus``'s local ``day`` in zone ``tz``. ``now``: a stop not visited counts as skipped
    once the day is over (or the bus's report came); before, it is pending."""
    zone = ZoneInfo(tz)
    start, end = day_bounds(day, zone)
    before, after = day - timedelta(days=1), day + timedelta(days=1)

    def inside(ts: datetime) -> bool:
        return start <= ts < end

    legs = [x for x in await archive.legs(bus, before, last=after) if inside(x.start_ts)]
    visits = [x for x in await archive.visits(bus, before, last=after) if inside(x.start_ts)]
    charging = [x for x in await archive.charging(bus, before, last=after)
                if inside(x.start_ts)]
    alerts = [a for a in await archive.alerts(bus, before, last=after)
              if a.raised_at < end and (a.cleared_at is None or a.cleared_at >= start)]
    changes = [p for p in await archive.plan_changes(bus, before, last=after) if inside(p.ts)]
    report = next((r for r in await archive.daily_reports(bus, day) if r.day == day), None)
    announced = await plan_changes(archive, bus, start - timedelta(days=1), end)
    made = proposals(announced)
    # The plan as sent: the last one the bus loaded for this day (a later version replaces).
    sent = next((p for _, p in reversed(loaded_plans(announced)) if p.date == day), None)
    first = next((made[p.proposal_id] for p in changes
                  if p.cause == "proposed" and p.proposal_id in made), None)
    over = report is not None or (now is not None and now >= end)
    day_visits = {v.id for v in visits}
    counted = {s.id: s for s in await archive.visit_services(bus, before, last=after)
               if s.id in day_visits}

    series = await soc_series(archive, bus, start, end)
    soc = [SocPoint(ts=ts, soc=value) for ts, value in series]
    source = "telemetry"
    if not soc:
        soc = _soc_from_spans([(x.start_ts, x.end_ts, x.soc_start, x.soc_end) for x in legs]
                              + [(x.start_ts, x.end_ts, x.soc_start, x.soc_end)
                                 for x in visits])
        source = "spans" if soc else "none"

    projections = []
    for change in changes:
        proposal = made.get(change.proposal_id or "")
        if change.cause == "accepted" and proposal is not None:
            points = [SocPoint(ts=datetime.fromtimestamp(t, UTC), soc=s)
                      for t, s in projection_points(proposal.after)]
            projections.append(ProjectionCurve(proposal_id=proposal.id, kind=proposal.kind,
                                               accepted_at=change.ts, points=points))
    reference = first or next(iter(made.values()), None)
    return DayView(
        bus=bus, day=day, tz=tz, start=start, end=end,
        stops=_stops(report, sent, first, visits, changes, over), plan_version=(
            None if sent is None else sent.version),
        plan_events=[PlanEvent(ts=p.ts, cause=p.cause, version=p.version,
                               proposal_id=p.proposal_id, proposal_kind=p.proposal_kind,
                               emergency=bool(p.emergency), accepted=p.accepted,
                               reasons=[note(r) for r in p.reasons]) for p in changes],
        soc=soc, soc_source=source,
        reserve_pct=None if reference is None else reference.after.reserve_pct,
        threshold_pct=None if reference is None else reference.after.threshold_pct,
        projections=projections, legs=legs, visits=visits, charging=charging, alerts=alerts,
        gaps=await _gaps(archive, bus, day, start, end), report=report, services=counted)
