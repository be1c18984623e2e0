"""telemetry.mqtt.publish: a cancellation that arrives as aiomqtt's publish completes is raised,
not swallowed (Python 3.11's asyncio.wait_for returns the result then, CPython gh-86296), so the
uplink's state and plan loops stop when their TaskGroup is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import aiomqtt

from telemetry import mqtt


class SwallowingClient:
    """A client whose publish behaves as aiomqtt's on Python 3.11 when the cancellation and the
    completion meet: it returns normally although its task was cancelled."""

    def __init__(self) -> None:
        self.published = 0
        self.entered = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, **options: Any) -> None:
        self.entered.set()
        # What 3.11's wait_for does when the awaited future is already done: no CancelledError.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        self.published += 1


async def test_a_publishing_loop_stops_when_cancelled_mid_publish() -> None:
    fake = SwallowingClient()
    client = cast(aiomqtt.Client, fake)

    async def state_loop() -> None:  # the shape of Uplink._publish_state
        while True:
            await mqtt.publish(client, "t", b"x", qos=0)
            fake.entered.clear()
            await asyncio.sleep(0)

    task = asyncio.create_task(state_loop())
    await asyncio.wait_for(fake.entered.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done, "the loop went on after its cancellation"
    assert task.cancelled()
    assert fake.published == 1
