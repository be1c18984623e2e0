"""Proposals: the changes to the driver's itinerary, with reasons in three languages.

A proposal is data: an id (a hash of what it proposes and what it replaces,
so the same situation gives the same id), machine-readable changes, the new
itinerary, projections before and after, and reasons as codes with
parameters plus their Latvian, Lithuanian and English renderings. The models
are the event catalogue's (busd/event_catalog.py): the plan events carry them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal, Protocol

from busd.clock import utc_iso
from busd.event_catalog import Change, PointDoc, ProjectionDoc, Proposal, Reason
from busd.plan import Plan
from busd.planner import i18n
from busd.planner.model import Evaluation, Instance, evaluate
from busd.planner.projection import Built, Item, Situation

__all__ = ["Change", "PointDoc", "ProjectionDoc", "Proposal", "Reason", "make_proposal",
           "projection_doc", "proposal_id", "shape"]


def shape(itinerary: tuple[Item, ...] | list[Item]) -> tuple[tuple[str, str, float | None], ...]:
    """What a proposal means for the driver: stops, their minutes, where to charge.

    A charge's estimated length moves with every SOC reading, so it is not part
    of the shape (otherwise every reading would be a "new" proposal).
    """
    return tuple((i.kind, i.id, i.minutes if i.kind == "stop" else None) for i in itinerary)


def proposal_id(plan: Plan, base: tuple[Item, ...], itinerary: tuple[Item, ...]) -> str:
    payload = json.dumps(
        [plan.bus, str(plan.date), plan.version, shape(base), shape(itinerary)], sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def projection_doc(built: Built, ev: Evaluation, now: float) -> ProjectionDoc:
    inst = built.instance
    points = []
    for p in ev.points:
        pid = built.node_ids[p.node]
        kind: Literal["stop", "charge", "depot"] = (
            "depot" if p.node == inst.depot else "charge" if inst.is_charger(p.node) else "stop"
        )
        points.append(
            PointDoc(
                id=pid, kind=kind, eta=utc_iso(p.arrive), etd=utc_iso(p.depart),
                soc_arrive=round(p.soc_arrive, 2), soc_depart=round(p.soc_depart, 2),
                minutes=round(p.minutes, 1), late_min=round(p.late_min, 1),
            )
        )
    return ProjectionDoc(
        ts=utc_iso(now), soc=round(inst.soc_pct, 2), safe=ev.safe,
        reserve_pct=built.reserve_pct, margin_pct=round(built.margin_pct, 2),
        threshold_pct=round(inst.threshold_pct, 2), depot_soc=round(ev.depot_soc, 2),
        depot_margin_pct=round(ev.depot_soc - inst.threshold_pct, 2),
        depot_eta=utc_iso(ev.points[-1].arrive), points=points,
    )


def _local_hhmm(plan: Plan, ts: float) -> str:
    return datetime.fromtimestamp(ts, plan.zone).strftime("%H:%M")


class _Reason(Protocol):
    """Adds a reason, in every language, to the proposal being made."""

    def __call__(self, code: str, **params: str | float | int) -> None: ...


def _emergency_reasons(
    inst: Instance,
    built: Built,
    best: Evaluation,
    reason: _Reason,
    changes: list[Change],
) -> None:
    """No safe plan: say which case it is, in words the driver cannot misread, then where
    to go (``best`` is already the way to the nearest open charger, or the depot)."""
    ids, name = built.node_ids, built.names.get
    in_progress = bool(inst.stops) and inst.stops[0].in_progress
    first: tuple[int, ...] = (1,) if in_progress else ()
    # Straight home from here (a visit in progress ended now): the best the bus can do.
    home = evaluate(inst, first, {1: 0.0} if first else {})
    here = 1 if first else 0
    if home.safe:
        reason("emergency_visits")  # only the visit under way cannot keep its minimum
    elif home.depot_soc <= 0:
        reason("emergency_unreachable", soc=round(inst.soc_pct, 1),
               km=round(inst.dist[here][inst.depot], 1))
    else:
        reason("emergency_reserve", soc=round(home.depot_soc, 1),
               need=round(inst.threshold_pct, 1))
    goal = next((v for v in best.seq if inst.is_charger(v)), inst.depot)
    km = round(inst.dist[here][goal], 1)
    changes.append(
        Change(kind="go_to", charger=ids[goal] if goal != inst.depot else None,
               stop=ids[1] if first else None, after_min=0.0 if first else None)
    )
    if first:
        reason("end_visit", name=name(ids[1], ids[1]))
    if goal != inst.depot:
        reason("go_charger", name=name(ids[goal], ids[goal]), km=km)
    else:
        reason("go_depot", km=km)


def make_proposal(
    plan: Plan,
    built: Built,
    active: Evaluation,
    best: Evaluation,
    itinerary: tuple[Item, ...],
    sit: Situation,
    *,
    base: tuple[Item, ...] = (),
    emergency: bool = False,
) -> Proposal:
    inst = built.instance
    ids = built.node_ids
    name = built.names.get

    def stop_ids(ev: Evaluation) -> list[str]:
        return [ids[v] for v in ev.seq if not inst.is_charger(v)]

    before_ids, after_ids = stop_ids(active), stop_ids(best)
    before_min = {ids[v]: m for v, m in active.minutes.items()}
    after_min = {ids[v]: m for v, m in best.minutes.items()}
    changes: list[Change] = []
    reasons: list[Reason] = []

    def reason(code: str, **params: str | float | int) -> None:
        texts: dict[str, str] = {lang: i18n.render(code, params, lang) for lang in i18n.LANGUAGES}
        reasons.append(Reason(code=code, params=params, text=texts))

    need = inst.threshold_pct
    if emergency:
        _emergency_reasons(inst, built, best, reason, changes)
    elif not active.safe:
        reason(
            "unsafe", soc=round(active.depot_soc, 1), need=round(need, 1),
            reserve=built.reserve_pct, margin=round(built.margin_pct, 1),
        )
        weather = {"heating": "cold", "cooling": "hot", "neither": "mild"}[built.climate]
        reason(
            weather, temp=round(sit.outside_temp, 1), site_kw=round(built.site_kw, 2),
            drive=round(built.drive_kwh_per_km, 3),
        )
    else:
        reason("improved", soc=round(active.depot_soc, 1), need=round(need, 1))
    if not emergency:
        for sid in before_ids:
            if sid not in after_ids:
                changes.append(Change(kind="skip", stop=sid, before_min=before_min[sid]))
                reason("skip", name=name(sid, sid), priority=plan.stop(sid).priority)
        for sid in after_ids:
            if sid not in before_ids:
                changes.append(Change(kind="restore", stop=sid, after_min=after_min[sid]))
                reason("restore", name=name(sid, sid), minutes=after_min[sid])
            elif abs(after_min[sid] - before_min[sid]) >= 0.5:
                change: Literal["shorten", "lengthen"] = (
                    "shorten" if after_min[sid] < before_min[sid] else "lengthen"
                )
                changes.append(
                    Change(kind=change, stop=sid, before_min=before_min[sid],
                           after_min=after_min[sid])
                )
                reason(change, name=name(sid, sid), before=before_min[sid], after=after_min[sid])
        common_before = [s for s in before_ids if s in after_ids]
        common_after = [s for s in after_ids if s in before_ids]
        if common_before != common_after:
            changes.append(
                Change(kind="reorder", order_before=common_before, order_after=common_after)
            )
            reason("reorder", order=" → ".join(name(s, s) or s for s in after_ids))
        charger_before = [v for v in active.seq if inst.is_charger(v)]
        for p_i, p in enumerate(best.points[:-1]):
            if inst.is_charger(p.node):
                prev = ids[best.points[p_i - 1].node] if p_i else None
                cid = ids[p.node]
                changes.append(
                    Change(kind="charge", charger=cid, after=prev, kwh=round(p.charge_kwh, 1),
                           soc_to=round(p.soc_depart, 1), after_min=round(p.minutes, 1))
                )
                reason(
                    "charge", name=name(cid, cid), minutes=round(p.minutes),
                    kwh=round(p.charge_kwh, 1), soc=round(p.soc_depart),
                    after=name(prev, prev) if prev else "—",
                )
        for v in charger_before:
            if v not in best.seq:
                changes.append(Change(kind="drop_charge", charger=ids[v]))
                reason("drop_charge", name=name(ids[v], ids[v]))
    reason("result", eta=_local_hhmm(plan, best.points[-1].arrive), soc=round(best.depot_soc, 1))
    kinds = {c.kind for c in changes}
    kind: Literal["reduce", "charge", "restore", "reorder", "emergency"] = (
        "emergency" if emergency
        else "charge" if "charge" in kinds
        else "reduce" if kinds & {"skip", "shorten"}
        else "restore" if kinds & {"restore", "lengthen", "drop_charge"}
        else "reorder"
    )
    digest = proposal_id(plan, base, itinerary)
    return Proposal(
        id=digest, plan_version=plan.version, created=utc_iso(sit.now), kind=kind,
        emergency=emergency, changes=changes, itinerary=list(itinerary),
        before=projection_doc(built, active, sit.now), after=projection_doc(built, best, sit.now),
        reasons=reasons,
    )
