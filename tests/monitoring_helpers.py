"""Scripted routes for monitoring tests: positions along straight lines between places.

Small on purpose and swappable: when the GPS simulator (NMEA → gpsd → driver)
exists, :class:`RouteGps` is replaced by it; until then it writes ``gps.*``
straight into the vehicle state from the model's odometer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from busd import signals as sig
from busd.clock import Clock
from busd.event_catalog import EventModel, LegCompleted, VisitEnded
from busd.plan import Plan, haversine_m, parse_plan
from busd.state import VehicleState
from busd.supervisor import ComponentContext

# A place: id, name, latitude, longitude.
Place = tuple[str, str, float, float]

DEPOT: Place = ("livani", "Līvāni depot", 56.3543, 26.1758)
ROZUPE: Place = ("rozupe", "Rožupe", 56.3974, 26.3952)
TURKI: Place = ("turki", "Turki", 56.4555, 26.2740)
PREILI: Place = ("preili", "Preiļi public charger", 56.2944, 26.7246)


def make_plan(day: date = date(2026, 1, 1), *, stops: tuple[Place, ...] = (ROZUPE, TURKI),
              planned_min: float = 20, geofence_m: float = 150.0) -> Plan:
    return parse_plan({
        "date": day.isoformat(), "version": 1,
        "depot": {"id": DEPOT[0], "name": DEPOT[1], "lat": DEPOT[2], "lon": DEPOT[3],
                  "leave_at": time(0, 0).isoformat(), "return_by": time(23, 0).isoformat()},
        "stops": [{"id": s[0], "name": s[1], "lat": s[2], "lon": s[3], "planned_min": planned_min,
                   "min_min": planned_min / 2, "geofence_m": geofence_m, "cycle": "weekly"}
                  for s in stops],
        "chargers": [{"id": PREILI[0], "name": PREILI[1], "lat": PREILI[2], "lon": PREILI[3],
                      "power_kw": 50}],
    })


@dataclass(frozen=True)
class Route:
    """A polyline of (lat, lon); distance along it → position."""

    points: tuple[tuple[float, float], ...]

    @property
    def lengths(self) -> list[float]:
        return [haversine_m(*a, *b) for a, b in zip(self.points, self.points[1:], strict=False)]

    @property
    def length_m(self) -> float:
        return sum(self.lengths)

    def at(self, metres: float) -> tuple[float, float]:
        for (a, b), seg in zip(zip(self.points, self.points[1:], strict=False), self.lengths,
                               strict=False):
            if metres <= seg:
                f = metres / seg if seg > 0 else 0.0
                return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
            metres -= seg
        return self.points[-1]


class RouteGps:
    """Component: writes the position on ``route`` for the distance the model has driven.

    ``odometer_km``: the model's true odometer (e.g. ``lambda: sim.model.state.odometer_km``);
    ``scale``: route metres per odometer metre (route shorter than the road, say).
    """

    name = "test.gps"
    critical = False

    def __init__(self, *, state: VehicleState, clock: Clock, route: Route,
                 odometer_km: Callable[[], float], scale: float = 1.0,
                 period_s: float = 1.0) -> None:
        self.state, self.clock, self.route = state, clock, route
        self.odometer_km, self.scale, self.period_s = odometer_km, scale, period_s
        self._start = odometer_km()

    def write(self) -> None:
        lat, lon = self.route.at((self.odometer_km() - self._start) * 1000.0 * self.scale)
        self.state.update(sig.GPS_FIX, "3d", source="test-gps")
        self.state.update(sig.GPS_LAT, lat, source="test-gps")
        self.state.update(sig.GPS_LON, lon, source="test-gps")

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            self.write()
            await self.clock.sleep(self.period_s)


class CaptureSink:
    """An EventEmitter that records what was emitted (reports as ``report.{kind}``): the
    models in ``models``, and each as its JSON data in ``events``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.models: list[EventModel] = []

    def emit(self, event: EventModel) -> None:
        self.models.append(event)
        self.events.append((event.kind, event.to_dict()))  # type: ignore[attr-defined]

    def report(self, report: EventModel) -> None:
        self.models.append(report)
        self.events.append((f"report.{report.kind}", report.to_dict()))  # type: ignore[attr-defined]

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for k, p in self.events if k == kind]


def span(**fields: object) -> dict[str, object]:
    """The figures of a closed leg/visit/charge event (busd/event_catalog.py), zero by
    default; ``fields`` override them."""
    base: dict[str, object] = {
        "id": "rec-1", "day": "2026-12-14", "status": "closed",
        "start": "2026-12-14T08:00:00.000Z", "end": "2026-12-14T09:00:00.000Z",
        "duration_min": 60.0, "out_kwh": 0.0, "regen_kwh": 0.0, "charged_kwh": 0.0,
        "net_kwh": 0.0, "gap_s": 0.0, "gaps": 0, "gps_km": 0.0, "lift_cycles": 0,
        "lift_counter": None, "temp_c": None, "odo_start": None, "odo_end": None,
        "soc_start": None, "soc_end": None,
    }
    return {**base, **fields}


def leg_event(**fields: object) -> LegCompleted:
    return LegCompleted.model_validate(span(**{
        "from_place": None, "from_name": None, "to_place": None, "to_name": None, "km": 0.0,
        "km_source": "odometer", "kwh_per_km": None, "avg_kmh": None, "soc_used": None,
        **fields}))


def visit_ended(**fields: object) -> VisitEnded:
    return VisitEnded.model_validate(span(**{
        "place_id": None, "place_name": None, "place_kind": None, "lat": None, "lon": None,
        "radius_m": None, "soc_min": None, **fields}))


def epoch(iso: str) -> float:
    """An event's UTC ISO time (``start``, ``end``) as seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
