"""Component: the vehicle state in, legs / visits / charging sessions out.

The :class:`Tracker` reads the state on every change of the signals it cares
about and on a tick of the injected clock (a parked bus sends the same values,
which are not changes), feeds a :class:`~busd.monitoring.segment.DayTracker`,
and hands the resulting records to a writer task. The writer coalesces rows by
record (the latest row of a record supersedes the earlier ones, which bounds
the backlog by the number of open records) and writes each batch in one
transaction, so "leg closed" and "visit opened" land together or not at all.
A disk that refuses the write (full, read-only) is the one storage policy's
(busd/storage.py): the batch stays in memory (bounded as above), the writer
retries with back-off and reports to ``on_storage``, and the tracker goes on
tracking.
Events (busd/event_catalog.py: visits, legs, charging, and one ``lift_cycle``
per cycle counted) go to the :class:`~busd.ports.EventEmitter` as they happen;
they are never coalesced or dropped.

The tracker is the one owner of the day's progress: it alone decides arrival,
departure and "served". The parts that need it (the planner, the display's
clients counter, the energy model's lessons) are its ``subscribers``: each
event goes to the sink first, then to every subscriber in order, synchronously
on the loop, so no part sees a visit another part has not. On start, the visit
a previous run left open is handed to the subscribers again as its
``visit_started`` (not to the sink: the office heard it from that run), so that
after a restart they follow the resumed visit.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from busd import signals as sig
from busd.clock import Clock, utc_iso
from busd.config import MonitoringConfig, MotionConfig
from busd.event_catalog import (
    ChargingEnded,
    ChargingStarted,
    LegCompleted,
    LiftCycle,
    TrackerEvent,
    VisitEnded,
    VisitStarted,
)
from busd.monitoring.records import VISIT
from busd.monitoring.segment import (
    Change,
    DayTracker,
    PlaceRef,
    Row,
    Sample,
    Settings,
    places_of,
)
from busd.motion import DEFAULT_MOTION
from busd.plan import Plan
from busd.ports import EventEmitter, EventSubscriber
from busd.state import VehicleState
from busd.storage import Report, StoragePolicy
from busd.supervisor import Backoff, ComponentContext

WATCHED = (
    sig.BATTERY_VOLTAGE, sig.BATTERY_CURRENT, sig.VEHICLE_SPEED, sig.VEHICLE_ODOMETER,
    sig.GPS_LAT, sig.GPS_LON, sig.CHARGER_STATE, sig.CHARGER_PLUGGED, sig.LIFT_CYCLES,
    sig.LIFT_STATE,
)
SOC_SAMPLE_BACKLOG = 1440  # a day of one-minute samples; older ones are dropped and counted


class TrackerStore(Protocol):
    """What the tracker needs from the monitoring store (telemetry/monitoring_store.py)."""

    async def open_records(self) -> dict[str, Row]: ...

    async def write(self, rows: list[tuple[str, Row]], samples: list[Row]) -> None: ...

    async def save_plan(self, plan: Plan) -> None: ...


class VisitServices(Protocol):
    """What a visit's ``visit_ended`` carries from the staff page (busd/services/counter.py):
    counts per service type and minutes per activity; None for a visit not counted.
    Called on the loop: in memory, never blocking."""

    def at_end(self, visit_id: str, end_ts: float) -> tuple[dict[str, int],
                                                             dict[str, float]] | None: ...


def settings_from(config: MonitoringConfig, motion: MotionConfig) -> Settings:
    return Settings(
        min_visit_s=config.min_visit_min * 60.0, motion=motion,
        exit_margin_m=config.exit_margin_m, unplanned_radius_m=config.unplanned_radius_m,
        gps_min_step_m=config.gps_min_step_m, energy_gap_s=config.energy_gap_s,
    )


def sample_of(state: VehicleState, clock: Clock, *, max_hold_s: float) -> Sample:
    """What the state says now; stale values are None (the current keeps its age)."""

    def num(name: str) -> float | None:
        value = state.value(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def text(name: str) -> str | None:
        value = state.value(name)
        return value if isinstance(value, str) else None

    voltage, current = state.view(sig.BATTERY_VOLTAGE), state.view(sig.BATTERY_CURRENT)
    power: float | None = None
    age = 0.0
    if isinstance(voltage.value, float) and isinstance(current.value, float):
        age = max(voltage.age_s or 0.0, current.age_s or 0.0)
        if age <= max_hold_s:
            power = voltage.value * current.value / 1000.0
    fix = state.value(sig.GPS_FIX)
    has_fix = fix in ("2d", "3d") or fix is None  # a source without a fix signal: trust lat/lon
    lat, lon = (num(sig.GPS_LAT), num(sig.GPS_LON)) if has_fix else (None, None)
    # The fix's own time (the GPS source stamps it), not when it reached busd.
    pos_ts = state.view(sig.GPS_LAT).ts if lat is not None and lon is not None else None
    plugged = state.value(sig.CHARGER_PLUGGED)
    lift_counter = state.value(sig.LIFT_CYCLES)
    return Sample(
        mono=clock.monotonic(), ts=clock.now(),
        speed_kmh=num(sig.VEHICLE_SPEED), gps_speed_kmh=num(sig.GPS_SPEED),
        odometer_km=num(sig.VEHICLE_ODOMETER), lat=lat, lon=lon, pos_ts=pos_ts,
        power_kw=power, power_age_s=age, soc=num(sig.BATTERY_SOC),
        outside_temp_c=num(sig.VEHICLE_OUTSIDE_TEMP),
        plugged=plugged if isinstance(plugged, bool) else None,
        charger_state=text(sig.CHARGER_STATE), charger_power_kw=num(sig.CHARGER_POWER),
        charger_session_kwh=num(sig.CHARGER_SESSION_ENERGY),
        lift_counter=lift_counter if isinstance(lift_counter, int) else None,
        lift_state=text(sig.LIFT_STATE),
    )


class Tracker:
    """Component ``monitoring.tracker``.

    ``plan``: the day's plan, or a callable returning the current one (the
    planner may replace it during the day; places are re-read when it changes).
    ``store``: a :class:`TrackerStore`; ``sink``: where events go (the office);
    ``subscribers``: the parts that follow the tracker's events, in this order.
    """

    critical = False

    def __init__(
        self,
        *,
        state: VehicleState,
        clock: Clock,
        plan: Plan | Callable[[], Plan | None] | None,
        store: TrackerStore,
        sink: EventEmitter,
        config: MonitoringConfig,
        subscribers: Sequence[EventSubscriber] = (),
        motion: MotionConfig = DEFAULT_MOTION,
        tick_s: float = 1.0,
        name: str = "monitoring.tracker",
        on_storage: Report | None = None,
        services: VisitServices | None = None,
    ) -> None:
        """``on_storage(reason)`` is told when the store refuses writes (None: it takes
        them again)."""
        self.name = name
        self._storage = StoragePolicy("monitoring", clock=clock, report=on_storage,
                                      backoff=Backoff(initial_s=5.0, max_s=60.0))
        self._plan_to_save: Plan | None = None
        self._state = state
        self._clock = clock
        self._plan_source: Callable[[], Plan | None] = (
            plan if callable(plan) else (lambda: plan)
        )
        self._store = store
        self._sink = sink
        self._config = config
        self._subscribers = tuple(subscribers)
        self._services = services
        self._tick_s = tick_s
        zone = self._plan_source()
        self._zone = ZoneInfo(zone.timezone if zone is not None else config.timezone)
        self.day = DayTracker(places=[], settings=settings_from(config, motion), zone=self._zone)
        self._plan: Plan | None = None
        self._pending: dict[tuple[str, str], tuple[str, Row]] = {}
        self._samples: collections.deque[Row] = collections.deque(maxlen=SOC_SAMPLE_BACKLOG)
        self._dirty = asyncio.Event()
        self._next_sample = 0.0
        self._next_checkpoint = 0.0
        self.samples_dropped = 0
        self.events = 0
        self.steps = 0

    # --- component ----------------------------------------------------------------

    async def run(self, ctx: ComponentContext) -> None:
        self._refresh_plan()
        self._plan_to_save = self._plan  # the writer saves it (and retries on a full disk)
        self._dirty.set()
        open_rows = await self._store.open_records()
        self.day.resume(open_rows)
        resumed = open_rows.get(VISIT)
        if resumed:
            # The subscribers learn where the bus is before anything else happens; the
            # next sample decides whether the visit goes on or ended while busd was down.
            self._tell(event_of(Change(VISIT, dict(resumed), "visit_started")))
        now = self._clock.monotonic()
        self._next_sample = now
        self._next_checkpoint = now + self._config.checkpoint_s
        ctx.ready()
        watcher = self._state.watch(WATCHED)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._writer(ctx), name=f"busd:{self.name}:writer")
                tg.create_task(self._ticker(ctx), name=f"busd:{self.name}:tick")
                while True:
                    await watcher.changed()
                    self.process()
        finally:
            # Checkpoint what is open; a restart resumes it (and so does a crash,
            # from the previous checkpoint).
            self._queue(self.day.checkpoint())
            await self._flush(ctx)

    async def _ticker(self, ctx: ComponentContext) -> None:
        while True:
            await self._clock.sleep(self._tick_s)
            self.process()
            ctx.beat()
            ctx.counters.update(steps=self.steps, events=self.events,
                                soc_samples_dropped=self.samples_dropped)

    async def _writer(self, ctx: ComponentContext) -> None:
        while True:
            if self._storage.failing:
                await self._storage.wait(ctx)
            else:
                await self._dirty.wait()
            self._dirty.clear()
            await self._flush(ctx)

    async def _flush(self, ctx: ComponentContext) -> bool:
        """Write what is queued; False when the disk refused it (kept for the next try)."""
        return await self._storage.attempt(self._write_all, ctx)

    async def _write_all(self) -> None:
        if self._plan_to_save is not None:
            await self._store.save_plan(self._plan_to_save)
            self._plan_to_save = None
        if self._pending or self._samples:
            await self._write_queued()

    async def _write_queued(self) -> None:
        rows = list(self._pending.values())
        samples = list(self._samples)
        self._pending.clear()
        self._samples.clear()
        try:
            await self._store.write(rows, samples)
        except BaseException:
            # Keep them for the next attempt (newer rows of the same record win).
            for kind, row in rows:
                self._pending.setdefault((kind, row["id"]), (kind, row))
            self._samples.extendleft(reversed(samples))
            raise

    # --- processing -----------------------------------------------------------------

    def _refresh_plan(self) -> None:
        plan = self._plan_source()
        if plan is not self._plan:
            self._plan = plan
            self.day.places = places_of(plan) if plan is not None else []

    def process(self) -> list[Change]:
        """Take one sample of the state now (called on changes and on every tick)."""
        self._refresh_plan()
        sample = sample_of(self._state, self._clock, max_hold_s=self._config.energy_gap_s)
        lift_before = self.day.lift.cycles
        changes = self.day.step(sample)
        self.steps += 1
        self._queue(changes)
        for change in changes:
            if change.event is not None:
                self._emit(self._with_services(event_of(change)))
        if self.day.lift.cycles > lift_before:
            self._emit(self._lift_cycle(self.day.lift.cycles - lift_before))
        # Not due again until a sample had a SOC: the first is logged as soon as the SOC
        # is read, not a whole soc_sample_s after a first tick that came before it.
        if sample.mono >= self._next_sample and sample.soc is not None:
            self._next_sample = sample.mono + self._config.soc_sample_s
            self._soc_sample(sample)
        if sample.mono >= self._next_checkpoint:
            self._next_checkpoint = sample.mono + self._config.checkpoint_s
            self._queue(self.day.checkpoint())
        return changes

    def _with_services(self, event: TrackerEvent) -> TrackerEvent:
        """A ``visit_ended`` with the visit's services and activity minutes, when counted."""
        if not isinstance(event, VisitEnded) or self._services is None:
            return event
        end = self._clock.now() if event.end is None else _epoch(event.end)
        found = self._services.at_end(event.id, end)
        if found is None:
            return event
        counts, minutes = found
        return VisitEnded.model_validate({**event.model_dump(), "services": counts,
                                          "activities_min": minutes or None})

    def _emit(self, event: TrackerEvent | LiftCycle) -> None:
        self.events += 1
        self._sink.emit(event)
        self._tell(event)

    def _tell(self, event: TrackerEvent | LiftCycle) -> None:
        for subscriber in self._subscribers:
            subscriber.on_event(event)

    def _queue(self, changes: list[Change]) -> None:
        for change in changes:
            self._pending[(change.kind, change.row["id"])] = (change.kind, change.row)
        if changes:
            self._dirty.set()

    def _soc_sample(self, s: Sample) -> None:
        if s.soc is None:
            return
        place: PlaceRef | None = self.day.visit.place if self.day.visit else None
        if len(self._samples) == self._samples.maxlen:
            self.samples_dropped += 1
        self._samples.append({
            "ts": round(s.ts, 3), "day": self.day.day_of(s.ts), "soc": s.soc,
            "speed_kmh": s.speed_kmh, "odometer_km": s.odometer_km,
            "place_id": place.id if place else None,
        })
        self._dirty.set()

    def _lift_cycle(self, cycles: int) -> LiftCycle:
        place: PlaceRef | None = self.day.visit.place if self.day.visit else None
        return LiftCycle(cycles=cycles, day_cycles=self.day.lift.cycles,
                         counter=self.day.lift.last_counter,
                         place_id=place.id if place else None,
                         place_name=place.name if place else None)


_EVENTS: dict[str, type[TrackerEvent]] = {
    m.model_fields["kind"].default: m
    for m in (VisitStarted, VisitEnded, LegCompleted, ChargingStarted, ChargingEnded)
}
_ROW_ONLY = ("updated_ts", "temp_s", "start_ts", "end_ts")  # store bookkeeping, not the event's


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def event_of(change: Change) -> TrackerEvent:
    """The catalogue event of a record that opened or closed (``change.event`` is set)."""
    assert change.event is not None
    row = change.row
    model = _EVENTS[change.event]
    # A row read back from the store may carry columns of its own (clients served).
    data = {k: v for k, v in row.items() if k not in _ROW_ONLY and k in model.model_fields}
    data["start"] = utc_iso(row["start_ts"])
    data["end"] = utc_iso(row["end_ts"]) if row.get("end_ts") is not None else None
    return model.model_validate(data)
