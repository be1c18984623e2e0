"""The tracker's word on the day's progress, for planner and display tests.

The tracker (busd.monitoring.tracker) is the one owner of arrival, departure and
"served"; its subscribers learn them from ``visit_started``/``visit_ended``. These
build such events with zero figures, for tests that start mid-day.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from busd.clock import utc_iso
from busd.event_catalog import VisitEnded, VisitStarted
from busd.planner.core import PlannerCore

_ZONE = ZoneInfo("Europe/Riga")


def _fields(place_id: str, kind: str, start: float, end: float | None) -> dict[str, object]:
    return {
        "id": f"visit-{round(start * 1000)}",
        "day": datetime.fromtimestamp(start, _ZONE).date(), "status": "open" if end is None
        else "closed", "start": utc_iso(start), "end": None if end is None else utc_iso(end),
        "duration_min": 0.0 if end is None else (end - start) / 60, "out_kwh": 0.0,
        "regen_kwh": 0.0, "charged_kwh": 0.0, "net_kwh": 0.0, "gap_s": 0.0, "gaps": 0,
        "gps_km": 0.0, "lift_cycles": 0, "lift_counter": None, "temp_c": None,
        "odo_start": None, "odo_end": None, "soc_start": None, "soc_end": None,
        "place_id": place_id, "place_name": place_id, "place_kind": kind, "lat": None,
        "lon": None, "radius_m": None, "soc_min": None,
    }


def started(place_id: str, start: float, kind: str = "stop") -> VisitStarted:
    return VisitStarted.model_validate(_fields(place_id, kind, start, None))


def ended(place_id: str, start: float, end: float, kind: str = "stop") -> VisitEnded:
    return VisitEnded.model_validate(_fields(place_id, kind, start, end))


def serve(core: PlannerCore, *stops: str, ts: float = 0.0) -> None:
    """Tell the planner's core the tracker's word: each of ``stops`` visited and left."""
    for stop in stops:
        core.visit_started(stop, "stop", ts)
        core.visit_ended(stop)
