"""The planner component with capture sinks, the energy model, and ``busd plan``."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from busd import signals as sig
from busd.clock import ManualClock
from busd.config import BusdConfig, PlannerConfig
from busd.errors import ConfigError
from busd.event_catalog import DailyReport, Event, PlanDocument
from busd.plan import Plan, load_plan
from busd.planner.cli import add_plan_parser, cmd_plan_ack, cmd_plan_show
from busd.planner.component import FilePlanSource, Planner
from busd.planner.energy import EnergyModel
from busd.state import VehicleState
from busd.storage import Report
from busd.supervisor import ComponentContext, ComponentHealth
from tests.conftest import REPO
from tests.progress_helpers import ended, started
from tests.support.wait import wait_until

PLAN_FILE = REPO / "config" / "plans" / "livani-winter.toml"


class Capture:
    """Implements PlanPublisher and EventEmitter, keeping what was published."""

    def __init__(self) -> None:
        self.plans: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def publish_plan(self, document: PlanDocument) -> None:
        self.plans.append(json.loads(document.model_dump_json()))

    def emit(self, event: Event) -> None:
        self.events.append((event.kind, json.loads(event.model_dump_json(by_alias=True))))

    def report(self, report: DailyReport) -> None:
        raise AssertionError("the planner sends no reports")


def make(
    tmp_path: Path, *, start: time = time(12, 10), on_storage: Report | None = None
) -> tuple[Planner, VehicleState, ManualClock, Capture]:
    plan = load_plan(PLAN_FILE)
    clock = ManualClock(start=plan.at(start))
    state = VehicleState(clock)
    sink = Capture()
    planner = Planner(
        config=PlannerConfig(), bus_id="sim-01", state=state, clock=clock,
        plan_source=FilePlanSource(PLAN_FILE), plan_sink=sink, events=sink, data_dir=tmp_path,
        on_storage=on_storage,
    )
    return planner, state, clock, sink


def feed(state: VehicleState, soc: float, lat: float, lon: float, temp: float = -12) -> None:
    state.update(sig.BATTERY_SOC, soc, source="test")
    state.update(sig.VEHICLE_OUTSIDE_TEMP, temp, source="test")
    state.update(sig.GPS_LAT, lat, source="test")
    state.update(sig.GPS_LON, lon, source="test")
    state.update(sig.VEHICLE_SPEED, 0.0, source="test")


def at_third_stop(planner: Planner, clock: ManualClock) -> None:
    """The tracker's word: Rožupe and Rudzāti served, the bus at Turki since now."""
    now = clock.now()
    for stop in ("rozupe", "rudzati"):
        planner.on_event(started(stop, now - 3600))
        planner.on_event(ended(stop, now - 3600, now - 1800))
    planner.on_event(started("turki", now))


def ctx() -> ComponentContext:
    return ComponentContext(ComponentHealth("planner", False), ManualClock())


def plan_loaded(planner: Planner) -> Callable[[ComponentContext], bool]:
    return lambda _ctx: planner.core.plan is not None


