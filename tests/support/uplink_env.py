"""In-process uplink + office against a test mosquitto, for the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from busd.clock import SystemClock
from busd.config import BusdConfig
from busd.ports import CommandHandler
from busd.state import VehicleState
from busd.supervisor import Backoff, Supervisor
from office.archive import open_archive
from office.live import Office
from telemetry.mqtt import BrokerSettings
from telemetry.wiring import UplinkParts, build_uplink


def bus_config(tmp_path: Path, port: int, bus_id: str = "bus-01", **mqtt: Any) -> BusdConfig:
    return BusdConfig(
        bus_id=bus_id,
        data_dir=tmp_path / bus_id,
        mqtt={"host": "127.0.0.1", "port": port, "reconnect_initial_s": 0.05,
              "reconnect_max_s": 0.3, "timeout_s": 5, **mqtt},
        outbox={"commit_interval_s": 0.1},
        uplink={"state_interval_moving_s": 0.2, "state_interval_parked_s": 1.0,
                "telemetry_interval_moving_s": 0.1, "telemetry_interval_parked_s": 0.5},
    )


@contextlib.asynccontextmanager
async def running_bus(config: BusdConfig, *, handlers: dict[str, CommandHandler] | None = None,
                      ) -> AsyncIterator[tuple[UplinkParts, VehicleState]]:
    """``handlers``: registered before the uplink connects, as the daemon does (a command
    waiting in the bus's session arrives at once)."""
    clock = SystemClock()
    state = VehicleState(clock)
    parts = build_uplink(config, state=state, clock=clock)
    for name, handler in (handlers or {}).items():
        parts.commands.register(name, handler)
    supervisor = Supervisor(parts.components, clock=clock,
                            backoff=Backoff(initial_s=0.05, max_s=0.3))
    task = asyncio.create_task(supervisor.run(), name="test:supervisor")
    try:
        yield parts, state
    finally:
        supervisor.request_stop()
        async with asyncio.timeout(10):
            await task


async def archived_seqs(office: Office, bus: str, *, by_arrival: bool = False) -> list[int]:
    """The seqs the office archived for ``bus``, in seq order or in the order they arrived
    (by the time the office received them; a batch's records in their own order)."""
    records = await office.archive.records(bus)
    if by_arrival:
        records.sort(key=lambda r: (r.received, r.seq))
    return [r.seq for r in records]


@contextlib.asynccontextmanager
async def running_office(port: int, **settings: Any) -> AsyncIterator[Office]:
    archive = await open_archive("sqlite://").open()
    settings.setdefault("protocol", "3.1.1")
    office = Office(settings=BrokerSettings(host="127.0.0.1", port=port, **settings),
                    archive=archive, client_id=f"office-{id(archive)}")
    task = asyncio.create_task(office.run(), name="test:office")
    try:
        async with asyncio.timeout(10):
            await office.connected.wait()
        yield office
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await archive.close()
