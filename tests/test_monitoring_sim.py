"""A simulated service day: CAN simulator → virtual CAN → CanReader → state → Tracker → store.

The vehicle model drives a scripted day (depot, a traffic stop, stop A with the
lift, a 150 s halt at road works, stop B with 10 minutes of charging, back to
the depot). Its ground truth (:class:`Truth`) is the reference: distance within
1 %, energy within 2 %, minutes on site within 1 minute, lift cycles exact, and
no visit at halts shorter than the configured minimum. Runs in lock-step with
a ManualClock (0.2 s steps while moving, 1 s standing), about 70 minutes of
bus time in a few seconds.

GPS positions come from :class:`RouteGps` (the model's odometer along the
route) until the GPS simulator and driver exist.
"""

from __future__ import annotations

import asyncio
import functools
import math
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from busd.clock import ManualClock
from busd.config import CanSimulatorConfig, MonitoringConfig
from busd.monitoring.daily import DailySummaryJob
from busd.monitoring.tracker import Tracker
from busd.plan import parse_plan
from busd.state import VehicleState
from busd.supervisor import Phase, Supervisor
from simulators.can import simulator as sim_module
from simulators.can.frames import FrameScheduler
from simulators.can.model import Inputs, VehicleModel, VehicleParams
from simulators.can.simulator import CanSimulator
from telemetry.monitoring_store import MonitoringStore
from tests.can_helpers import OWN_DBC
from tests.lockstep import Lockstep
from tests.monitoring_helpers import CaptureSink, Route, RouteGps
from tests.support.wait import wait_until

T0 = 1_765_692_000.0  # 2025-12-14 08:00 Riga
DEPOT = (56.3543, 26.1758)