async def run_until(
    planner: Planner, until: Callable[[ComponentContext], bool], *, what: str
) -> None:
    """Run the planner's loop until ``until(its context)`` holds, then stop it."""
    c = ctx()
    task = asyncio.create_task(planner.run(c))
    try:
        await wait_until(lambda: until(c) or task.done(), timeout=5, what=what)
        if task.done():
            task.result()  # the loop ended: fail with its reason
            raise AssertionError(f"the planner's loop ended before {what}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_component_publishes_plan_proposes_and_takes_the_drivers_ack(tmp_path: Path) -> None:
    planner, state, _clock, sink = make(tmp_path)
    plan = load_plan(PLAN_FILE)
    turki = plan.stop("turki")
    # No SOC yet: the loop loads the plan and projects nothing, so the one projection is
    # the tick below (fed before the loop, a projection of its own raced the tick).
    await run_until(planner, lambda _c: bool(sink.events), what="the plan loaded and announced")
    assert sink.events[0][0] == "plan_changed" and sink.events[0][1]["cause"] == "file"
    # The plan itself goes with it: the office's record of the day as planned.
    assert Plan.model_validate(sink.events[0][1]["plan"]) == plan
    at_third_stop(planner, _clock)
    feed(state, 50, turki.lat, turki.lon)
    assert planner.core.progress.at == "turki"
    assert await planner.tick(force=True)
    assert [k for k, _ in sink.events][-1] == "plan_changed"
    pending = sink.plans[-1]["pending"]
    assert pending is not None and pending["kind"] == "charge"
    # One envelope: the uplink adds bus, ts and schema around the document.
    assert not {"bus", "ts", "schema"} & set(sink.plans[-1])
    # the state file the CLI reads
    doc = json.loads((tmp_path / "planner" / "state.json").read_text())
    assert doc["pending"]["id"] == pending["id"]

    wrong = await planner.acknowledge("000000000000")
    assert not wrong.accepted and wrong.status == "unknown"
    result = await planner.acknowledge(pending["id"])
    assert result.accepted
    assert sink.events[-1][0] == "plan_accepted"
    assert sink.plans[-1]["pending"] is None
    assert any(i["kind"] == "charge" for i in sink.plans[-1]["itinerary"])


async def test_rate_limit_and_material_change(tmp_path: Path) -> None:
    planner, state, clock, sink = make(tmp_path, start=time(7, 30))
    plan = load_plan(PLAN_FILE)
    feed(state, 96, plan.depot.lat, plan.depot.lon, temp=8)
    await run_until(planner, lambda c: c.counters.get("projections", 0) >= 1,
                    what="the plan loaded and projected")
    assert sink.plans[-1]["projection"]["safe"]
    published = len(sink.plans)
    feed(state, 95.9, plan.depot.lat + 0.01, plan.depot.lon, temp=8)
    assert not await planner.tick()  # too soon
    await clock.advance(PlannerConfig().max_interval_s)
    assert not await planner.tick()  # SOC went stale: no projection on old numbers
    feed(state, 95.9, plan.depot.lat + 0.01, plan.depot.lon, temp=8)
    assert await planner.tick()
    # a tiny change does not republish the retained plan
    assert len(sink.plans) == published


async def test_no_soc_means_degraded_not_guessing(tmp_path: Path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    await run_until(planner, plan_loaded(planner), what="the plan loaded")
    c = ctx()
    assert not await planner.tick(c)
    assert c._health.reason == "no fresh SOC"


async def test_cli_ack_and_show_through_the_data_dir(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    planner, state, _clock, sink = make(tmp_path)
    plan = load_plan(PLAN_FILE)
    turki = plan.stop("turki")
    await run_until(planner, plan_loaded(planner), what="the plan loaded")  # no SOC: no race
    at_third_stop(planner, _clock)
    feed(state, 50, turki.lat, turki.lon)
    await planner.tick(force=True)
    pid = sink.plans[-1]["pending"]["id"]

    parser = argparse.ArgumentParser()
    add_plan_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plan", "--data-dir", str(tmp_path), "show", "--lang", "en"])
    assert cmd_plan_show(args) == 0
    shown = capsys.readouterr().out
    assert pid in shown and "Charge at Preiļi" in shown
    # the request waits in the inbox until the daemon takes it
    args = parser.parse_args(["plan", "--data-dir", str(tmp_path), "ack", "--wait", "0"])
    assert await asyncio.to_thread(cmd_plan_ack, args) == 1
    assert (tmp_path / "planner" / "ack" / pid).exists()
    await run_until(planner, lambda _c: not (tmp_path / "planner" / "ack" / pid).exists(),
                    what="the ack request taken from the inbox")
    assert sink.events[-1][0] == "plan_accepted"
    result = json.loads((tmp_path / "planner" / "ack" / f"{pid}.result").read_text())
    assert result["accepted"] and not (tmp_path / "planner" / "ack" / pid).exists()


def test_cli_show_without_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_plan_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plan", "--data-dir", str(tmp_path), "show"])
    assert cmd_plan_show(args) == 1


def test_from_config_needs_a_plan(tmp_path: Path) -> None:
    config = BusdConfig(bus_id="sim-01", data_dir=tmp_path)
    clock = ManualClock()
    with pytest.raises(ConfigError):
        Planner.from_config(config, state=VehicleState(clock), clock=clock,
                            plan_sink=Capture(), events=Capture())
    config = BusdConfig(bus_id="sim-01", data_dir=tmp_path, planner={"plan_file": PLAN_FILE})
    planner = Planner.from_config(config, state=VehicleState(clock), clock=clock,
                                  plan_sink=Capture(), events=Capture())
    assert planner.name == "planner" and not planner.critical


def test_planner_config_rejects_unknown_keys_and_contradictions() -> None:
    with pytest.raises(ValueError, match="extra"):
        PlannerConfig.model_validate({"colour": "red"})
    with pytest.raises(ValueError, match="charge_max_pct"):
        PlannerConfig(reserve_pct=50, margin_pct=10, charge_max_pct=55)


# --- energy model -----------------------------------------------------------------------


def test_energy_model_seeds_depend_on_the_cold() -> None:
    model = EnergyModel(PlannerConfig())
    assert model.site_kw(-12) > 4 * model.site_kw(20)
    assert model.drive_kwh_per_km(-12) > model.drive_kwh_per_km(20)


def test_energy_model_learns_from_legs_and_visits_and_gets_surer() -> None:
    cfg = PlannerConfig()
    model = EnergyModel(cfg)
    prior = model.uncertainty()
    seed_site = model.site_kw(-12)
    for _ in range(12):
        assert model.learn_visit(90, seed_site * 1.5 * 1.5, -12)  # 50 % more than seeded
    for _ in range(60):  # the road factor is a long-run mean (a day's detour is luck)
        assert model.learn_leg(20, model.seed_drive_kwh_per_km(-12) * 20, -12,
                               great_circle_km=20 / 1.4)
    assert model.site_kw(-12) == pytest.approx(seed_site * 1.5, rel=0.02)
    assert model.road_factor == pytest.approx(1.4, rel=0.02)
    assert model.uncertainty() < prior
    prior_margin = cfg.margin_pct + cfg.margin_sigmas * prior * 50 / cfg.capacity_kwh * 100
    assert model.margin_pct(50) < prior_margin
    # implausible readings are ignored
    assert not model.learn_visit(90, 500, -12)
    assert not model.learn_leg(0.2, 1, -12)
    again = EnergyModel.from_dict(cfg, json.loads(json.dumps(model.to_dict())))
    assert again.site_kw(-12) == model.site_kw(-12) and again.road_factor == model.road_factor


def test_margin_grows_with_uncertainty() -> None:
    cfg = PlannerConfig()
    model = EnergyModel(cfg)
    assert model.margin_pct(80) > model.margin_pct(20) > cfg.margin_pct
    noisy = EnergyModel(cfg)
    for k in range(10):
        noisy.learn_visit(60, noisy.seed_site_kw(-5) * (0.6 if k % 2 else 1.4), -5)
    steady = EnergyModel(cfg)
    for _ in range(10):
        steady.learn_visit(60, steady.seed_site_kw(-5), -5)
    assert noisy.margin_pct(50) > steady.margin_pct(50)


async def test_a_disk_that_refuses_the_planners_files_is_reported_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full or read-only: the plan is still published and proposals still made; the
    state file and the driver's ack answer wait, and are written when the disk allows."""
    import errno

    from busd.files import write_atomic as real_write
    from busd.planner import component

    full = True

    def write(path: Path, text: str, **kw: Any) -> None:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text, **kw)

    monkeypatch.setattr(component, "write_atomic", write)
    reports: list[str | None] = []
    planner, state, clock, sink = make(tmp_path, on_storage=reports.append)
    turki = load_plan(PLAN_FILE).stop("turki")
    feed(state, 50, turki.lat, turki.lon)
    task = asyncio.create_task(planner.run(ctx()))
    try:
        await wait_until(lambda: bool(reports and sink.plans), timeout=5,
                         what="the refused write reported and the plan published")
        first = reports[0]
        assert first is not None and "state.json" in first and "No space left" in first
        assert sink.events[0][0] == "plan_changed"  # the office hears of the plan anyway
        assert not (tmp_path / "planner" / "state.json").exists()
        at_third_stop(planner, clock)
        assert await planner.tick(force=True)
        pending = sink.plans[-1]["pending"]
        assert pending is not None and not task.done()

        full = False
        await clock.advance(61.0)  # the storage back-off is at most a minute
        # The loop retries every second at most.
        await wait_until(lambda: reports[-1] is None, timeout=5, what="the write succeeding")
        doc = json.loads((tmp_path / "planner" / "state.json").read_text())
        assert doc["pending"]["id"] == pending["id"]  # the latest document, not the first
        assert reports.count(None) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_planners_subscribers_get_each_event_after_the_office_in_order(
    tmp_path: Path,
) -> None:
    """The stop notes follow the planner as the planner follows the tracker: no wrapper
    between the planner and the event forwarder."""
    plan = load_plan(PLAN_FILE)
    clock = ManualClock(start=plan.at(time(12, 10)))
    state = VehicleState(clock)
    office = Capture()
    seen: list[tuple[str, int]] = []

    class Follower:
        def on_event(self, event: Event) -> None:
            seen.append((event.kind, len(office.events)))  # the office's count by then

    planner = Planner(config=PlannerConfig(), bus_id="sim-01", state=state, clock=clock,
                      plan_source=FilePlanSource(PLAN_FILE), plan_sink=office, events=office,
                      subscribers=[Follower()], data_dir=tmp_path)
    feed(state, 50, plan.stop("turki").lat, plan.stop("turki").lon)
    await run_until(planner, plan_loaded(planner), what="the plan loaded")
    at_third_stop(planner, clock)
    assert await planner.tick(force=True)
    pending = office.plans[-1]["pending"]
    assert pending is not None
    assert (await planner.acknowledge(pending["id"])).accepted
    assert [kind for kind, _ in seen] == [kind for kind, _ in office.events]
    assert seen[-1] == ("plan_accepted", len(office.events))  # after the office's copy


async def test_the_ack_inbox_is_read_once_a_second_not_on_every_change(tmp_path: Path) -> None:
    # Every SOC or position change turns the planner's loop (several a second
    # on CAN); reading the inbox each time cost a thread hop per turn.
    planner, state, clock, _sink = make(tmp_path)
    plan = load_plan(PLAN_FILE)
    turki = plan.stop("turki")
    feed(state, 50, turki.lat, turki.lon)
    looks = turns = 0
    take_acks, tick = planner._take_acks, planner.tick

    async def counted_look() -> None:
        nonlocal looks
        looks += 1
        await take_acks()

    async def counted_turn(*args: Any, **kwargs: Any) -> bool:
        nonlocal turns
        turns += 1
        return await tick(*args, **kwargs)

    planner._take_acks = counted_look  # type: ignore[method-assign]
    planner.tick = counted_turn  # type: ignore[method-assign]
    task = asyncio.create_task(planner.run(ctx()))
    try:
        await wait_until(lambda: turns == 1, timeout=5)
        for i in range(1, 11):  # ten changes, no time passes: ten turns of the loop
            feed(state, 50 - i * 0.01, turki.lat, turki.lon)

            def turned(i: int = i) -> bool:
                return turns == i + 1

            await wait_until(turned, timeout=5)
        assert looks == 1
        await clock.advance(1.0)
        feed(state, 49, turki.lat, turki.lon)
        await wait_until(lambda: looks == 2, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_plan_kept_for_tomorrow_is_followed_when_the_day_turns_and_after_a_restart(
    tmp_path: Path,
) -> None:
    planner, state, clock, sink = make(tmp_path, start=time(23, 59))
    plan = load_plan(PLAN_FILE)
    depot = plan.depot
    feed(state, 80, depot.lat, depot.lon)
    tomorrow = json.loads(plan.model_dump_json()) | {
        "date": "2026-12-15", "version": 7}
    c = ctx()
    task = asyncio.create_task(planner.run(c))
    try:
        await wait_until(lambda: planner.core.plan is not None, timeout=5, what="today's plan")
        result = await planner.replace_plan(tomorrow)
        assert result.accepted and str(result.scheduled) == "2026-12-15"
        assert planner.core.plan is not None and planner.core.plan.version == plan.version
        assert (tmp_path / "planner" / "plans" / "2026-12-15.json").exists()

        await clock.advance(120)  # past midnight in Riga
        feed(state, 79, depot.lat, depot.lon)  # wakes the loop
        # Announced once the planner follows it (the core holds it a moment before).
        await wait_until(lambda: ("plan_changed", "office", 7) in [
            (kind, e.get("cause"), e.get("version")) for kind, e in sink.events],
            timeout=5, what="tomorrow's plan followed")
        assert planner.core.plan is not None and planner.core.plan.version == 7
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # A restart on that day follows the kept office plan, not the plan file.
    restarted = Planner(config=PlannerConfig(), bus_id="sim-01", state=state, clock=clock,
                        plan_source=FilePlanSource(PLAN_FILE), plan_sink=sink, events=sink,
                        data_dir=tmp_path)
    await run_until(restarted, plan_loaded(restarted), what="the kept plan")
    assert restarted.core.plan is not None and restarted.core.plan.version == 7
