"""One simulated bus's day, without CAN: signal values and the tracker's events, from a seed.

The day: parked at the depot in Līvāni, then a leg to each of a few villages of the
municipality with a visit at each (the wheelchair lift cycling, the heating on, now and then a
lift-door alert), a leg home, a charging session at the depot, the daily report, and parked at
the depot for the rest of the run. The figures are plausible, not physics: a minibus of
about 60 kWh driving 35-65 km/h at 0.25-0.35 kWh/km in the cold, several kW on site.

Pure: :meth:`DayModel.step` takes the simulated time and returns the values and events of the
interval since the last step; the caller (:mod:`simulators.fleet.bus`) writes them into the
vehicle state and the outbox. The events are the catalogue's models (busd/event_catalog.py),
so the office gets exactly what a real tracker sends.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from busd import signals as sig
from busd.clock import utc_iso
from busd.event_catalog import (
    AlertCleared,
    AlertRaised,
    ChargingEnded,
    ChargingStarted,
    DailyReport,
    EventModel,
    LegCompleted,
    LiftCycle,
    PlanChanged,
    StopOutcome,
    VisitEnded,
    VisitStarted,
)
from busd.state import Value
from simulators.fleet.config import DayConfig, MinutesRange

CAPACITY_KWH = 60.0
ROAD_FACTOR = 1.3  # road distance over the straight line (PRODUCT.md)
CHARGER_KW = 22.0


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    name: str
    lat: float
    lon: float


DEPOT = Place("depot", "Līvāni", 56.3543, 26.1758)
VILLAGES = (
    Place("rozupe", "Rožupe", 56.3974, 26.3952),
    Place("rudzati", "Rudzāti", 56.4399, 26.4574),
    Place("jersika", "Jersika", 56.2465, 26.2415),
    Place("turki", "Turki", 56.4555, 26.2740),
    Place("sutri", "Sutri", 56.3133, 26.5269),
    Place("varkava", "Vārkava", 56.2643, 26.5944),
    Place("preili", "Preiļi", 56.2944, 26.7246),
)

PhaseKind = Literal["depot", "drive", "visit", "charge", "parked"]


@dataclass(frozen=True, slots=True)
class Phase:
    kind: PhaseKind
    start: float
    end: float
    place: Place  # where it is (for a drive: where it goes)
    origin: Place | None = None  # a drive's start
    km: float = 0.0


@dataclass(frozen=True, slots=True)
class Step:
    values: dict[str, Value]
    events: list[EventModel]


def km_between(a: Place, b: Place) -> float:
    """Great circle times the road factor."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h)) * ROAD_FACTOR


def plan_day(config: DayConfig, start: float, rng: random.Random) -> list[Phase]:
    def minutes(r: MinutesRange) -> float:
        return rng.uniform(r.low, r.high) * 60

    villages = rng.sample(VILLAGES, config.stops)
    phases: list[Phase] = []
    t = start + minutes(config.depot_min)
    phases.append(Phase("depot", start, t, DEPOT))
    here = DEPOT
    for place in [*villages, DEPOT]:
        km = km_between(here, place)
        drive_s = km / rng.uniform(35, 65) * 3600
        phases.append(Phase("drive", t, t + drive_s, place, here, km))
        t += drive_s
        if place is not DEPOT:
            end = t + minutes(config.visit_min)
            phases.append(Phase("visit", t, end, place))
            t = end
        here = place
    end = t + minutes(config.charge_min)
    phases.append(Phase("charge", t, end, DEPOT))
    phases.append(Phase("parked", end, math.inf, DEPOT))
    return phases


@dataclass
class _Open:
    """The figures of the leg, visit or charging session under way."""

    id: str
    start: float
    odo: float
    soc: float
    out_kwh: float = 0.0
    regen_kwh: float = 0.0
    charged_kwh: float = 0.0
    gps_km: float = 0.0
    lift_cycles: int = 0
    soc_min: float = 100.0
    peak_kw: float = 0.0
    temps: list[float] = field(default_factory=list)