def offset(origin: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    lat = origin[0] + north_m / 111_320.0
    lon = origin[1] + east_m / (111_320.0 * math.cos(math.radians(origin[0])))
    return lat, lon


TEST_RATES_HZ = {"BMS_Pack": 5.0, "CCVS1": 5.0, "VDHR": 5.0, "BMS_Status": 1.0,
                 "BMS_Cells": 1.0, "OBC_Status": 1.0, "VCU_Status": 1.0, "DC1": 1.0, "AMB": 1.0}
STOP_A = offset(DEPOT, 5000, 0)
STOP_B = offset(STOP_A, 0, 4000)
ROUTE = Route((DEPOT, STOP_A, STOP_B, DEPOT))


@dataclass
class ScriptedDay:
    """An input source driven by the model's own odometer: drive to a distance, stand, …"""

    model: VehicleModel
    segments: list[tuple[Any, ...]]  # ("drive", km) or ("stand", s, what, lifts, charge_kw)
    temp_c: float = -8.0
    cruise_kmh: float = 50.0
    index: int = 0
    started: float | None = None
    log: list[tuple[str, float, float]] = field(default_factory=list)  # (what, start, end)

    def _braking_m(self) -> float:
        v = self.cruise_kmh / 3.6
        return v * v / (2 * VehicleParams().decel_mps2) + 5.0

    def __call__(self, elapsed: float) -> Inputs:
        base: dict[str, Any] = dict(outside_temp_c=self.temp_c, hvac_on=True)
        while self.index < len(self.segments):
            seg = self.segments[self.index]
            if self.started is None:
                self.started = elapsed
            kind = seg[0]
            if kind == "drive":
                target_km = seg[1]
                if self.model.state.odometer_km * 1000 < target_km * 1000 - self._braking_m():
                    return Inputs(target_speed_kmh=self.cruise_kmh, **base)
                if self.model.state.speed_kmh > 0:
                    return Inputs(target_speed_kmh=0.0, **base)
            else:  # ("stand", seconds, what, lifts, charge_kw)
                _, seconds, what, lifts, charge_kw = seg
                s = elapsed - self.started
                if s < seconds:
                    lift = any(lo <= s < lo + 90 for lo in
                               [seconds * (k + 1) / (lifts + 1) for k in range(lifts)])
                    plugged = bool(charge_kw) and 60 <= s < seconds - 60
                    return Inputs(target_speed_kmh=0.0, doors_open=5 < s < seconds - 5,
                                  lift_out=lift, plugged=plugged,
                                  charger_power_kw=charge_kw, **base)
                self.log.append((what, self.started, elapsed))
            self.index += 1
            self.started = None
        return Inputs(target_speed_kmh=0.0, **base)


def km_at(i: int) -> float:
    return sum(ROUTE.lengths[:i]) / 1000.0


async def test_simulated_day_matches_the_models_ground_truth(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    plan = parse_plan({
        "date": date(2025, 12, 14).isoformat(), "version": 1,
        "depot": {"id": "depot", "name": "Līvāni depot", "lat": DEPOT[0], "lon": DEPOT[1]},
        "stops": [
            {"id": "a", "name": "Stop A", "lat": STOP_A[0], "lon": STOP_A[1], "planned_min": 20,
             "min_min": 10, "cycle": "weekly"},
            {"id": "b", "name": "Stop B", "lat": STOP_B[0], "lon": STOP_B[1], "planned_min": 20,
             "min_min": 10, "cycle": "fortnightly"},
            {"id": "c", "name": "Stop C", "lat": 56.2465, "lon": 26.2415, "planned_min": 60,
             "min_min": 30, "cycle": "monthly"},
        ],
    })
    clock = ManualClock(start=T0)
    state = VehicleState(clock)
    # Fewer frames than a real bus sends (to keep the test fast), but the battery
    # and speed at 5 Hz: regeneration while braking lasts only seconds.
    monkeypatch.setattr(sim_module, "FrameScheduler",
                        functools.partial(FrameScheduler, rates_hz=TEST_RATES_HZ))
    ls = Lockstep(monkeypatch, clock=clock, state=state)
    sim = CanSimulator(
        CanSimulatorConfig(interface="virtual", channel=ls.channel, dbc=OWN_DBC, initial_soc=80.0,
                           outside_temp_c=-8.0),
        clock, time_scale=1.0, tick_s=0.2,
    )
    day = ScriptedDay(sim.model, [
        ("stand", 300, "depot", 0, 0.0),
        ("drive", km_at(1) / 2), ("stand", 60, "traffic", 0, 0.0),
        ("drive", km_at(1)), ("stand", 1200, "A", 2, 0.0),
        ("drive", (km_at(1) + km_at(2)) / 2), ("stand", 150, "roadworks", 0, 0.0),
        ("drive", km_at(2)), ("stand", 900, "B", 1, 40.0),
        ("drive", km_at(3)), ("stand", 400, "depot-end", 0, 0.0),
    ])
    sim.inputs = day
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    sink = CaptureSink()
    tracker = Tracker(state=state, clock=clock, plan=plan, store=store, sink=sink,
                      config=MonitoringConfig(min_visit_min=3.0))
    gps = RouteGps(state=state, clock=clock, route=ROUTE,
                   odometer_km=lambda: sim.model.state.odometer_km)
    ls.supervisor.add(gps)
    daily = DailySummaryJob(clock=clock, store=store, sink=sink,
                            at=time(21, 0), timezone="Europe/Riga",
                            alert_count=lambda _d: 2)
    for component in (daily, tracker):
        ls.supervisor.add(component)
    await store.save_plan(plan)
    async with ls:
        # The simulator starts only once the reader's bus is open (a frame sent
        # before that is never received, and lock-step would wait for it), and
        # stops first.
        sim_supervisor = Supervisor([sim], clock=clock)
        sim_task = asyncio.create_task(sim_supervisor.run())
        await wait_until(lambda: sim_supervisor.health[sim.name].phase is Phase.RUNNING,
                         timeout=10, what="the simulator running", interval=0.001)
        t = 0.0
        while day.index < len(day.segments) and t < 3 * 3600:
            # Fine steps while the bus moves, coarse ones while it stands.
            moving = sim.model.state.speed_kmh > 0 or day.segments[day.index][0] == "drive"
            t += 0.2 if moving else 1.0
            await ls.advance_to(t)
            await ls.settle(sent=sim.output.counters["frames_sent"] if sim.output else 0)
        truth = sim.truth
        sim_supervisor.request_stop()
        await asyncio.wait_for(sim_task, 10)
    store_rows = store.day_records_sync("2025-12-14")
    summary = store.summary("2025-12-14")
    store.close()

    visits = [v for v in store_rows["visit"]]
    assert [v["place_id"] for v in visits] == ["depot", "a", "b", "depot"], sink.kinds()
    by_place = {v["place_id"]: v for v in visits}
    stands = {what: (end - start) / 60 for what, start, end in day.log}
    assert by_place["a"]["duration_min"] == pytest.approx(stands["A"], abs=1.0)
    assert by_place["b"]["duration_min"] == pytest.approx(stands["B"], abs=1.0)
    legs = store_rows["leg"]
    assert [(leg["from_place"], leg["to_place"]) for leg in legs] == [
        ("depot", "a"), ("a", "b"), ("b", "depot")]
    assert sum(leg["km"] for leg in legs) == pytest.approx(truth.odometer_km, rel=0.01)
    assert sum(leg["gps_km"] for leg in legs) == pytest.approx(truth.odometer_km, rel=0.02)
    records = [*legs, *visits]
    out = sum(r["out_kwh"] for r in records)
    regen = sum(r["regen_kwh"] for r in records)
    charged = sum(r["charged_kwh"] for r in records)
    assert out == pytest.approx(truth.energy_out_kwh, rel=0.02)
    assert regen == pytest.approx(truth.energy_regen_kwh, rel=0.02)
    assert charged == pytest.approx(truth.energy_charged_kwh, rel=0.02)
    (session,) = store_rows["charge"]
    assert session["place_id"] == "b" and session["status"] == "closed"
    assert session["energy_added_kwh"] == pytest.approx(truth.energy_charged_kwh, rel=0.02)
    assert session["soc_end"] > session["soc_start"]
    assert sum(v["lift_cycles"] for v in visits) == truth.lift_cycles == 3
    assert by_place["a"]["lift_cycles"] == 2
    assert all(r["gap_s"] == 0 for r in records)
    # The store keeps one SOC sample a minute.
    assert len(store_rows["samples"]) == pytest.approx(t / 60, abs=2)
    # The shutdown summary of the open day.
    assert summary is not None and summary["alerts"] == 2
    assert summary["km"] == pytest.approx(truth.odometer_km, rel=0.01)
    assert (summary["stops_served"], summary["stops_skipped"]) == (1, 1)
    assert summary["stops_shortened"] == 1  # B: 20 planned, about 15 on site
    assert sink.of("report.daily")
