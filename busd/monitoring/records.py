"""What the day's segmentation works on and produces: settings, places, samples, changes.

Plain frozen data, shared by :mod:`busd.monitoring.segment` (the rules) and
:mod:`busd.monitoring.tracker` (the component that feeds them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from busd.config import MotionConfig
from busd.monitoring.figures import Counters
from busd.motion import DEFAULT_MOTION
from busd.plan import Plan

Row = dict[str, Any]

LEG, VISIT, CHARGE = "leg", "visit", "charge"
OPEN, CLOSED, INTERRUPTED = "open", "closed", "interrupted"


@dataclass(frozen=True, slots=True)
class Settings:
    min_visit_s: float = 180.0
    motion: MotionConfig = DEFAULT_MOTION  # what counts as stopped (busd/motion.py)
    exit_margin_m: float = 30.0
    unplanned_radius_m: float = 100.0
    gps_min_step_m: float = 15.0
    energy_gap_s: float = 5.0
    locate_wait_s: float = 600.0


@dataclass(frozen=True, slots=True)
class PlaceRef:
    id: str
    name: str
    kind: str  # depot | stop | charger | unplanned
    lat: float | None
    lon: float | None
    radius_m: float


def places_of(plan: Plan) -> list[PlaceRef]:
    refs = [PlaceRef(plan.depot.id, plan.depot.name, "depot", plan.depot.lat, plan.depot.lon,
                     plan.depot.geofence_m)]
    refs += [PlaceRef(s.id, s.name, "stop", s.lat, s.lon, s.geofence_m) for s in plan.stops]
    refs += [PlaceRef(c.id, c.name, "charger", c.lat, c.lon, c.geofence_m) for c in plan.chargers]
    return refs


@dataclass(frozen=True, slots=True)
class Sample:
    """The vehicle state at one moment; None = unknown or stale."""

    mono: float
    ts: float
    speed_kmh: float | None = None
    gps_speed_kmh: float | None = None
    odometer_km: float | None = None
    lat: float | None = None
    lon: float | None = None
    # When lat/lon were measured (the fix's own time); None: at ``ts``.
    pos_ts: float | None = None
    power_kw: float | None = None
    power_age_s: float = 0.0
    soc: float | None = None
    outside_temp_c: float | None = None
    plugged: bool | None = None
    charger_state: str | None = None
    charger_power_kw: float | None = None
    charger_session_kwh: float | None = None
    lift_counter: int | None = None
    lift_state: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # leg | visit | charge
    row: Row
    event: str | None  # the event to publish, None for a store-only update


@dataclass(frozen=True, slots=True)
class Snap:
    mono: float
    ts: float
    odo: float | None
    soc: float | None
    counters: Counters
    lift_counter: int | None = None  # the lift unit's own counter then (survives a restart)
