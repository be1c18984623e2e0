"""Builds the uplink's parts from the config, for the composition root (busd/app.py).

Order for the supervisor: ``outbox`` first (it starts first and stops last, so
every other part can still record while stopping), then ``uplink``, then
``telemetry``; the logic components that emit events come after them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from busd.clock import Clock
from busd.config import BusdConfig
from busd.state import VehicleState
from busd.storage import Report
from busd.supervisor import Component
from telemetry.commands import CommandDispatcher
from telemetry.outbox import Outbox
from telemetry.sampler import TelemetrySampler
from telemetry.uplink import Uplink


@dataclass(frozen=True)
class UplinkParts:
    outbox: Outbox  # the EventSink for logic
    commands: CommandDispatcher  # the CommandRouter for logic
    uplink: Uplink  # the PlanPublisher for logic
    sampler: TelemetrySampler

    @property
    def components(self) -> list[Component]:
        return [self.outbox, self.uplink, self.sampler]


def build_uplink(
    config: BusdConfig, *, state: VehicleState, clock: Clock, outbox: Outbox | None = None,
    on_storage: Report | None = None, active_alerts: Callable[[], dict[str, str]] | None = None,
) -> UplinkParts:
    """Fails fast (ConfigError) on unreadable TLS or password files.

    ``outbox``: one made before (the composition root makes it first: the event
    forwarder and the alert board, which the uplink shows, depend on it);
    otherwise one is made here, reporting its storage faults to ``on_storage``.
    """
    if outbox is None:
        outbox = Outbox.from_config(config, clock=clock, on_storage=on_storage)
    commands = CommandDispatcher(
        bus_id=config.bus_id, clock=clock, store=outbox, resend=outbox,
        max_bytes=config.uplink.command_max_bytes,
    )
    uplink = Uplink.from_config(config, state=state, outbox=outbox, commands=commands,
                                clock=clock, active_alerts=active_alerts)
    sampler = TelemetrySampler(state=state, outbox=outbox, clock=clock, config=config.uplink,
                               motion=config.motion)
    return UplinkParts(outbox=outbox, commands=commands, uplink=uplink, sampler=sampler)
