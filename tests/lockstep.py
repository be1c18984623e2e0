"""Frames through the production CAN path in lock-step with a ManualClock.

The test sends frames on a python-can ``virtual`` bus; the real
:class:`~drivers.can.reader.CanReader` (its thread, buffer, decoder) puts them
into the vehicle state; the clock moves only once the decoder has taken every
frame sent, so each value arrives at exactly its recorded time and a
20-minute trip replays in a few seconds without any sleep-and-hope.
"""

from __future__ import annotations

import asyncio
import itertools

import can
import pytest

from busd.clock import ManualClock
from busd.state import VehicleState
from busd.supervisor import Backoff, Component, Phase, Supervisor
from drivers.can import reader as reader_module
from drivers.can.decoder import FrameDecoder
from drivers.can.reader import CanReader
from tests.can_helpers import DC1_LIFT, OWN_DBC, own_db, sim_mapping
from tests.support.wait import wait_until

_channels = itertools.count()


class Lockstep:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, clock: ManualClock, state: VehicleState,
                 extra: list[Component] | None = None) -> None:
        # The reader's batch gathering saves CPU in real time; in lock-step it would
        # only add 20 ms per step, so it is turned off here.
        monkeypatch.setattr(reader_module, "_BATCH_GATHER_S", 0.0)
        from busd.config import CanConfig

        self.channel = f"lockstep-{next(_channels)}"
        config = CanConfig(interface="virtual", channel=self.channel, dbc=OWN_DBC,
                           mapping=[*sim_mapping(), DC1_LIFT], silence_timeout_s=30.0,
                           filter_frames=False)  # so the decoder counts every frame sent
        self.decoder = FrameDecoder(own_db(), config.mapping)
        self.clock = clock
        self.state = state
        self.reader = CanReader(config=config, decoder=self.decoder, state=state, clock=clock)
        self.supervisor = Supervisor([*(extra or []), self.reader], clock=clock,
                                     backoff=Backoff(initial_s=0.05, max_s=0.2))
        self.sent = 0
        self.tx: can.BusABC | None = None

    async def __aenter__(self) -> Lockstep:
        self.tx = can.Bus(interface="virtual", channel=self.channel)
        self._task = asyncio.create_task(self.supervisor.run(), name="lockstep-supervisor")
        await wait_until(
            lambda: self.supervisor.health[self.reader.name].phase is Phase.RUNNING,
            timeout=5, what="the CAN reader running", interval=0.001)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.supervisor.request_stop()
        await asyncio.wait_for(self._task, 10)
        assert self.tx is not None
        self.tx.shutdown()

    def send(self, frames: list[can.Message]) -> None:
        assert self.tx is not None
        for frame in frames:
            self.tx.send(frame)
        self.sent += len(frames)

    async def settle(self, sent: int | None = None, timeout: float = 5.0) -> None:
        """Wait until the reader has decoded every frame sent (by us, or ``sent`` by
        another sender such as the CAN simulator), and its consumers ran."""
        stats = self.decoder.stats
        target = self.sent if sent is None else sent
        await wait_until(lambda: stats.frames >= target, timeout=timeout,
                         what=f"{target} frames decoded", interval=0.0001)
        for _ in range(3):
            await asyncio.sleep(0)

    async def advance_to(self, t: float) -> None:
        if t > self.clock.monotonic():
            await self.clock.advance(t - self.clock.monotonic())
