"""Runs a scenario: the whole system on one accelerated clock, ground truth beside it.

:class:`ScenarioRunner` starts, in a fresh work directory: a private
mosquitto, the office (:class:`office.live.Office`, archiving every
record into ``office.sqlite``), the CAN simulator as an slcan adapter on a
pty, the GPS simulator on a pty read by a real gpsd, the lift's Modbus unit
on a pty, and the daemon as a subprocess (``python -m busd.cli run``) on a
generated config. All share one simulated clock: an anchored
:class:`~busd.clock.ScaledClock` whose anchor and speed are in that config.

The simulated bus (:class:`~simulators.scenario.driver.DayDriver`) switches
its ignition on once the office sees the daemon's live state, drives the day
and parks; faults are applied at their local times. The run ends when the
office has the day's report (or at the scenario's end), and returns a
:class:`DayResult`: the model's ground truth next to what the office got.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from busd.clock import ScaledClock
from busd.config import CanSimulatorConfig
from busd.supervisor import ComponentContext, ComponentHealth
from office.archive import open_archive
from office.live import Office
from simulators.can.model import Truth
from simulators.can.outputs import FrameOutput
from simulators.can.simulator import CanSimulator
from simulators.gps import GpsSimulator
from simulators.gps.route import CallbackPosition
from simulators.lift import LiftSimulator
from simulators.lift.model import LiftModel
from simulators.scenario.daemon_config import (
    DBC,
    daemon_config,
    gps_epoch_s,
    lift_poll_s,
    plan_file,
    to_toml,
)
from simulators.scenario.driver import DayDriver, DayTruth, Itinerary
from simulators.scenario.follow import PlanFollower
from simulators.scenario.model import Fault, LoadedScenario
from simulators.scenario.processes import Broker, DaemonProcess, Gpsd, free_port
from simulators.scenario.progress import Progress, plan_version
from simulators.scenario.stores import count_rows, delivered_seqs
from telemetry import mqtt

log = structlog.get_logger("simulators.scenario")


# Frames per *simulated* second: the battery and the wheels often enough to
# integrate energy and distance well, everything slower sparsely.
SIM_RATES_HZ = {
    "BMS_Pack": 0.5, "CCVS1": 0.5, "VDHR": 0.25, "BMS_Status": 0.2, "BMS_Cells": 0.05,
    "OBC_Status": 0.1, "VCU_Status": 0.1, "AMB": 0.05, "DC1": 0.1, "VEP4": 0.02,
}
LIFT_DWELL_S = 120.0


# A charger fault that waited for the plug starts this long into the charge.
CHARGE_UNDER_WAY_S = 300.0


@dataclass(frozen=True)
class FaultWindow:
    """A fault as it was applied: from ``start`` to ``end`` (simulated seconds)."""

    kind: str
    start: float
    end: float


@dataclass
class DayResult:
    scenario: str
    workdir: Path
    truth: DayTruth
    archive: Path
    monitoring_db: Path
    plan_path: Path
    report: dict[str, Any] | None
    records: list[dict[str, Any]]
    duplicates: int
    gaps: list[tuple[int, int]]
    daemon_starts: int
    display_url: str | None
    blind: list[tuple[float, float]] = field(default_factory=list)
    finished: bool = False
    faults: list[FaultWindow] = field(default_factory=list)  # as applied, in order of end

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if r["schema"].startswith("busd.event")
                and (kind is None or r["kind"] == kind)]


class _Switchable(FrameOutput):
    """A frame output that a CAN-silence fault can mute."""

    def __init__(self, inner: FrameOutput) -> None:
        self.inner = inner
        self.silent = False
        self.counters = getattr(inner, "counters", {})

    def open(self) -> None:
        self.inner.open()

    def send(self, frame: Any) -> bool:
        return False if self.silent else self.inner.send(frame)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class ScenarioCan(CanSimulator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.switch: _Switchable | None = None

    def counters(self) -> dict[str, int]:
        out = self.output
        return dict(getattr(out, "counters", {})) if out is not None else {}

    def _make_output(self) -> FrameOutput:
        self.switch = _Switchable(super()._make_output())
        # Silent until the runner lets it talk: the daemon's tracker should first
        # hear of the bus when GPS is up too (see ScenarioRunner._day).
        self.switch.silent = True
        return self.switch


class ScenarioRunner:
    """One simulated day. ``async with``-free: :meth:`run` starts and stops everything.

    ``speed`` overrides the scenario's; ``display`` serves the driver's page
    (on a free port unless ``display_port``); ``progress`` is called about twice a
    second of real time; ``itinerary`` replaces the static plan (the planner's).
    """

    def __init__(
        self,
        loaded: LoadedScenario,
        *,
        workdir: Path,
        speed: float | None = None,
        display: bool = False,
        display_port: int | None = None,
        progress: Callable[[Progress], None] | None = None,
        itinerary: Itinerary | None = None,
        web_port: int | None = None,
        web_password: str | None = None,
    ) -> None:
        self.loaded = loaded
        # The office web over the day's archive and broker (busd demo), with the demo login.
        self.web_port = web_port
        self.web_password = web_password
        self.scenario = loaded.scenario
        self.workdir = workdir
        self.speed = speed or self.scenario.speed
        self.display = display
        self.display_port = display_port
        self.progress = progress
        self._itinerary = itinerary
        self.bus_id = loaded.plan.bus or self.scenario.bus_id
        self.display_url: str | None = None
        self.faults_active: list[str] = []
        self.fault_windows: list[FaultWindow] = []  # when each fault really was on
        self.blind: list[tuple[float, float]] = []
        self._blind_since: dict[str, float] = {}
        self._backlog: int | None = None

    # --- configuration -----------------------------------------------------------------

    @property
    def gps_epoch_s(self) -> float:
        return gps_epoch_s(self.speed)

    @property
    def lift_poll_s(self) -> float:
        return lift_poll_s(self.speed)

    # --- the day ----------------------------------------------------------------------

    async def run(self, *, timeout_s: float | None = None) -> DayResult:
        wd = self.workdir
        wd.mkdir(parents=True, exist_ok=True)
        (wd / "bus").mkdir(exist_ok=True)
        config_path = wd / "busd.toml"
        daemon = DaemonProcess(config_path, wd)
        self.daemon = daemon
        # Its imports run while everything else is set up (it reads the config only once
        # started), so the day's first start takes a moment, not simulated minutes.
        await daemon.prepare()
        broker = Broker(wd / "broker")
        await broker.start()
        self.broker = broker
        archive = await open_archive(f"sqlite:///{wd / 'office.sqlite'}").open()
        office = Office(settings=mqtt.BrokerSettings(host="127.0.0.1", port=broker.port),
                        archive=archive, client_id=f"office-{self.scenario.name}")
        self.office = office
        can_link, gps_link, lift_link = wd / "can.pty", wd / "gps.pty", wd / "lift.pty"
        # The clock starts a moment from now, so everything is set up at the day's start.
        anchor_real = time.time() + 0.5
        clock = ScaledClock(speed=self.speed, start=self.loaded.start_ts, anchor_real=anchor_real)
        self.clock = clock
        lift = LiftSimulator(clock=clock, link=lift_link,
                             model=LiftModel(deploy_s=8.0, stow_s=8.0), dwell_s=LIFT_DWELL_S)
        self.lift = lift
        can_config = CanSimulatorConfig(slcan_link=can_link, dbc=DBC,
                                        initial_soc=self.scenario.initial_soc,
                                        capacity_kwh=self.scenario.capacity_kwh,
                                        outside_temp_c=self.loaded.temp_at(self.loaded.start_ts))
        # One model step per ~2 simulated seconds; frames at SIM_RATES_HZ simulated.
        can = ScenarioCan(can_config, clock, time_scale=1.0, tick_s=2.0,
                          rates_hz=SIM_RATES_HZ, seed=self.scenario.seed)
        self.can = can
        self._charger_fault = 0
        # Without an itinerary of the caller's, the bus follows the daemon's planner.
        follower = (PlanFollower(self.loaded, clock, wd / "bus" / "planner")
                    if self._itinerary is None else None)
        self.follower = follower
        driver = DayDriver(
            self.loaded, clock, can.model, itinerary=self._itinerary or follower,
            lift_cycle=lift.cycle,
            lift_stowed=lambda: lift.model.inputs()["stowed"],
            charger_fault=lambda: self._charger_fault)
        can.inputs = driver
        self.driver = driver
        if follower is not None:
            follower.served = lambda: [v.place_id for v in driver.truth.visits
                                       if v.kind != "depot" and v.departed_ts is not None]
        gps = GpsSimulator(clock=clock, link=gps_link, positions=CallbackPosition(driver.position),
                           noise_m=2.0, rng=__import__("random").Random(self.scenario.seed),
                           epoch_s=self.gps_epoch_s)
        self.gps = gps
        plan_path = plan_file(self.loaded, wd)
        gpsd = Gpsd(gps_link, wd)
        if self.display:
            self.display_port = self.display_port or free_port()
        config = daemon_config(self.loaded, speed=self.speed, workdir=wd, bus_id=self.bus_id,
                               display=self.display, display_port=self.display_port,
                               mqtt_port=broker.port, gpsd_port=gpsd.port,
                                    can_link=can_link, lift_link=lift_link, plan=plan_path,
                                    anchor_real=anchor_real)
        config_path.write_text(to_toml(config), encoding="utf-8")
        if self.display:
            self.display_url = f"http://127.0.0.1:{self.display_port}/"
        report: dict[str, Any] | None = None
        finished = False
        web = contextlib.AsyncExitStack()
        try:
            if self.web_port is not None:
                from office.web.demo import demo_password, demo_web

                await web.enter_async_context(demo_web(
                    archive, broker_port=broker.port, port=self.web_port, clock=clock,
                    password=self.web_password or demo_password()))
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(office.run(), name="office")]
                for name, comp in (("sim.can", can), ("sim.gps", gps), ("sim.lift", lift)):
                    ctx = ComponentContext(ComponentHealth(name, False), clock)
                    tasks.append(tg.create_task(comp.run(ctx), name=name))
                await asyncio.wait_for(gps.started.wait(), 10)
                await asyncio.wait_for(lift.started.wait(), 10)
                await gpsd.start()
                await daemon.start()
                await self._spare_for_restart()
                tasks.append(tg.create_task(self._faults(), name="faults"))
                tasks.append(tg.create_task(self._progress_loop(), name="progress"))
                if follower is not None:
                    tasks.append(tg.create_task(follower.run(), name="follow-plan"))
                try:
                    report, finished = await self._day(timeout_s)
                    # The daemon goes on numbering records (samples, the planner) after the
                    # report: stop it while the office still listens, and let everything
                    # the broker took reach the office, before the office stops.
                    await daemon.stop()
                    await self._drain()
                finally:
                    for task in tasks:
                        task.cancel()
        finally:
            driver.record_totals()
            await web.aclose()
            await daemon.stop()
            await gpsd.stop()
            await broker.stop()
            gaps = [(g.first, g.last) for g in await archive.gaps(self.bus_id)]
            records = [r.model_dump(mode="json", by_alias=True)
                       for r in await archive.records(self.bus_id)]
            duplicates = sum(v.duplicates for v in office.fleet.values())
            await archive.close()
        return DayResult(
            scenario=self.scenario.name, workdir=wd, truth=driver.truth,
            archive=wd / "office.sqlite", monitoring_db=wd / "bus" / "monitoring.sqlite",
            plan_path=plan_path, report=report, records=records, duplicates=duplicates,
            gaps=gaps, daemon_starts=daemon.starts, display_url=self.display_url,
            blind=list(self.blind), finished=finished, faults=list(self.fault_windows))

    def _live(self, *signals: str) -> bool:
        view = self.office.fleet.get(self.bus_id)
        return (view is not None and bool(view.online)
                and all(s in view.state.get("values", {}) for s in signals))

    async def _day(self, timeout_s: float | None) -> tuple[dict[str, Any] | None, bool]:
        """Ignition on once the office sees live data; the day; until the report arrives."""
        limit = timeout_s or (self.loaded.end_ts - self.loaded.start_ts) / self.speed + 60.0
        async with asyncio.timeout(limit):
            # The daemon is up and has a GPS position: now the CAN bus may talk.
            await self.office.wait_until(lambda: self._live("gps.lat"), timeout=limit)
            assert self.can.switch is not None
            self.can.switch.silent = False
            await self.office.wait_until(lambda: self._live("battery.soc", "vehicle.odometer"),
                                         timeout=limit)
            self.driver.ignition_on()
            at = self.loaded.local_time(self.clock.now()).isoformat()
            log.info("scenario_ignition_on", at=at)
            day = self.loaded.plan.date.isoformat()

            async def report() -> dict[str, Any] | None:
                if not self.driver.finished:
                    return None
                for r in reversed(await self.office.archive.records(self.bus_id, kind="daily")):
                    if isinstance(r.data, dict) and r.data.get("day") == day:
                        return dict(r.data)
                return None

            found: dict[str, Any] | None = None

            async def have_report() -> bool:
                nonlocal found
                found = await report()
                return found is not None

            end_real = (self.loaded.end_ts - self.clock.now()) / self.speed
            try:
                await self.office.wait_until(have_report, timeout=max(1.0, end_real))
            except TimeoutError:
                return await report(), False
            # Everything the daemon still holds should reach the office before we stop.
            await self._settle()
            return await report(), True

    async def _settle(self) -> None:
        """Wait (at most 10 real seconds) until the daemon's outbox is empty: all delivered."""
        outbox = self.workdir / "bus" / "outbox.sqlite"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while await asyncio.to_thread(count_rows, outbox, "outbox") != 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)

    async def _drain(self) -> None:
        """Wait (at most 5 real seconds) until the office has every record the stopped
        daemon no longer holds in its outbox."""
        outbox = self.workdir / "bus" / "outbox.sqlite"
        want = await asyncio.to_thread(delivered_seqs, outbox)
        if not want:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while True:
                    have = {r.seq for r in await self.office.archive.records(self.bus_id)}
                    if want <= have:
                        return
                    await asyncio.sleep(0.1)

    # --- faults ---------------------------------------------------------------------

    async def _faults(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for fault in self.scenario.faults:
                tg.create_task(self._fault(fault), name=f"fault:{fault.kind}")

    async def _fault(self, fault: Fault) -> None:
        """One fault at its local time, for its length. A charger fault needs the bus on the
        charger, and the planner decides when the charging stop comes: one due while the bus
        is not plugged in waits for the next plug, and starts once that charge is under way
        (``CHARGE_UNDER_WAY_S`` later)."""
        await self.clock.sleep(self.loaded.at(fault.at) - self.clock.now())
        if fault.kind == "charger_fault" and not self._plugged():
            log.info("scenario_fault_waits_for_the_charger", kind=fault.kind)
            while not self._plugged():  # the driver is a model, polled on the clock
                await self.clock.sleep(10.0)
            await self.clock.sleep(CHARGE_UNDER_WAY_S)
        start = self.clock.now()
        await self._apply(fault, True)
        length_min = fault.restart_after_min if fault.kind == "daemon_kill" else \
            fault.duration_min
        await self.clock.sleep(start + length_min * 60.0 - self.clock.now())
        await self._apply(fault, False)
        self.fault_windows.append(FaultWindow(fault.kind, start, self.clock.now()))

    def _plugged(self) -> bool:
        return self.driver.plugged

    async def _apply(self, fault: Fault, on: bool) -> None:
        kind = fault.kind
        log.info("scenario_fault", kind=kind, on=on,
                 at=self.loaded.local_time(self.clock.now()).isoformat())
        if on:
            self.faults_active.append(kind)
        elif kind in self.faults_active:
            self.faults_active.remove(kind)
        now = self.clock.now()
        if kind == "can_silence":
            if on:
                self._blind_since[kind] = now
            else:
                self.blind.append((self._blind_since.pop(kind, now), now))
        elif kind == "daemon_kill" and on:
            self._blind_since[kind] = now
        if kind == "can_silence":
            assert self.can.switch is not None
            self.can.switch.silent = on
        elif kind == "gps_outage":
            self.gps.silent = on
        elif kind == "gps_no_fix":
            self.gps.fixless = on
        elif kind == "lift_fault":
            self.lift.inject_fault(on)
        elif kind == "charger_fault":
            self._charger_fault = 0x21 if on else 0
        elif kind == "broker_down":
            if on:
                await self.broker.stop()
            else:
                await self.broker.start()
        elif kind == "daemon_kill":
            if on:
                await self.daemon.kill()
            else:
                opened = self.can.counters().get("commands", 0)
                await self.daemon.start()
                await self._spare_for_restart()
                # Blind until the new daemon's CAN reader opens the adapter again.
                async with asyncio.timeout(30):
                    while self.can.counters().get("commands", 0) == opened:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                self.blind.append((self._blind_since.pop(kind), self.clock.now()))

    async def _spare_for_restart(self) -> None:
        """A held daemon ready for the next kill's restart: "restarted 5 minutes later"
        means 5 simulated minutes, not 5 plus a Python start-up (10-20 at x600)."""
        now = self.clock.now()
        if any(f.kind == "daemon_kill" and self.loaded.at(f.at) > now
               for f in self.scenario.faults):
            await self.daemon.prepare()

    # --- progress -----------------------------------------------------------------------

    def snapshot(self) -> Progress:
        view = self.office.fleet.get(self.bus_id)
        t: Truth = self.can.model.state
        plan = view.plan if view else {}
        return Progress(
            now=self.clock.now(), start=self.loaded.start_ts, end=self.loaded.end_ts,
            phase=self.driver.phase, place=self.driver.place_id,
            target=self.driver.target.place_id if self.driver.target else None,
            soc=t.soc, speed_kmh=t.speed_kmh,
            plan_version=plan_version(plan),
            plan_changes=self._plan_changes(plan),
            backlog=self._backlog, records=view.records if view else 0,
            daemon_running=self.daemon.running, faults_active=list(self.faults_active))

    def _plan_changes(self, plan: Any) -> int:
        """Proposals the driver accepted (the follower's answers), else plan versions."""
        follower = getattr(self, "follower", None)
        if follower is not None:
            return sum(1 for a in follower.acked.values()
                       if a.result is not None and a.result.get("accepted"))
        return max(0, (plan_version(plan) or 0) - self.loaded.plan.version)

    async def _progress_loop(self) -> None:
        if self.progress is None:
            return
        outbox = self.workdir / "bus" / "outbox.sqlite"
        while True:
            self._backlog = await asyncio.to_thread(count_rows, outbox, "outbox")
            self.progress(self.snapshot())
            await asyncio.sleep(0.5)
