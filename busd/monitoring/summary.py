"""The service's indicators, computed from stored records (pure functions).

Daily: km, energy (out, regenerated, charged, net), kWh/km, how the day splits
(driving / on site / charging), each planned stop served, shortened or skipped
(with the reason where one was recorded), unplanned stops, min SOC, lift
cycles, clients served per service type, minutes per activity, alerts, and how
long the energy figures had no data.

Monthly: visits per village against the plan's cycle (weekly, fortnightly,
monthly), time on site per village, and the month's totals.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]
ON_SITE_KINDS = ("stop", "unplanned", "charger")
SHORTENED_TOLERANCE_MIN = 1.0  # a visit this close to its planned length counts as served
CYCLE_DAYS = {"weekly": 7, "fortnightly": 14, "monthly": None}


def _sum(rows: Sequence[Row], key: str) -> float:
    return sum(float(r.get(key) or 0.0) for r in rows)


def _sum_known(rows: Sequence[Row], key: str) -> float | None:
    """The sum over rows that have the figure; None when none has it (no charger counter)."""
    known = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(known) if known else None


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def daily_summary(
    day: str, records: Mapping[str, Sequence[Row]], *, alerts: int = 0
) -> dict[str, Any]:
    """The day's summary from the store's records of that day (``day_records``)."""
    legs = list(records.get("leg", ()))
    visits = list(records.get("visit", ()))
    charges = list(records.get("charge", ()))
    on_site = [v for v in visits if v.get("place_kind") in ON_SITE_KINDS]
    km = _sum(legs, "km")
    drive_net = _sum(legs, "out_kwh") - _sum(legs, "regen_kwh")
    out_kwh = _sum(legs, "out_kwh") + _sum(visits, "out_kwh")
    regen_kwh = _sum(legs, "regen_kwh") + _sum(visits, "regen_kwh")
    charged_kwh = _sum(legs, "charged_kwh") + _sum(visits, "charged_kwh")
    socs = [float(s["soc"]) for s in records.get("samples", ()) if s.get("soc") is not None]
    for rec in (*legs, *visits, *charges):
        socs += [float(rec[k]) for k in ("soc_start", "soc_end", "soc_min")
                 if rec.get(k) is not None]

    stops = []
    notes = {n["stop_id"]: n for n in records.get("notes", ())}
    minutes_at: dict[str, float] = defaultdict(float)
    visits_at: dict[str, int] = defaultdict(int)
    first_at: dict[str, float] = {}
    for v in visits:
        if v.get("place_id"):
            minutes_at[v["place_id"]] += float(v.get("duration_min") or 0.0)
            visits_at[v["place_id"]] += 1
            start = float(v.get("start_ts") or 0.0)
            first_at[v["place_id"]] = min(first_at.get(v["place_id"], start), start)
    counts = {"served": 0, "shortened": 0, "skipped": 0}
    # In the order the bus visited them (the plan may have been reordered during the
    # day); stops not visited follow, in the plan's order.
    planned = list(records.get("plan_stops", ()))
    planned.sort(key=lambda st: (st["stop_id"] not in first_at,
                                 first_at.get(st["stop_id"], 0.0)))
    for stop in planned:
        sid = stop["stop_id"]
        minutes = minutes_at.get(sid, 0.0)
        note = notes.get(sid)
        if visits_at.get(sid, 0) == 0:
            status = "skipped"
        elif minutes < float(stop["planned_min"]) - SHORTENED_TOLERANCE_MIN:
            status = "shortened"
        else:
            status = "served"
        counts[status] += 1
        reason = note["reason"] if note is not None and status != "served" else None
        if status == "skipped" and reason is None:
            reason = "not visited"
        stops.append({"stop_id": sid, "name": stop["name"], "status": status,
                      "planned_min": stop["planned_min"], "minutes": round(minutes, 1),
                      "reason": reason})
    return {
        "day": day,
        "km": round(km, 2),
        "energy_out_kwh": round(out_kwh, 3),
        "energy_regen_kwh": round(regen_kwh, 3),
        "energy_charged_kwh": round(charged_kwh, 3),
        "energy_net_kwh": round(out_kwh - regen_kwh, 3),
        "driving_kwh_per_km": _r(drive_net / km if km > 0.05 else None, 3),
        "kwh_per_km": _r((out_kwh - regen_kwh) / km if km > 0.05 else None, 3),
        "driving_min": round(_sum(legs, "duration_min"), 1),
        "on_site_min": round(_sum(on_site, "duration_min"), 1),
        "charging_min": round(_sum(charges, "duration_min"), 1),
        "legs": len(legs),
        "visits": len(on_site),
        "unplanned_stops": sum(1 for v in visits if v.get("place_kind") == "unplanned"),
        "stops_served": counts["served"],
        "stops_shortened": counts["shortened"],
        "stops_skipped": counts["skipped"],
        "stops": stops,
        "charging_sessions": len(charges),
        # Both sides of every session: what the chargers reported, what reached the pack.
        "charging_charger_kwh": _r(_sum_known(charges, "charger_kwh"), 3),
        "charging_battery_kwh": round(_sum(charges, "battery_kwh"), 3),
        "charging_diff_kwh": _r(_sum_known(charges, "charge_diff_kwh"), 3),
        "charger_counter_rejects": int(_sum(charges, "counter_rejects")),
        "min_soc": _r(min(socs) if socs else None, 1),
        "lift_cycles": int(_sum(legs, "lift_cycles") + _sum(visits, "lift_cycles")),
        "clients_served": int(sum(int(c["count"]) for c in records.get("clients", ()))),
        **services_and_activities(records),
        "alerts": alerts,
        "energy_gap_min": round((_sum(legs, "gap_s") + _sum(visits, "gap_s")) / 60.0, 1),
        "switched_off_min": round((_sum(legs, "off_s") + _sum(visits, "off_s")) / 60.0, 1),
        "open_records": sum(1 for r in (*legs, *visits, *charges) if r.get("status") == "open"),
    }


def services_and_activities(records: Mapping[str, Sequence[Row]]) -> dict[str, Any]:
    """Clients served per service type and minutes per activity (the staff page's tallies;
    closed activity time only: a day's visits have ended when its summary is made)."""
    services: dict[str, int] = defaultdict(int)
    for row in records.get("services", ()):
        services[row["service"]] += int(row["count"] or 0)
    seconds: dict[str, float] = defaultdict(float)
    for row in records.get("activities", ()):
        seconds[row["activity"]] += float(row["seconds"] or 0.0)
    return {"services": dict(sorted(services.items())),
            "activities_min": {k: round(v / 60.0, 1) for k, v in sorted(seconds.items())}}


def expected_visits(cycle: str | None, year: int, month: int) -> float | None:
    """How many visits the plan's cycle asks for in that month."""
    if cycle is None:
        return None
    days = calendar.monthrange(year, month)[1]
    period = CYCLE_DAYS.get(cycle)
    return 1.0 if period is None else round(days / period, 1)


def monthly_summary(month: str, records: Mapping[str, Sequence[Row]]) -> dict[str, Any]:
    """Coverage and frequency per village for ``YYYY-MM``, and the month's totals."""
    year, mon = (int(x) for x in month.split("-"))
    villages: dict[str, dict[str, Any]] = {}
    for stop in records.get("plan_stops", ()):  # the latest plan of the month names the cycle
        villages[stop["stop_id"]] = {"stop_id": stop["stop_id"], "name": stop["name"],
                                     "cycle": stop.get("cycle"), "planned_days": 0,
                                     "visits": 0, "days_visited": set(), "minutes": 0.0}
    for stop in records.get("plan_stops", ()):
        villages[stop["stop_id"]]["planned_days"] += 1
    for v in records.get("visit", ()):
        if v.get("place_kind") != "stop":
            continue
        entry = villages.setdefault(v["place_id"], {
            "stop_id": v["place_id"], "name": v.get("place_name"), "cycle": None,
            "planned_days": 0, "visits": 0, "days_visited": set(), "minutes": 0.0})
        entry["visits"] += 1
        entry["days_visited"].add(v["day"])
        entry["minutes"] += float(v.get("duration_min") or 0.0)
    rows = []
    for entry in villages.values():
        expected = expected_visits(entry["cycle"], year, mon)
        visited = len(entry.pop("days_visited"))
        rows.append({**entry, "days_visited": visited, "minutes": round(entry["minutes"], 1),
                     "expected": expected,
                     "coverage": _r(visited / expected if expected else None, 2)})
    rows.sort(key=lambda r: r["name"] or "")
    service_days = sorted({r["day"] for k in ("leg", "visit") for r in records.get(k, ())})
    totals = daily_summary(month, {k: v for k, v in records.items() if k != "plan_stops"})
    alerts = sum(int(s.get("alerts") or 0) for s in records.get("summaries", ()))
    return {
        "month": month, "days_in_service": len(service_days), "villages": rows,
        "km": totals["km"], "energy_net_kwh": totals["energy_net_kwh"],
        "kwh_per_km": totals["kwh_per_km"], "driving_h": round(totals["driving_min"] / 60, 1),
        "on_site_h": round(totals["on_site_min"] / 60, 1),
        "charging_h": round(totals["charging_min"] / 60, 1),
        "lift_cycles": totals["lift_cycles"], "alerts": alerts,
        "unplanned_stops": totals["unplanned_stops"],
        "clients_served": totals["clients_served"], "services": totals["services"],
        "activities_min": totals["activities_min"],
    }