class DayModel:
    """A bus's day from ``start`` (simulated UTC seconds); call :meth:`step` with rising times."""

    def __init__(self, *, config: DayConfig, start: float, seed: int) -> None:
        self._cfg = config
        # Two streams: the day's plan and events from one, the measurement noise from the
        # other, so that the day is the seed's whatever the tick (the noise is drawn per step).
        self._rng = random.Random(seed)
        self._noise = random.Random(seed + 1)
        self.phases = plan_day(config, start, self._rng)
        self._i = -1  # the phase under way; -1: not begun
        self._t = start
        self.day = datetime.fromtimestamp(start, UTC).date()
        self.soc = self._rng.uniform(88, 98)
        self.odo = self._rng.uniform(10_000, 90_000)
        self.lift_counter = self._rng.randrange(100, 5000)
        self.lat, self.lon = DEPOT.lat, DEPOT.lon
        self.heading = 0.0
        self.speed = 0.0
        self._open: _Open | None = None
        self._day_totals = _Open(id="day", start=start, odo=self.odo, soc=self.soc)
        self._next_lift = math.inf
        self._lift_until = -math.inf
        self._alert_raised: float | None = None
        self._outcomes: list[StopOutcome] = []
        self._driving_min = self._on_site_min = self._charging_min = 0.0
        self._legs = self._visits = self._alerts = 0
        self.reported = False

    @property
    def phase(self) -> Phase:
        return self.phases[max(self._i, 0)]

    def step(self, now: float) -> Step:
        events: list[EventModel] = []
        if self._i < 0:
            self._i = 0
            events.append(PlanChanged(cause="file", version=1))
        while now >= self.phase.end:
            self._advance(self.phase.end, events)
            events += self._end_phase()
            self._i += 1
            events += self._begin_phase()
        self._advance(now, events)
        return Step(self._values(now), events)

    # --- time passing within a phase -----------------------------------------------------

    def _advance(self, now: float, events: list[EventModel]) -> None:
        dt = now - self._t
        if dt <= 0:
            return
        self._t = now
        ph, r = self.phase, self._noise
        hvac = 4.0 + r.uniform(-0.3, 0.3)
        regen = 0.0
        charged = 0.0
        if ph.kind == "drive":
            span = ph.end - ph.start
            frac = min(1.0, (now - ph.start) / span) if span > 0 else 1.0
            assert ph.origin is not None
            lat = ph.origin.lat + (ph.place.lat - ph.origin.lat) * frac
            lon = ph.origin.lon + (ph.place.lon - ph.origin.lon) * frac
            self.heading = math.degrees(math.atan2(lon - self.lon, lat - self.lat)) % 360
            self.lat, self.lon = lat, lon
            avg = ph.km / span * 3600 if span > 0 else 0.0
            self.speed = max(5.0, avg + r.uniform(-8, 8))
            km = avg * dt / 3600
            self.odo += km
            out = km * r.uniform(0.25, 0.35) + hvac * dt / 3600
            regen = out * 0.12
            self._driving_min += dt / 60
        else:
            self.speed = 0.0
            out = (hvac + (1.5 if ph.kind == "visit" else 0.3)) * dt / 3600
            km = 0.0
            if ph.kind == "visit":
                self._on_site_min += dt / 60
                self._lift(now, events)
            elif ph.kind == "charge":
                charged = CHARGER_KW * (1.0 if self.soc < 90 else 0.3) * dt / 3600
                self._charging_min += dt / 60
        net = out - regen - charged
        self.soc = min(100.0, max(0.0, self.soc - net / CAPACITY_KWH * 100))
        for o in (self._open, self._day_totals):
            if o is None:
                continue
            o.out_kwh += out
            o.regen_kwh += regen
            o.charged_kwh += charged
            o.gps_km += km * r.uniform(0.97, 1.03)
            o.soc_min = min(o.soc_min, self.soc)
            o.peak_kw = max(o.peak_kw, charged / dt * 3600)
            o.temps.append(self._cfg.outside_temp_c)

    def _lift(self, now: float, events: list[EventModel]) -> None:
        ph = self.phase
        if now >= self._next_lift:
            self._lift_until = now + 90
            self._next_lift = now + self._noise.uniform(self._cfg.lift_every_min.low,
                                                      self._cfg.lift_every_min.high) * 60
            self.lift_counter += 1
            assert self._open is not None
            self._open.lift_cycles += 1
            self._day_totals.lift_cycles += 1
            events.append(LiftCycle(cycles=1, day_cycles=self._day_totals.lift_cycles,
                                    counter=self.lift_counter, place_id=ph.place.id,
                                    place_name=ph.place.name))
        if self._alert_raised is not None and now - self._alert_raised >= 120:
            events.append(AlertCleared(alert="lift_door_open", raised_at=utc_iso(
                self._alert_raised), duration_s=round(now - self._alert_raised, 1),
                details={"place": ph.place.id}))
            self._alert_raised = None

    # --- phase boundaries -------------------------------------------------------------

    def _begin_phase(self) -> list[EventModel]:
        ph = self.phase
        self._open = _Open(id=f"{ph.kind}-{utc_iso(ph.start)}", start=ph.start, odo=self.odo,
                           soc=self.soc)
        if ph.kind == "visit":
            self._next_lift = ph.start + self._noise.uniform(2, 10) * 60
            if self._rng.random() < self._cfg.alert_probability:
                at = ph.start + self._rng.uniform(0.1, 0.5) * (ph.end - ph.start)
                self._alert_raised = at
                self._alerts += 1
                return [VisitStarted(**self._span("open", ph.start, None)),
                        AlertRaised(alert="lift_door_open", message="lift door open",
                                    raised_at=utc_iso(at), details={"place": ph.place.id})]
            return [VisitStarted(**self._span("open", ph.start, None))]
        if ph.kind == "charge":
            return [ChargingStarted(**self._span("open", ph.start, None), **self._charge())]
        if ph.kind == "parked" and not self.reported:
            self.reported = True
            return [self._report(ph.start)]
        return []

    def _end_phase(self) -> list[EventModel]:
        ph = self.phase
        if ph.kind == "drive":
            self._legs += 1
            assert ph.origin is not None and self._open is not None
            minutes = (ph.end - ph.start) / 60
            net = self._open.out_kwh - self._open.regen_kwh
            return [LegCompleted(
                **self._span("closed", ph.start, ph.end), from_place=ph.origin.id,
                from_name=ph.origin.name, to_place=ph.place.id, to_name=ph.place.name,
                km=round(ph.km, 2), km_source="odometer",
                kwh_per_km=round(net / ph.km, 3) if ph.km > 0 else None,
                avg_kmh=round(ph.km / minutes * 60, 1) if minutes > 0 else None,
                soc_used=round(self._open.soc - self.soc, 2))]
        if ph.kind == "visit":
            self._visits += 1
            minutes = (ph.end - ph.start) / 60
            self._outcomes.append(StopOutcome(stop_id=ph.place.id, name=ph.place.name,
                                              status="served", planned_min=round(minutes),
                                              minutes=round(minutes, 1), reason=None))
            self._next_lift = math.inf
            return [VisitEnded(**self._span("closed", ph.start, ph.end))]
        if ph.kind == "charge":
            return [ChargingEnded(**self._span("closed", ph.start, ph.end), **self._charge())]
        return []

    def _span(self, status: Literal["open", "closed"], start: float,
              end: float | None) -> dict[str, object]:
        o = self._open
        assert o is not None
        ph = self.phase
        net = o.out_kwh - o.regen_kwh - o.charged_kwh
        data: dict[str, object] = {
            "id": o.id, "day": self.day, "status": status, "start": utc_iso(start),
            "end": None if end is None else utc_iso(end),
            "duration_min": round(((end or start) - start) / 60, 2),
            "out_kwh": round(o.out_kwh, 3), "regen_kwh": round(o.regen_kwh, 3),
            "charged_kwh": round(o.charged_kwh, 3), "net_kwh": round(net, 3),
            "gap_s": 0.0, "gaps": 0, "gps_km": round(o.gps_km, 2),
            "lift_cycles": o.lift_cycles, "lift_counter": self.lift_counter,
            "temp_c": self._cfg.outside_temp_c, "odo_start": round(o.odo, 2),
            "odo_end": None if end is None else round(self.odo, 2),
            "soc_start": round(o.soc, 2), "soc_end": None if end is None else round(self.soc, 2),
        }
        if ph.kind != "drive":
            data |= {"place_id": ph.place.id, "place_name": ph.place.name,
                     "place_kind": "depot" if ph.place is DEPOT else "stop",
                     "lat": ph.place.lat, "lon": ph.place.lon, "radius_m": 150.0,
                     "soc_min": round(min(o.soc_min, self.soc), 2)}
        return data

    def _charge(self) -> dict[str, object]:
        o = self._open
        assert o is not None
        return {"peak_kw": round(o.peak_kw, 2), "session_kwh": round(o.charged_kwh, 3),
                "energy_added_kwh": round(o.charged_kwh, 3)}

    def _report(self, at: float) -> DailyReport:
        d = self._day_totals
        km = self.odo - d.odo
        net = d.out_kwh - d.regen_kwh - d.charged_kwh
        drive_net = d.out_kwh - d.regen_kwh
        return DailyReport(
            day=self.day, created=utc_iso(at), km=round(km, 2),
            energy_out_kwh=round(d.out_kwh, 2), energy_regen_kwh=round(d.regen_kwh, 2),
            energy_charged_kwh=round(d.charged_kwh, 2), energy_net_kwh=round(net, 2),
            driving_kwh_per_km=round(drive_net / km, 3) if km > 0 else None,
            kwh_per_km=round(net / km, 3) if km > 0 else None,
            driving_min=round(self._driving_min, 1), on_site_min=round(self._on_site_min, 1),
            charging_min=round(self._charging_min, 1), legs=self._legs, visits=self._visits,
            unplanned_stops=0, stops_served=len(self._outcomes), stops_shortened=0,
            stops_skipped=0, stops=self._outcomes, charging_sessions=1,
            min_soc=round(d.soc_min, 2), lift_cycles=d.lift_cycles,
            clients_served=d.lift_cycles + self._noise.randrange(5, 40), alerts=self._alerts,
            energy_gap_min=0.0, open_records=0)

    # --- signals --------------------------------------------------------------------------

    def _values(self, now: float) -> dict[str, Value]:
        r, ph = self._noise, self.phase
        moving = ph.kind == "drive"
        charging = ph.kind == "charge"
        power = (self.speed * 0.3 + 4.0 if moving else 5.5) + r.uniform(-0.5, 0.5)
        if charging:
            power = -CHARGER_KW * (1.0 if self.soc < 90 else 0.3)
        voltage = 330 + self.soc * 0.6 - power * 0.4 + r.uniform(-0.3, 0.3)
        lifting = ph.kind == "visit" and now < self._lift_until
        jitter = 0.0 if moving else 0.00002  # parked GPS wanders a couple of metres
        return {
            sig.BATTERY_SOC: self.soc,
            sig.BATTERY_VOLTAGE: voltage,
            sig.BATTERY_CURRENT: power * 1000 / voltage,
            sig.BATTERY_TEMP_MIN: 8.0 + r.uniform(-0.2, 0.2),
            sig.BATTERY_TEMP_MAX: 11.0 + r.uniform(-0.2, 0.2),
            sig.BATTERY_CELL_V_MIN: voltage / 96 - 0.01,
            sig.BATTERY_CELL_V_MAX: voltage / 96 + 0.01,
            sig.BATTERY_SOH: 96.5,
            sig.BATTERY_FAULT: 0,
            sig.CHARGER_PLUGGED: charging,
            sig.CHARGER_STATE: "charging" if charging else "idle",
            sig.CHARGER_POWER: -power if charging else 0.0,
            sig.VEHICLE_SPEED: self.speed,
            sig.VEHICLE_ODOMETER: self.odo,
            sig.VEHICLE_READY: moving or ph.kind == "visit",
            sig.VEHICLE_PARKING_BRAKE: not moving,
            sig.VEHICLE_DOOR_OPEN: ph.kind == "visit" and r.random() < 0.3,
            sig.VEHICLE_OUTSIDE_TEMP: self._cfg.outside_temp_c + r.uniform(-0.4, 0.4),
            sig.VEHICLE_HVAC_POWER: 4.0 + r.uniform(-0.6, 0.6),
            sig.VEHICLE_AUX_VOLTAGE: 13.8 + r.uniform(-0.1, 0.1),
            sig.GPS_FIX: "3d",
            sig.GPS_LAT: self.lat + r.uniform(-jitter, jitter),
            sig.GPS_LON: self.lon + r.uniform(-jitter, jitter),
            sig.GPS_SPEED: self.speed,
            sig.GPS_HEADING: self.heading,
            sig.GPS_TIME: float(int(now)),
            sig.GPS_HDOP: 0.9 + r.uniform(0, 0.4),
            sig.GPS_SATELLITES: r.randrange(7, 12),
            sig.LIFT_STATE: "deployed" if lifting else "stowed",
            sig.LIFT_INTERLOCK: lifting,
            sig.LIFT_DOOR_OPEN: lifting,
            sig.LIFT_CYCLES: self.lift_counter,
        }
