"""The uplink's reconnect back-off against a real mosquitto, on a manual clock.

The uplink's own copy of the reconnect loop never reset its failure count
(a session never ends without an error, so its "reset on a clean return" never
ran): after a few refusals at start-up, every later drop, even after hours of
good service, waited as long as those refusals had grown to. The one runner
starts over after a healthy period.
"""

from __future__ import annotations

from pathlib import Path

from busd.clock import ManualClock
from busd.state import VehicleState
from busd.supervisor import ComponentHealth, Phase
from telemetry.uplink import Uplink
from telemetry.wiring import build_uplink
from tests.support.components import running
from tests.support.mosquitto import Mosquitto
from tests.support.tcp_proxy import TcpProxy
from tests.support.uplink_env import bus_config
from tests.support.wait import wait_until


def _phase(health: ComponentHealth) -> Phase:
    return health.phase  # read afresh: it changes under the test's feet


def _connected(uplink: Uplink) -> bool:
    return uplink.connected  # read afresh, as _phase


async def _step(clock: ManualClock, seconds: float) -> None:
    """Move the clock once something waits on it, then let what woke do its I/O and wait
    again (the runner in its back-off, or the state publisher while connected)."""
    await wait_until(lambda: clock.sleepers > 0, timeout=10, what="something to wait on the clock")
    await clock.advance(seconds)
    await wait_until(lambda: clock.sleepers > 0, timeout=10, what="the attempt to settle")


async def test_a_drop_after_a_healthy_period_is_retried_at_the_initial_delay(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    clock = ManualClock()
    async with TcpProxy(mosquitto.port) as link:
        config = bus_config(tmp_path, link.port, reconnect_initial_s=1.0, reconnect_max_s=64.0,
                            timeout_s=0.5)  # a cut link times out its CONNACK wait
        parts = build_uplink(config, state=VehicleState(clock), clock=clock)
        await parts.outbox.open()
        try:
            link.cut()  # no signal at start-up: the back-off grows
            async with running(parts.uplink, clock) as run:
                while run.ctx.counters.get("connect_failures", 0) < 5:
                    await _step(clock, 0.5)
                assert run.health.phase is Phase.DEGRADED
                link.restore()
                while not parts.uplink.connected:
                    await _step(clock, 0.5)
                for _ in range(13):  # 65 s of good service (the healthy period is 60 s)
                    await _step(clock, 5.0)
                assert parts.uplink.connected

                link.cut()  # the forest: the link drops...
                await wait_until(lambda: not parts.uplink.connected, timeout=10,
                                 what="the drop noticed")
                await wait_until(lambda: clock.sleepers > 0, timeout=10, what="back-off")
                link.restore()  # ...and is back at once
                dropped_at = clock.monotonic()
                while not _connected(parts.uplink):
                    await _step(clock, 0.1)
                # The first wait after a healthy session: 0.5-1 s, not the 16-32 s that
                # five start-up refusals had grown it to.
                assert clock.monotonic() - dropped_at <= 1.1
                assert _phase(run.health) is Phase.RUNNING
        finally:
            await parts.outbox.close()
