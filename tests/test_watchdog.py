from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from busd.clock import ManualClock
from busd.supervisor import ComponentContext, ComponentHealth, Phase, Supervisor
from busd.watchdog import Notifier, SystemdWatchdog, stalled_parts


def test_stalled_parts() -> None:
    ok = ComponentHealth("ok", True, Phase.RUNNING, last_beat=95.0)
    old = ComponentHealth("hung", True, Phase.RUNNING, last_beat=80.0)
    down = ComponentHealth("down", True, Phase.BACKOFF, last_beat=99.0)
    optional = ComponentHealth("view", False, Phase.BACKOFF)
    health = {h.name: h for h in (ok, old, down, optional)}
    assert stalled_parts(health, now_mono=100.0, stall_limit_s=10.0) == ["hung", "down"]


class Beating:
    """A critical part that beats until told to hang."""

    name = "loop"
    critical = True

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.hang = asyncio.Event()

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while not self.hang.is_set():
            ctx.beat()
            await self.clock.sleep(1.0)
        await asyncio.Event().wait()  # hung: alive as a task, no more heartbeats


async def test_ready_then_fed_only_while_critical_loops_beat(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.setblocking(False)
    clock = ManualClock()
    part = Beating(clock)
    sup = Supervisor([part], clock=clock)
    watchdog = SystemdWatchdog(health=lambda: sup.health, clock=clock,
                               notifier=Notifier(str(path)), period_s=4.0, stall_limit_s=3.0)
    sup.add(watchdog)
    runner = asyncio.create_task(sup.run())
    loop = asyncio.get_running_loop()

    async def next_datagram() -> str:
        return (await asyncio.wait_for(loop.sock_recv(server, 4096), 2)).decode()

    try:
        assert (await next_datagram()).startswith("READY=1\nSTATUS=all parts running")
        for _ in range(3):
            await clock.advance(2.0)
            assert (await next_datagram()).startswith("WATCHDOG=1")
        part.hang.set()
        await clock.advance(1.0)
        feeds = watchdog.feeds
        for _ in range(4):
            await clock.advance(2.0)
        assert watchdog.withheld >= 2 and watchdog.feeds <= feeds + 1
        sup.request_stop()
        await asyncio.wait_for(runner, 5)
        datagrams = []
        while True:
            try:
                datagrams.append(server.recv(4096).decode())
            except BlockingIOError:
                break
        assert datagrams[-1] == "STOPPING=1"
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 5)
        server.close()
