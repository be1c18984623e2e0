"""The composition root: config in, a supervised daemon out.

This is the one module that imports drivers, telemetry and simulators
together; the logic in busd/ depends only on its own ports. Everything that
can be checked without opening a device (the config, the DBC, the mapping)
is checked in :func:`prepare`, so ``busd check-config`` and ``busd run``
refuse a bad config with the same messages before anything starts.

The supervisor starts the parts in this order, each awaited ready before the
next (README, "How it is built"), and stops them in reverse:

1. the simulated office broker, if any (it stops last, after the uplink's goodbye);
2. the outbox: open before anything records, closed last;
3. the uplink (reads the outbox) and the telemetry sampler;
4. the event forwarder;
5. the alert memory: the previous run's alerts are inherited before any rule runs;
6. the storage alert and the freshness monitor;
7. stop notes, planner, tracker, daily summary, retention (and any extra parts);
8. the alert rules on the vehicle's state (lift moving, charger fault);
9. simulators that own the device a driver opens (a pty): it must exist first,
   and nothing they send is lost (NMEA waits in the pty, a Modbus unit only
   answers, an slcan adapter sends once the driver opened the channel);
10. the drivers;
11. simulators that send on a bus (CAN on ``virtual``/vcan): only once the
    drivers listen, or the first frames are lost;
12. the display, then the systemd watchdog (stopped first: STOPPING=1 at once).

Every callback a part needs is a constructor argument; nothing is patched in
after construction. Every writer reports to one :class:`StorageStatus`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from busd.alerts import AlertBoard
from busd.alerts_charger import ChargerFaultAlert
from busd.alerts_lift import LiftMovingAlert
from busd.alerts_memory import AlertMemory
from busd.clock import Clock, ScaledClock, SystemClock
from busd.config import BusdConfig
from busd.display import DisplayServer
from busd.events import EventForwarder
from busd.freshness import FreshnessMonitor
from busd.monitoring.daily import DailySummaryJob
from busd.monitoring.plan_projections import ProjectionRecorder
from busd.monitoring.retention import RetentionJob
from busd.monitoring.stop_notes import StopNotes
from busd.monitoring.tracker import Tracker
from busd.plan import Plan, load_plan
from busd.planner.component import Planner
from busd.planner.display_view import PlannerDisplayView
from busd.planner.learning import EnergyLearner
from busd.ports import (
    CommandOutcome,
    EventEmitter,
    EventSubscriber,
    JsonObject,
    PlanPublisher,
)
from busd.secrets import check_secret_file
from busd.services.counter import ServiceCounter
from busd.state import VehicleState
from busd.status import StatusServer, socket_path
from busd.storage import StorageAlert, StorageStatus
from busd.supervisor import Backoff, Component, Supervisor
from busd.watchdog import SystemdWatchdog
from drivers.can.decoder import FrameDecoder, load_dbc
from telemetry.display_adapters import UplinkStatusAdapter
from telemetry.monitoring_store import MonitoringStore
from telemetry.mqtt import BrokerSettings
from telemetry.outbox import Outbox
from telemetry.status_adapter import UplinkContact
from telemetry.wiring import UplinkParts, build_uplink


@dataclass
class Prepared:
    """Everything derived from the config before any device is opened."""

    config: BusdConfig
    can_decoder: FrameDecoder | None = None


def prepare(config: BusdConfig) -> Prepared:
    """Validate what the config points at; raises ConfigError naming the key."""
    prepared = Prepared(config)
    if config.monitoring.plan is not None:
        load_plan(config.monitoring.plan)  # a broken plan file is a config error
    # The broker's credentials and TLS files must be readable, and private, before we start.
    if config.mqtt.password_file is not None:
        check_secret_file(config.mqtt.password_file, "mqtt.password_file")
    if config.mqtt.tls.key_file is not None:
        check_secret_file(config.mqtt.tls.key_file, "mqtt.tls.key_file")
    BrokerSettings.from_config(config.mqtt).ssl_context()
    if config.can is not None:
        db = load_dbc(config.can.dbc, strict=config.can.dbc_strict)
        prepared.can_decoder = FrameDecoder(
            db, config.can.mapping, match_j1939_pgn=config.can.match_j1939_pgn
        )
    return prepared


def make_clock(config: BusdConfig) -> Clock:
    """Real time, unless a simulation config asks to run faster."""
    speed = config.simulators.speed
    anchor = config.simulators.clock_anchor
    if anchor is not None:  # a scenario runner's day, shared with its simulators
        return ScaledClock(speed=speed, start=anchor.sim_epoch, anchor_real=anchor.real_epoch)
    return SystemClock() if speed == 1.0 else ScaledClock(speed=speed)


@dataclass
class Daemon:
    config: BusdConfig
    clock: Clock
    state: VehicleState
    supervisor: Supervisor
    alerts: AlertBoard
    uplink: UplinkParts
    events: EventForwarder
    store: MonitoringStore
    components: list[Component] = field(default_factory=list)


def build_daemon(
    prepared: Prepared, clock: Clock, *, extra_components: list[Component] | None = None
) -> Daemon:
    config = prepared.config
    state = VehicleState(clock, freshness_overrides=config.freshness_s)
    storage = StorageStatus()  # every writer reports here; StorageAlert raises the alert
    outbox = Outbox.from_config(config, clock=clock, on_storage=storage.reporter("outbox"))
    events = EventForwarder(sink=outbox, clock=clock, on_storage=storage.reporter("events"))
    alerts = AlertBoard(clock=clock, forward=events.forward,
                        timezone=config.monitoring.timezone)
    uplink = build_uplink(config, state=state, clock=clock, outbox=outbox,
                          active_alerts=lambda: {k: a.message for k, a in alerts.active.items()})
    store = MonitoringStore(config.monitoring_db)
    # The start order (module docstring): sinks first, sources last, so that sources
    # stop first and sinks flush last on shutdown (the outbox is the very last to stop).
    components: list[Component] = _broker_simulator(config)
    components += [*uplink.components, events]
    components.append(AlertMemory(board=alerts, path=config.data_dir / "alerts.json",
                                  clock=clock, on_storage=storage.reporter("alerts")))
    components.append(StorageAlert(status=storage, alerts=alerts))
    components.append(FreshnessMonitor(state=state, clock=clock))
    # The stop notes follow the planner's events: an accepted proposal's shortened and
    # skipped stops get their reason in the monitoring store.
    stop_notes = StopNotes(store=store, clock=clock,
                           timezone=config.monitoring.timezone,
                           on_storage=storage.reporter("stop notes"))
    # The projection recorder is the planner's plan publisher and follows its events too:
    # each accepted plan's projected SOC curve is kept for the report's plot.
    projections = ProjectionRecorder(plan_sink=uplink.uplink, store=store, clock=clock,
                                     timezone=config.monitoring.timezone,
                                     on_storage=storage.reporter("plan projections"))
    planner = _planner(config, state, clock, projections, uplink, events,
                       [stop_notes, projections], storage)
    components += [stop_notes, projections]
    components += [planner] if planner is not None else []
    # The tracker owns the day's progress; these follow its events, in this order.
    # The staff page's counters start before the tracker: a visit it resumes after a
    # power cut finds its counts already read back.
    clients = ServiceCounter(config=config.services, store=store, clock=clock, sink=events,
                             timezone=config.monitoring.timezone,
                             on_storage=storage.reporter("services"))
    components.append(clients)
    followers: list[EventSubscriber] = [clients]
    if planner is not None:
        followers = [EnergyLearner(planner=planner), planner, clients]
    tracker, daily = _monitoring(config, state, clock, store, events, alerts, planner,
                                 storage, followers, clients)
    retention = RetentionJob(clock=clock, purge_before=store.purge_before,
                             days=config.monitoring.retention_days,
                             timezone=config.monitoring.timezone,
                             on_storage=storage.reporter("monitoring retention"))
    components += [tracker, daily, retention]
    components.extend(extra_components or [])
    components.append(LiftMovingAlert(
        state=state, sink=alerts, speed_threshold_kmh=config.lift_alert.speed_threshold_kmh
    ))
    components.append(ChargerFaultAlert(state=state, sink=alerts))
    wires, senders = _simulators(config, clock)
    components += [*wires, *_drivers(prepared, state, clock), *senders]
    supervisor = Supervisor(
        components,
        clock=clock,
        backoff=Backoff(
            initial_s=config.supervisor.backoff_initial_s, max_s=config.supervisor.backoff_max_s
        ),
        stop_timeout_s=config.supervisor.stop_timeout_s,
    )
    if config.display.enabled:
        supervisor.add(DisplayServer(
            config=config.display, state=state, clock=clock, alerts=alerts,
            health=lambda: supervisor.health,
            uplink=UplinkStatusAdapter(uplink=uplink.uplink, outbox=uplink.outbox),
            clients=clients, services=config.services,
            plan=PlannerDisplayView(planner) if planner is not None else None,
            lift_speed_threshold_kmh=config.lift_alert.speed_threshold_kmh,
        ))
    # `busd status` asks here (data_dir/status.sock).
    supervisor.add(StatusServer(
        path=socket_path(config.data_dir), bus_id=config.bus_id, clock=clock,
        health=lambda: supervisor.health,
        office=UplinkContact(uplink=uplink.uplink, outbox=uplink.outbox),
    ))
    # Last: stopped first, so systemd hears STOPPING=1 as soon as shutdown begins.
    supervisor.add(SystemdWatchdog(health=lambda: supervisor.health, clock=clock))
    return Daemon(config, clock, state, supervisor, alerts, uplink, events, store, components)


def _planner(
    config: BusdConfig, state: VehicleState, clock: Clock,
    plan_sink: PlanPublisher, uplink: UplinkParts, events: EventEmitter,
    subscribers: list[EventSubscriber], storage: StorageStatus,
) -> Planner | None:
    """The SOC-aware planner: publishes on ``plan``, takes ``cmd/plan`` from the office."""
    if not config.planner.enabled or config.planner.plan_file is None:
        return None
    planner = Planner.from_config(config, state=state, clock=clock,
                                  plan_sink=plan_sink, events=events,
                                  subscribers=subscribers,
                                  on_storage=storage.reporter("planner"))

    async def on_plan_command(body: JsonObject) -> CommandOutcome:
        result = await planner.replace_plan(body)
        if result.accepted:
            return CommandOutcome.accept(scheduled=result.scheduled)
        return CommandOutcome.reject(
            "; ".join(f"{key}: {reason}" for key, reason in result.problems),
            problems=[list(p) for p in result.problems],
        )

    uplink.commands.register("plan", on_plan_command)
    return planner


def _monitoring(
    config: BusdConfig, state: VehicleState, clock: Clock, store: MonitoringStore,
    events: EventForwarder, alerts: AlertBoard, planner: Planner | None,
    storage: StorageStatus, followers: list[EventSubscriber], services: ServiceCounter,
) -> tuple[Tracker, DailySummaryJob]:
    """The tracker (legs, visits, charging) and the daily summary.

    With a planner, the tracker follows the plan the driver accepted, so a
    skipped stop or an added charging stop is recognised as such.
    """
    file_plan = load_plan(config.monitoring.plan) if config.monitoring.plan else None
    plan: Plan | Callable[[], Plan | None] | None = file_plan
    if planner is not None:
        plan = lambda: planner.core.plan or file_plan  # noqa: E731
    tracker = Tracker(state=state, clock=clock, plan=plan, store=store, sink=events,
                      config=config.monitoring, subscribers=followers, motion=config.motion,
                      on_storage=storage.reporter("monitoring"), services=services)
    return (
        tracker,
        # A bus that comes home late gets its summary when it is back, not mid-leg.
        DailySummaryJob(clock=clock, store=store, sink=events, at=config.monitoring.summary_at,
                        timezone=config.monitoring.timezone, alert_count=alerts.count_for_day,
                        bus_out=lambda: tracker.day.away, bus_id=config.bus_id,
                        on_storage=storage.reporter("daily summary")),
    )


def _drivers(prepared: Prepared, state: VehicleState, clock: Clock) -> list[Component]:
    """Hardware sources named by the config."""
    config = prepared.config
    drivers: list[Component] = []
    if config.can is not None and prepared.can_decoder is not None:
        from drivers.can.reader import CanReader

        drivers.append(
            CanReader(config=config.can, decoder=prepared.can_decoder, state=state, clock=clock,
                      speed=config.simulators.speed)
        )
    if config.gps is not None:
        from drivers.gps import gps_source

        drivers.append(gps_source(config.gps, state=state, clock=clock))
    if config.lift is not None:
        from drivers.lift import LiftModbusSource

        drivers.append(LiftModbusSource.from_config(config.lift, state=state, clock=clock))
    return drivers


def _broker_simulator(config: BusdConfig) -> list[Component]:
    if config.simulators.broker is None:
        return []
    from simulators.broker import BrokerSimulator

    return [BrokerSimulator(port=config.simulators.broker.port,
                            workdir=config.data_dir / "broker")]


def _simulators(
    config: BusdConfig, clock: Clock
) -> tuple[list[Component], list[Component]]:
    """Simulators named by the config (imported only when asked for), as two lists:
    those that own the device a driver opens (a pty, started before the drivers) and
    those that send on a bus (started after the drivers, which must listen first).

    The GPS and lift simulators follow the CAN simulator's vehicle model when
    there is one: the position moves as the simulated bus drives, and the
    lift cycles when it stands.
    """
    sims: list[Component] = []  # each owns a pty
    senders: list[Component] = []
    can_sim = None
    if config.simulators.can is not None:
        from simulators.can.simulator import CanSimulator

        can_sim = CanSimulator(config.simulators.can, clock)
        (sims if config.simulators.can.slcan_link is not None else senders).append(can_sim)
    if config.simulators.gps is not None:
        from simulators.gps import GpsSimulator
        from simulators.gps.route import OdometerRoute, Route

        gps_config = config.simulators.gps
        positions = None
        if can_sim is not None:
            points = [(gps_config.start.lat, gps_config.start.lon)]
            points += [(w.lat, w.lon) for w in gps_config.route]
            sim = can_sim
            positions = OdometerRoute(
                Route(waypoints=points, speed_kmh=gps_config.speed_kmh, loop=gps_config.loop),
                odometer_km=lambda: sim.truth.odometer_km, speed_kmh=lambda: sim.truth.speed_kmh,
            )
        sims.append(GpsSimulator.from_config(gps_config, clock=clock, positions=positions))
    if config.simulators.lift is not None:
        from simulators.lift import LiftSimulator
        from simulators.lift.simulator import standing

        stopped = None
        if can_sim is not None:
            sim = can_sim
            stopped = lambda: standing(sim.truth.speed_kmh)  # noqa: E731
        sims.append(LiftSimulator.from_config(config.simulators.lift, clock=clock, stopped=stopped))
    return sims, senders
