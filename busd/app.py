"""The composition root: config in, a supervised daemon out.

This is the one module that imports drivers, telemetry and simulators
together; the logic in busd/ depends only on its own ports. Everything that
can be checked without opening a device (the config, the DBC, the mapping)
is checked in :func:`prepare`, so ``busd check-config`` and ``busd run``
refuse a bad config with the same messages before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from busd.clock import Clock, ScaledClock, SystemClock
from busd.config import BusdConfig
from busd.freshness import FreshnessMonitor
from busd.state import VehicleState
from busd.supervisor import Backoff, Component, Supervisor
from drivers.can.decoder import FrameDecoder, load_dbc


@dataclass
class Prepared:
    """Everything derived from the config before any device is opened."""

    config: BusdConfig
    can_decoder: FrameDecoder | None = None


def prepare(config: BusdConfig) -> Prepared:
    """Validate what the config points at; raises ConfigError naming the key."""
    prepared = Prepared(config)
    if config.can is not None:
        db = load_dbc(config.can.dbc, strict=config.can.dbc_strict)
        prepared.can_decoder = FrameDecoder(
            db, config.can.mapping, match_j1939_pgn=config.can.match_j1939_pgn
        )
    return prepared


def make_clock(config: BusdConfig) -> Clock:
    """Real time, unless a simulation config asks to run faster."""
    speed = config.simulators.speed
    return SystemClock() if speed == 1.0 else ScaledClock(speed=speed)


@dataclass
class Daemon:
    config: BusdConfig
    clock: Clock
    state: VehicleState
    supervisor: Supervisor
    components: list[Component] = field(default_factory=list)


def build_daemon(
    prepared: Prepared, clock: Clock, *, extra_components: list[Component] | None = None
) -> Daemon:
    config = prepared.config
    state = VehicleState(clock, freshness_overrides=config.freshness_s)
    # Order matters: sinks first, sources last, so that sources stop first and
    # sinks flush last on shutdown.
    components: list[Component] = [FreshnessMonitor(state=state, clock=clock)]
    components.extend(extra_components or [])
    if config.can is not None and prepared.can_decoder is not None:
        from drivers.can.reader import CanReader

        components.append(
            CanReader(config=config.can, decoder=prepared.can_decoder, state=state, clock=clock)
        )
    components.extend(_simulators(config, clock))
    supervisor = Supervisor(
        components,
        clock=clock,
        backoff=Backoff(
            initial_s=config.supervisor.backoff_initial_s, max_s=config.supervisor.backoff_max_s
        ),
        stop_timeout_s=config.supervisor.stop_timeout_s,
    )
    return Daemon(config, clock, state, supervisor, components)


def _simulators(config: BusdConfig, clock: Clock) -> list[Component]:
    """Simulators named by the config; imported only when asked for."""
    sims: list[Component] = []
    if config.simulators.can is not None:
        from simulators.can.simulator import CanSimulator

        sims.append(CanSimulator(config.simulators.can, clock))
    return sims
