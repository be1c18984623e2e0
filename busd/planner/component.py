"""Component: runs the planner against live vehicle state and publishes through ports.

It wakes when SOC, temperature or position change (and at least every
``max_interval_s``), projects at most every ``min_interval_s``, and hands
what :class:`~busd.planner.core.PlannerCore` decides to the injected sinks.

Files in ``<data_dir>/planner/`` (until the CLI talks to the daemon directly):

- ``state.json``: the retained plan document, rewritten atomically on every
  publish; ``busd plan show`` reads it.
- ``ack/<proposal id>``: an acknowledgement request dropped by ``busd plan ack``;
  the component takes it within a second, acknowledges, writes the result to
  ``ack/<proposal id>.result`` and removes the request.
- ``plans/<day>.json``: each plan the office sent that the bus accepted, for today or
  a later day, written durably before the answer; at start (and when the day turns)
  the day's kept plan is followed instead of the plan file's, and a plan kept for a
  day that has passed is removed.
- ``energy.json``: the learned energy model, saved after every lesson. The
  snapshot is taken on the loop (where the model changes) and written by the
  component's saver task in a worker thread, durably: a temporary file,
  fsync, rename over the old one, fsync of the folder. A crash or power cut
  leaves the previous model or the new one, never half a file.

A disk that refuses these files is the one storage policy's (busd/storage.py):
the plan goes on, the planner turns degraded and reports, and what was not
written (the latest of each file: bounded) waits in memory and is retried with
back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import structlog

from busd import signals as sig
from busd.clock import Clock
from busd.config import PlannerConfig
from busd.errors import ConfigError
from busd.event_catalog import Event, PlanDocument, VisitEnded, VisitStarted
from busd.files import write_atomic
from busd.plan import Plan, load_plan
from busd.planner.core import AckResult, CommandResult, Outgoing, PlannerCore
from busd.planner.energy import EnergyModel
from busd.planner.projection import Situation
from busd.ports import EventEmitter, EventSubscriber, PlanPublisher, PlanSource
from busd.state import VehicleState, Watcher
from busd.storage import Report, StoragePolicy
from busd.supervisor import ComponentContext

log = structlog.get_logger("busd.planner")

# Charging starting or stopping changes the projection at once (the power is read at
# each projection; it moves every second and needs no wake-up of its own).
_WATCHED = (sig.BATTERY_SOC, sig.VEHICLE_OUTSIDE_TEMP, sig.GPS_LAT, sig.GPS_LON,
            sig.CHARGER_STATE)
_INBOX_POLL_S = 1.0
_SOC_STEP = 0.5  # % that counts as a change worth re-projecting
_MOVE_STEP_M = 200.0


class FilePlanSource:
    """The plan file from the config; a plan for another day is not today's plan."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def plan_for(self, day: date) -> Plan | None:
        plan = load_plan(self._path)
        return plan if plan.date == day else None


