"""Test-only launcher: VehicleState + the uplink's components under the Supervisor.

Feeds synthetic signal updates and an event every ``--event-every`` seconds,
and runs until SIGTERM (clean stop) or SIGKILL. To be replaced by ``busd run``
once the composition root exists.

    python -m tests.support.uplink_daemon CONFIG.toml
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys

from busd import signals as sig
from busd.clock import SystemClock
from busd.config import load_config
from busd.logs import configure_logging
from busd.state import VehicleState
from busd.supervisor import Backoff, Supervisor
from telemetry.wiring import build_uplink


async def feed(state: VehicleState, outbox, event_every: float) -> None:
    for i in itertools.count():
        state.update(sig.BATTERY_SOC, 95.0 - i * 0.001, source="sim")
        state.update(sig.VEHICLE_SPEED, 40.0 + (i % 10), source="sim")
        state.update(sig.GPS_LAT, 56.3543 + i * 1e-5, source="sim")
        state.update(sig.GPS_LON, 26.1758, source="sim")
        await outbox.append("event", "tick", {"i": i})
        await asyncio.sleep(event_every)


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--event-every", type=float, default=0.01)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    configure_logging("info", "json")
    clock = SystemClock()
    state = VehicleState(clock)
    parts = build_uplink(config, state=state, clock=clock)

    class Feeder:
        name = "feeder"
        critical = False

        async def run(self, ctx) -> None:
            ctx.ready()
            await feed(state, parts.outbox, args.event_every)

    supervisor = Supervisor([*parts.components, Feeder()], clock=clock,
                            backoff=Backoff(initial_s=0.1, max_s=1.0))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, supervisor.request_stop)
    loop.add_signal_handler(signal.SIGINT, supervisor.request_stop)
    await supervisor.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
