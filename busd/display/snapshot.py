"""What the page shows, computed from the daemon's state: pure functions, no I/O.

The server turns the vehicle state, the alert board, the health table and the
ports into one JSON-ready dict (the snapshot) and pushes it to the page; the
page only formats and translates. Values carry their staleness: a stale
signal is sent as ``{"v": last value, "stale": true}`` and drawn as stale,
never as a current value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from busd import signals as sig
from busd.alerts import Alert
from busd.alerts_lift import ALERT_KIND as LIFT_ALERT_KIND
from busd.alerts_lift import evaluate_lift_alert
from busd.display.ports import PlanView, Proposal, UplinkStatus, VisitCount
from busd.state import SignalView
from busd.supervisor import ComponentHealth, Phase

# Signals whose staleness makes the whole page "data stale": without the BMS
# and the vehicle frames the screen's main numbers mean nothing.
KEY_SIGNALS = (sig.BATTERY_SOC, sig.VEHICLE_SPEED)
WATCHED = (
    sig.BATTERY_SOC, sig.VEHICLE_SPEED, sig.GPS_SPEED, sig.GPS_LAT, sig.GPS_LON,
    sig.LIFT_STATE, sig.CHARGER_PLUGGED, sig.CHARGER_STATE, sig.CHARGER_POWER,
    sig.CHARGER_SESSION_ENERGY,
)


@dataclass(frozen=True, slots=True)
class SnapshotSettings:
    margin_amber_pct: float = 5.0
    charge_target_soc: float = 90.0
    battery_capacity_kwh: float = 110.0
    lift_speed_threshold_kmh: float = 3.0
    night_mode: str = "auto"  # auto | on | off
    latitude: float = 56.3543
    longitude: float = 26.1758


def margin_band(margin: float | None, *, amber_below: float) -> str | None:
    """green: comfortably above the reserve; amber: less than ``amber_below`` points; red: below."""
    if margin is None:
        return None
    if margin < 0:
        return "red"
    return "amber" if margin < amber_below else "green"


def minutes_to_target(
    soc: float | None, power_kw: float | None, *, target: float, capacity_kwh: float
) -> float | None:
    """Minutes to reach ``target`` % at the present power; None when it cannot be estimated.

    Linear: the charger's taper near full makes this optimistic for the last
    few percent, which is why the page shows it as an estimate.
    """
    if soc is None or power_kw is None or power_kw < 0.1:
        return None
    if soc >= target:
        return 0.0
    return (target - soc) / 100.0 * capacity_kwh / power_kw * 60.0


def solar_elevation_deg(ts: float, lat: float, lon: float) -> float:
    """Sun's elevation above the horizon, degrees (NOAA's approximation, within ~1°)."""
    moment = datetime.fromtimestamp(ts, UTC)
    day = moment.timetuple().tm_yday
    hours = moment.hour + moment.minute / 60 + moment.second / 3600
    gamma = 2 * math.pi / 365 * (day - 1 + (hours - 12) / 24)
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
                       - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma))
    decl = (0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma)
            - 0.006758 * math.cos(2 * gamma) + 0.000907 * math.sin(2 * gamma)
            - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma))
    solar_min = hours * 60 + eqtime + 4 * lon
    hour_angle = math.radians(solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = (math.sin(phi) * math.sin(decl)
                  + math.cos(phi) * math.cos(decl) * math.cos(hour_angle))
    return 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def is_night(mode: str, ts: float, lat: float, lon: float) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    # A little below the horizon: dusk is still bright enough for the day theme.
    return solar_elevation_deg(ts, lat, lon) < -3.0


def _value(view: SignalView | None) -> dict[str, Any]:
    if view is None:
        return {"v": None, "stale": True}
    return {"v": view.value, "stale": view.stale}


def _fresh_number(view: SignalView | None) -> float | None:
    if view is None:
        return None
    value = view.fresh_value
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _proposal(proposal: Proposal | None) -> dict[str, Any] | None:
    if proposal is None:
        return None
    return {
        "id": proposal.id,
        "emergency": proposal.emergency,
        "reasons": {lang: list(lines) for lang, lines in proposal.reasons.items()},
    }


def _plan(plan: PlanView | None, amber: float) -> dict[str, Any] | None:
    if plan is None:
        return None
    nxt = plan.next_stop
    return {
        "stops": [
            {"id": s.id, "name": s.name, "status": s.status.value,
             "planned_min": s.planned_min, "eta": s.eta}
            for s in plan.stops
        ],
        "next": None if nxt is None else {
            "id": nxt.id, "name": nxt.name, "eta": nxt.eta, "planned_min": nxt.planned_min,
        },
        "depot": {
            "soc": plan.depot_soc,
            "reserve": plan.reserve_soc,
            "margin": plan.margin,
            "band": margin_band(plan.margin, amber_below=amber),
            "proposal_at": plan.proposal_at,
        },
        "proposal": _proposal(plan.proposal),
    }


def build_snapshot(
    *,
    now: float,
    views: Mapping[str, SignalView],
    alerts: Mapping[str, Alert],
    health: Mapping[str, ComponentHealth],
    plan: PlanView | None,
    uplink: UplinkStatus | None,
    clients: VisitCount | None,
    settings: SnapshotSettings,
    has_plan_port: bool = True,
    has_clients_port: bool = True,
    clients_today: int | None = None,
) -> dict[str, Any]:
    """Everything the page draws, as plain JSON types."""
    lift_view = views.get(sig.LIFT_STATE)
    computed = evaluate_lift_alert(
        views, active=False, speed_threshold_kmh=settings.lift_speed_threshold_kmh
    )
    lift_warning = LIFT_ALERT_KIND in alerts or computed.active

    plugged_view = views.get(sig.CHARGER_PLUGGED)
    charging: dict[str, Any] | None = None
    if plugged_view is not None and plugged_view.value is True:
        soc = _fresh_number(views.get(sig.BATTERY_SOC))
        power = _fresh_number(views.get(sig.CHARGER_POWER))
        state_view = views.get(sig.CHARGER_STATE)
        charging_now = state_view is not None and state_view.fresh_value == "charging"
        charging = {
            "plugged": _value(plugged_view),
            "state": _value(state_view),
            "power": _value(views.get(sig.CHARGER_POWER)),
            "energy": _value(views.get(sig.CHARGER_SESSION_ENERGY)),
            "target": settings.charge_target_soc,
            "minutes_to_target": minutes_to_target(
                soc, power, target=settings.charge_target_soc,
                capacity_kwh=settings.battery_capacity_kwh,
            ) if charging_now else None,
        }

    lat = _fresh_number(views.get(sig.GPS_LAT))
    lon = _fresh_number(views.get(sig.GPS_LON))
    night = is_night(
        settings.night_mode, now,
        settings.latitude if lat is None else lat, settings.longitude if lon is None else lon,
    )
    key_stale = any(views.get(n) is None or views[n].stale for n in KEY_SIGNALS)

    return {
        "ts": now,
        "night": night,
        "stale": key_stale,
        "soc": _value(views.get(sig.BATTERY_SOC)),
        "speed": _value(views.get(sig.VEHICLE_SPEED)),
        "plan": _plan(plan, settings.margin_amber_pct),
        "has_plan": has_plan_port,
        "lift": {
            "state": _value(lift_view),
            "warning": lift_warning,
        },
        "charging": charging,
        "office": None if uplink is None else {
            "connected": uplink.connected, "backlog": uplink.backlog,
        },
        "alerts": [
            {"kind": a.kind, "message": a.message, "raised_at": a.raised_at}
            for a in sorted(alerts.values(), key=lambda a: a.raised_at)
        ],
        "health": [
            {"name": h.name, "phase": h.phase.value, "reason": h.reason}
            for h in health.values()
            if h.phase in (Phase.DEGRADED, Phase.BACKOFF)
        ],
        "clients": None if clients is None else {
            "visit": clients.visit_id, "count": clients.count, "counts": dict(clients.counts),
            "activity": clients.activity, "activities_min": dict(clients.activities_min),
            "place": clients.place_name,
        },
        "clients_today": clients_today,
        "has_clients": has_clients_port,
    }
