"""A record being built by the day's segmentation, and the row it is stored as."""

from __future__ import annotations

from dataclasses import dataclass, field

from busd.monitoring.charge_energy import SessionCounter
from busd.monitoring.figures import Counters
from busd.monitoring.records import CHARGE, LEG, OPEN, PlaceRef, Row, Snap


@dataclass
class OpenRecord:
    """A leg, visit or charging session being recorded."""

    kind: str
    id: str
    start: Snap
    place: PlaceRef | None
    base: Counters = field(default_factory=Counters)
    odo_start: float | None = None
    soc_start: float | None = None
    min_soc: float | None = None
    peak_kw: float = 0.0
    session_kwh: float | None = None
    resumed: bool = False
    checkpoint_ts: float | None = None
    checkpoint_odo: float | None = None
    meter: SessionCounter = field(default_factory=SessionCounter)  # the charger's counter
    paused: Snap | None = None  # a charging session unplugged: ends here unless replugged

    def figures(self, now: Snap) -> Counters:
        return self.base + (now.counters - self.start.counters)


def record_row(
    rec: OpenRecord, end: Snap, status: str, *, day: str, to_place: PlaceRef | None = None
) -> Row:
    """The stored row of ``rec`` with its figures up to ``end``."""
    fig = rec.figures(end)
    duration_s = max(0.0, end.ts - rec.start.ts)
    temp = fig.mean_temp_c
    row: Row = {
        "id": rec.id, "day": day, "status": status,
        "start_ts": rec.start.ts, "end_ts": None if status == OPEN else end.ts,
        "updated_ts": end.ts, "duration_min": round(duration_s / 60.0, 3),
        "out_kwh": fig.out_kwh, "regen_kwh": fig.regen_kwh, "charged_kwh": fig.charged_kwh,
        "net_kwh": fig.out_kwh - fig.regen_kwh - fig.charged_kwh,
        "gap_s": fig.gap_s, "gaps": fig.gaps, "off_s": fig.off_s,
        "gps_km": fig.gps_m / 1000.0,
        "lift_cycles": fig.lift_cycles, "lift_counter": end.lift_counter,
        "temp_c": None if temp is None else round(temp, 2), "temp_s": fig.temp_s,
        "odo_start": rec.odo_start, "odo_end": end.odo,
        "soc_start": rec.soc_start, "soc_end": end.soc,
    }
    place = rec.place
    if rec.kind == LEG:
        km = None
        if rec.odo_start is not None and end.odo is not None:
            km = max(0.0, end.odo - rec.odo_start)
        distance = km if km is not None else fig.gps_m / 1000.0
        hours = duration_s / 3600.0
        net = fig.out_kwh - fig.regen_kwh
        row.update({
            "from_place": place.id if place else None,
            "from_name": place.name if place else None,
            "to_place": to_place.id if to_place else None,
            "to_name": to_place.name if to_place else None,
            "km": distance, "km_source": "odometer" if km is not None else "gps",
            "kwh_per_km": net / distance if distance > 0.05 else None,
            "avg_kmh": distance / hours if hours > 0 else None,
            "soc_used": None if rec.soc_start is None or end.soc is None
            else rec.soc_start - end.soc,
        })
    else:
        row.update({
            "place_id": place.id if place else None,
            "place_name": place.name if place else None,
            "place_kind": place.kind if place else None,
            "lat": place.lat if place else None, "lon": place.lon if place else None,
            "radius_m": place.radius_m if place else None,
            "soc_min": rec.min_soc,
        })
        if rec.kind == CHARGE:
            charger = rec.meter.kwh if rec.session_kwh is not None else None
            row.update({"peak_kw": rec.peak_kw, "session_kwh": rec.session_kwh,
                        "energy_added_kwh": fig.charged_kwh,
                        "charger_kwh": charger, "battery_kwh": fig.charged_kwh,
                        "charge_diff_kwh": None if charger is None
                        else charger - fig.charged_kwh,
                        "counter_rejects": rec.meter.rejected})
    return row
