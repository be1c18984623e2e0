"""The daemon starts its parts in the documented order (busd/app.py, README "How it is
built"), each awaited ready before the next: a CAN replay's first frames reach the
driver, because the driver is open before the simulator sends."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import can
import pytest
from can.interfaces.virtual import VirtualBus

from busd.app import build_daemon, prepare
from busd.clock import ScaledClock
from busd.config import BusdConfig
from busd.config.devices import CanConfig
from busd.config.display import DisplayConfig
from busd.config.simulators import CanSimulatorConfig, SimulatorsConfig
from busd.supervisor import Phase
from tests.can_helpers import OWN_DBC, sim_mapping
from tests.conftest import FIXTURES
from tests.support.uplink_env import bus_config
from tests.support.wait import wait_until

_channels = itertools.count()


def replay_config(tmp_path: Path, log: Path) -> BusdConfig:
    channel = f"start-order-{next(_channels)}"
    return bus_config(tmp_path, 1).model_copy(update={
        "can": CanConfig(interface="virtual", channel=channel, dbc=OWN_DBC,
                         mapping=sim_mapping(), filter_frames=False),
        "simulators": SimulatorsConfig(can=CanSimulatorConfig(
            interface="virtual", channel=channel, dbc=OWN_DBC, replay=log, replay_loop=False)),
        "display": DisplayConfig(enabled=False),
    })


def test_the_documented_order(tmp_path: Path) -> None:
    daemon = build_daemon(prepare(replay_config(tmp_path, FIXTURES / "can_sim_drive.log")),
                          ScaledClock(speed=1.0))
    names = [c.name for c in daemon.components]
    daemon.store.close()
    before = [
        ("outbox", "uplink"),  # the uplink reads the outbox
        ("outbox", "events"),
        ("alerts.memory", "alerts.storage"),  # inherited before any alert rule runs
        ("alerts.memory", "lift-alert"),
        ("alerts.memory", "charger-alert"),
        ("can", "sim.can"),  # the driver listens before the simulator sends
    ]
    for first, then in before:
        assert names.index(first) < names.index(then), (first, then, names)


async def test_the_first_frames_of_a_replay_reach_the_driver(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real adapter takes a moment to open (a USB slcan, a socketcan bring-up). While the
    # simulator started first, the frames it sent in that moment went to nobody.
    real_init = VirtualBus.__init__

    def slow_open(self: VirtualBus, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(VirtualBus, "__init__", slow_open)
    log = FIXTURES / "can_sim_drive.log"
    recorded = sum(1 for _ in can.LogReader(str(log)))
    clock = ScaledClock(speed=20.0)  # the 40 s recording in 2 s
    daemon = build_daemon(prepare(replay_config(tmp_path, log)), clock)
    sup = daemon.supervisor
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: sup.health["sim.can"].phase is Phase.FINISHED, timeout=30,
                         what="the replay to end")
        await wait_until(lambda: sup.health["can"].counters.get("frames", 0) >= recorded,
                         timeout=5, what=f"all {recorded} frames at the driver")
        assert sup.health["can"].counters["frames"] == recorded
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 15)
        daemon.store.close()


async def test_a_broker_that_does_not_answer_does_not_hold_back_the_parts_after_the_uplink(
    tmp_path: Path,
) -> None:
    """No network in the forest: the uplink's connection hangs until its timeout (5 s here),
    but it counts as started (degraded, connecting), so the drivers open at once."""
    import socket

    from busd.clock import SystemClock
    from busd.state import VehicleState
    from busd.supervisor import Supervisor
    from telemetry.wiring import build_uplink
    from tests.test_supervisor import Gated

    silent = socket.socket()  # accepts TCP (the kernel's backlog) and never says CONNACK
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    clock = SystemClock()
    parts = build_uplink(bus_config(tmp_path, silent.getsockname()[1], timeout_s=2.0),
                         state=VehicleState(clock), clock=clock)
    log: list[str] = []
    sup = Supervisor([parts.outbox, parts.uplink, Gated("driver", log)], clock=clock,
                     ready_timeout_s=30)
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: "ready driver" in log, timeout=1.5,
                         what="the driver to start while the uplink still connects")
        assert sup.health["uplink"].phase is Phase.DEGRADED
        assert "connecting to broker" in sup.health["uplink"].reason
        # Refused from now on: the uplink is between attempts, not inside aiomqtt's connect
        # (whose cancellation leaves a task of aiomqtt's own behind), when it is stopped.
        silent.close()
        await wait_until(lambda: sup.health["uplink"].counters.get("connect_failures", 0) >= 2,
                         timeout=10)
    finally:
        silent.close()
        sup.request_stop()
        await asyncio.wait_for(runner, 10)
