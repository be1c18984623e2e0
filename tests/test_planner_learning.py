"""The tracker's completed legs and visits teach the planner's energy model."""

from __future__ import annotations

import json

from busd.planner.learning import LearningEmitter
from tests.monitoring_helpers import CaptureSink
from tests.test_planner_component import make


def leg(km: float, out: float, temp: float, **extra) -> dict:
    return {"id": "leg-1", "status": "closed", "km": km, "out_kwh": out, "regen_kwh": 0.0,
            "temp_c": temp, "gap_s": 0.0, **extra}


async def test_a_hungrier_leg_raises_the_driving_estimate_and_is_saved(tmp_path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    downstream = CaptureSink()
    emitter = LearningEmitter(planner=planner, downstream=downstream)
    before = planner.energy_model.drive_kwh_per_km(-12.0)
    emitter.emit("leg_completed", leg(20.0, 20.0 * before * 1.4, -12.0))
    after = planner.energy_model.drive_kwh_per_km(-12.0)
    assert after > before
    assert downstream.kinds() == ["leg_completed"]  # forwarded unchanged
    saved = json.loads((tmp_path / "planner" / "energy.json").read_text())
    assert saved == planner.energy_model.to_dict()


async def test_visits_teach_on_site_power_and_gaps_teach_nothing(tmp_path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    emitter = LearningEmitter(planner=planner, downstream=CaptureSink())
    site_before = planner.energy_model.site_kw(-12.0)
    drive_before = planner.energy_model.drive_kwh_per_km(-12.0)
    emitter.emit("leg_completed", leg(20.0, 40.0, -12.0, gap_s=30.0))  # data gap: ignored
    emitter.emit("visit_ended", {"status": "closed", "place_kind": "depot",
                                 "duration_min": 60, "out_kwh": 20, "temp_c": -12.0})
    assert emitter.learned == 0
    assert planner.energy_model.drive_kwh_per_km(-12.0) == drive_before
    emitter.emit("visit_ended", {"status": "closed", "place_kind": "stop", "duration_min": 90,
                                 "out_kwh": 1.5 * site_before * 1.5, "regen_kwh": 0.0,
                                 "temp_c": -12.0, "gap_s": 0.0})
    assert emitter.learned == 1
    assert planner.energy_model.site_kw(-12.0) > site_before