class Planner:
    """The supervised planner component."""

    name = "planner"
    critical = False

    def __init__(
        self,
        *,
        config: PlannerConfig,
        bus_id: str,
        state: VehicleState,
        clock: Clock,
        plan_source: PlanSource,
        plan_sink: PlanPublisher,
        events: EventEmitter,
        subscribers: Sequence[EventSubscriber] = (),
        data_dir: Path | None = None,
        energy: EnergyModel | None = None,
        on_storage: Report | None = None,
    ) -> None:
        """``on_storage(reason)`` is told when the disk refuses the planner's files (None:
        it takes them again)."""
        self._cfg = config
        self._state = state
        self._clock = clock
        self._source = plan_source
        self._plan_sink = plan_sink
        self._events = events
        self._subscribers = tuple(subscribers)
        self._dir = data_dir / "planner" if data_dir is not None else None
        if energy is None:
            energy = self._load_energy()
        self.core = PlannerCore(config, bus_id=bus_id, energy=energy)
        self._last_tick: float | None = None
        self._last_soc: float | None = None
        self._last_pos: tuple[float, float] | None = None
        self._last_temp: float = 0.0
        self._progressed = False  # the tracker announced an arrival or departure
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        # A disk that refuses the planner's files (full, read-only): which file and why.
        self._storage = StoragePolicy("planner", clock=clock, report=on_storage)
        self._ctx: ComponentContext | None = None
        self._file_errors: dict[str, str] = {}
        self._retry_at = 0.0
        self._state_text: str | None = None  # state.json not yet written
        # The learned model's latest snapshot not yet on disk (numbered), and the saver's.
        self._energy_text: tuple[int, str] | None = None
        self._energy_seq = 0
        self._energy_written = 0
        self._energy_file_lock = threading.Lock()
        self._energy_wanted = asyncio.Event()
        self._saver: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls, config: Any, *, state: VehicleState, clock: Clock, plan_sink: PlanPublisher,
        events: EventEmitter, plan_source: PlanSource | None = None,
        on_storage: Report | None = None, subscribers: Sequence[EventSubscriber] = (),
    ) -> Planner:
        """From a :class:`busd.config.BusdConfig` (the plan file: ``planner.plan_file``)."""
        pcfg: PlannerConfig = config.planner
        if plan_source is None:
            if pcfg.plan_file is None:
                raise ConfigError([("planner.plan_file", "no plan file and no plan source")])
            plan_source = FilePlanSource(pcfg.plan_file)
        return cls(
            config=pcfg, bus_id=config.bus_id, state=state, clock=clock,
            plan_source=plan_source, plan_sink=plan_sink, events=events,
            subscribers=subscribers, data_dir=config.data_dir, on_storage=on_storage,
        )

    @property
    def config(self) -> PlannerConfig:
        return self._cfg

    @property
    def energy_model(self) -> EnergyModel:
        """The model the tracker teaches (``learn_leg``, ``learn_visit``; then ``save_energy``)."""
        return self.core.energy

    # --- API for the display, the uplink and the tracker ----------------------------

    async def acknowledge(self, proposal_id: str) -> AckResult:
        async with self._lock:
            result, out = self.core.acknowledge(proposal_id, self._clock.now())
            await self._send(out)
        return result

    async def replace_plan(self, data: object) -> CommandResult:
        """``cmd/plan`` from the office: the result goes back on ``cmd/result``.

        A plan for a later day is kept (``plans/<day>.json``) and followed from its day on;
        when the disk refuses to keep it, it is rejected with the reason: accepted, it
        would be lost at the next restart without the office knowing."""
        async with self._lock:
            # "Today" in the new plan's time zone, as the command dispatcher checked it.
            result, out = self.core.replace_plan(data, now=self._clock.now())
            if result.accepted:
                plan = self.core.plan if result.scheduled is None else \
                    self.core.scheduled.get(result.scheduled)
                problem = await self._keep_plan(plan) if plan is not None else None
                if problem is not None and result.scheduled is not None:
                    self.core.scheduled.pop(result.scheduled, None)
                    result = CommandResult(accepted=False, problems=[("plan", problem)])
            await self._send(out)
        if not result.accepted:
            log.warning("plan_rejected", problems=result.problems)
        return result

    async def _keep_plan(self, plan: Plan) -> str | None:
        """Write an office plan for its day, durably; the reason when the disk refuses."""
        if self._dir is None:
            return None
        path = self._dir / "plans" / f"{plan.date.isoformat()}.json"
        try:
            await asyncio.to_thread(write_atomic, path, plan.model_dump_json(), durable=True)
        except OSError as err:
            log.warning("plan_not_kept", day=plan.date.isoformat(), error=str(err))
            return f"cannot keep the plan for {plan.date.isoformat()}: {err.strerror or err}"
        return None

    def _kept_plans(self, today: date) -> dict[date, Plan]:
        """The office plans kept for today and later days (those of days passed are removed).
        Runs in a worker thread."""
        folder = self._dir / "plans" if self._dir is not None else None
        if folder is None or not folder.is_dir():
            return {}
        kept: dict[date, Plan] = {}
        for path in sorted(folder.glob("*.json")):
            try:
                plan = load_plan(path)
            except ConfigError as err:
                log.warning("kept_plan_unreadable", file=path.name, problems=len(err.problems))
                continue
            if plan.date < today:
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            kept[plan.date] = plan
        return kept

    async def _turn_day(self, ctx: ComponentContext) -> None:
        """A plan kept for today, while the planner follows another day's: follow it."""
        today = self._today()
        if self.core.plan is not None and self.core.plan.date == today:
            return
        plan = self.core.take_scheduled(today)
        if plan is not None:
            async with self._lock:
                await self._send(self.core.load(plan, self._clock.now(), cause="office"))
            ctx.ready()

    def on_event(self, event: Event) -> None:
        """The tracker's events, handed over synchronously on the loop as they happen (its
        subscriber; a resumed visit is handed over again on start). Arrival, departure and
        the served minutes are the tracker's to decide: the planner only follows them, and
        projects at once, without waiting for the rate limit."""
        if isinstance(event, VisitStarted):
            self.core.visit_started(event.place_id, event.place_kind, _epoch(event.start))
        elif isinstance(event, VisitEnded):
            self.core.visit_ended(event.place_id)
        else:
            return
        self._progressed = True
        self._wake.set()

    def save_energy(self) -> None:
        """Ask for the learned model to be saved. Called on the loop (by the tracker's
        emitter), so it only takes the snapshot; the saver task in :meth:`run` writes it in
        a thread. Lessons in quick succession coalesce into one write of the latest."""
        if self._dir is None:
            return
        self._energy_seq += 1
        self._energy_text = (
            self._energy_seq, json.dumps(self.core.energy.to_dict(), allow_nan=False))
        self._energy_wanted.set()

    async def flush_energy(self) -> None:
        """Write the latest snapshot now, if there is one (off the loop)."""
        pending, self._energy_text = self._energy_text, None
        self._energy_wanted.clear()
        if pending is None or self._dir is None:
            return
        try:
            await asyncio.to_thread(self._write_energy, *pending)
            self._file_written("energy.json")
        except asyncio.CancelledError:
            # The thread goes on writing. Taking the snapshot back makes the final flush
            # in run() wait for it (same number: written once, then skipped).
            if self._energy_text is None:
                self._energy_text = pending
            raise
        except OSError as err:
            # Disk full or read-only: keep the lessons in memory; the loop tries again.
            self._file_refused("energy.json", err)
            if self._energy_text is None:
                self._energy_text = pending

    def _file_refused(self, name: str, err: OSError) -> None:
        if name not in self._file_errors:
            log.warning("planner_file_not_written", file=name, error=str(err))
        self._file_errors[name] = f"{name}: {err.strerror or err}"
        self._storage.refused("cannot write the planner's " + ", ".join(
            sorted(self._file_errors.values())), self._ctx)
        now = self._clock.monotonic()
        if now >= self._retry_at:  # the files share one back-off: the ack inbox, polled
            self._retry_at = now + self._storage.delay()  # every second, must not reset it

    def _file_written(self, name: str) -> None:
        if self._file_errors.pop(name, None) is not None and not self._file_errors:
            self._storage.wrote(self._ctx)

    async def _write_state(self) -> None:
        """state.json: the retained plan document for ``busd plan`` and the simulators."""
        text = self._state_text
        if text is None or self._dir is None:
            return
        try:
            await asyncio.to_thread(write_atomic, self._dir / "state.json", text)
        except OSError as err:
            self._file_refused("state.json", err)
            return
        if self._state_text is text:
            self._state_text = None
        self._file_written("state.json")

    def _write_energy(self, seq: int, text: str) -> None:
        # In a worker thread. A write cancelled on the loop still finishes in its thread,
        # so two can overlap at shutdown: the lock and the number keep an older snapshot
        # from landing over a newer one.
        assert self._dir is not None
        with self._energy_file_lock:
            if seq <= self._energy_written:
                return
            write_atomic(self._dir / "energy.json", text, durable=True)
            self._energy_written = seq

    async def _energy_saver(self) -> None:
        while True:
            await self._energy_wanted.wait()
            await self.flush_energy()

    # --- the loop -------------------------------------------------------------------

    async def run(self, ctx: ComponentContext) -> None:
        # A task of our own rather than a TaskGroup: the supervisor should see the loop's
        # own exception, not an ExceptionGroup around it; the loop checks on the saver.
        self._saver = asyncio.create_task(self._energy_saver(), name="planner-energy-saver")
        try:
            await self._run(ctx)
        finally:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            # Stopping with a lesson not yet written (the saver was cancelled first).
            if self._energy_text is not None:
                await self.flush_energy()

    async def _run(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        today = self._today()
        current = self.core.plan
        if not self.core.scheduled:
            self.core.scheduled = await asyncio.to_thread(self._kept_plans, today)
        if current is None or current.date != today:
            # A restart after a failure keeps the day as it was (office plan, acks, progress).
            # The office's plan for today, when it sent one, replaced the file's.
            plan = self.core.take_scheduled(today)
            if plan is None:
                plan = await asyncio.to_thread(self._source.plan_for, today)
            if plan is None:
                ctx.degraded(f"no plan for {today.isoformat()}")
            else:
                async with self._lock:
                    await self._send(self.core.load(plan, self._clock.now()))
                ctx.ready()
        else:
            ctx.ready()
        watcher = self._state.watch(_WATCHED)
        next_inbox = 0.0  # clock.monotonic() of the next look for acknowledgement files
        while True:
            if self._saver is not None and self._saver.done():
                self._saver.result()  # the saver failed: fail with its reason, to be restarted
            if self._file_errors and self._clock.monotonic() >= self._retry_at:
                # The disk refused a file: try again, after the back-off.
                await self._write_state()
                if self._energy_text is not None:
                    self._energy_wanted.set()
            # Every SOC or position change turns this loop (several a second on
            # CAN): the inbox, a directory listing in a thread, is read once a second.
            now_mono = self._clock.monotonic()
            if now_mono >= next_inbox:
                next_inbox = now_mono + 0.9 * _INBOX_POLL_S
                await self._take_acks()
                await self._turn_day(ctx)
            await self.tick(ctx)
            ctx.beat()
            await self._wait(watcher)

    async def _wait(self, watcher: Watcher) -> None:
        """Until a watched signal changes, the tracker announces a visit, or the inbox
        is due."""
        if self._wake.is_set():
            self._wake.clear()
            return
        changed = asyncio.ensure_future(watcher.changed())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((changed, woken), timeout=_INBOX_POLL_S,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, woken):
                task.cancel()
            await asyncio.gather(changed, woken, return_exceptions=True)
        self._wake.clear()

    async def tick(self, ctx: ComponentContext | None = None, *, force: bool = False) -> bool:
        """Project if due; returns whether it did."""
        sit = self._situation()
        if sit is None:
            if ctx is not None and self.core.plan is not None:
                ctx.degraded("no fresh SOC")
            return False
        now_mono = self._clock.monotonic()
        since = None if self._last_tick is None else now_mono - self._last_tick
        moved = (
            self._last_pos is None
            or _distance(self._last_pos, (sit.lat, sit.lon)) >= _MOVE_STEP_M
        )
        changed = self._last_soc is None or abs(sit.soc - self._last_soc) >= _SOC_STEP or moved
        due = force or since is None or since >= self._cfg.max_interval_s or (
            changed and since >= self._cfg.min_interval_s
        )
        # Arrivals and departures (the tracker's) must not wait for the rate limit.
        if not due and not self._progressed:
            return False
        self._progressed = False
        async with self._lock:
            out = await asyncio.to_thread(self.core.observe, sit)
            await self._send(out)
        self._last_tick, self._last_soc, self._last_pos = now_mono, sit.soc, (sit.lat, sit.lon)
        if ctx is not None:
            ctx.counters["projections"] = ctx.counters.get("projections", 0) + 1
            if self.core.last_search is not None:
                ctx.counters["last_search_nodes"] = self.core.last_search.nodes
            if self.core.plan is not None and not self._storage.failing:
                ctx.ready()
        return True

    def _situation(self) -> Situation | None:
        soc = self._state.value(sig.BATTERY_SOC)
        if soc is None:
            return None
        temp = self._state.value(sig.VEHICLE_OUTSIDE_TEMP)
        if temp is not None:
            self._last_temp = float(temp)
        lat, lon = self._state.value(sig.GPS_LAT), self._state.value(sig.GPS_LON)
        if lat is None or lon is None:
            if self._last_pos is not None:
                lat, lon = self._last_pos
            elif self.core.plan is not None:
                lat, lon = self.core.plan.depot.lat, self.core.plan.depot.lon
            else:
                return None
        return Situation(self._clock.now(), float(soc), self._last_temp, float(lat), float(lon),
                         charging_kw=self._charging_kw())

    def _charging_kw(self) -> float | None:
        """Power into the pack while the charger reports charging (fresh readings only: a
        stale state or power is not a charge the planner may count on)."""
        if self._state.value(sig.CHARGER_STATE) != "charging":
            return None
        power = self._state.value(sig.CHARGER_POWER)
        return float(power) if isinstance(power, int | float) and power > 0 else None

    def _today(self) -> date:
        zone = self.core.plan.zone if self.core.plan is not None else None
        if zone is None:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo("Europe/Riga")
        return datetime.fromtimestamp(self._clock.now(), zone).date()

    async def _send(self, out: list[Outgoing]) -> None:
        for message in out:
            payload = message.payload
            if not isinstance(payload, PlanDocument):
                # Queued to the event forwarder, which stores it in order and waits
                # out a disk that refuses writes: the planner never blocks on it. Then
                # its subscribers (the stop notes), in order, on the loop.
                self._events.emit(payload)
                for subscriber in self._subscribers:
                    subscriber.on_event(payload)
            else:
                await self._plan_sink.publish_plan(payload)
                if self._dir is not None:
                    # pydantic's JSON: never NaN or Infinity (the models refuse them).
                    self._state_text = payload.model_dump_json(indent=1)
                    await self._write_state()

    async def _take_acks(self) -> None:
        if self._dir is None:
            return
        inbox = self._dir / "ack"
        requests = await asyncio.to_thread(
            lambda: sorted(p for p in inbox.glob("*") if p.suffix == "") if inbox.is_dir() else []
        )
        for request in requests:
            result = await self.acknowledge(request.name)
            try:
                await asyncio.to_thread(
                    write_atomic, request.with_suffix(".result"), result.model_dump_json()
                )
                request.unlink(missing_ok=True)
            except OSError as err:
                # The request stays and is answered again ("accepted before") when the
                # disk takes the answer; the acknowledgement itself has been made.
                self._file_refused("ack", err)
                return
            self._file_written("ack")

    def _load_energy(self) -> EnergyModel:
        if self._dir is not None:
            path = self._dir / "energy.json"
            try:
                return EnergyModel.from_dict(self._cfg, json.loads(path.read_text()))
            except FileNotFoundError:
                pass
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("energy_model_unreadable", path=str(path), error=str(err))
        return EnergyModel(self._cfg)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    from busd.plan import haversine_m

    return haversine_m(a[0], a[1], b[0], b[1])

