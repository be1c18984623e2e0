"""Bug 6(c): a plan published while the previous retained plan awaits its PUBACK goes out too."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from busd.event_catalog import Item, PlanDocument
from tests.support.mosquitto import free_port
from tests.support.uplink_env import bus_config, running_bus
from tests.support.wait import wait_until


class HeldPublisher:
    """An MQTT client whose first publish hangs until released, as a slow PUBACK does."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.first_in_flight = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        if not self.sent and not self.first_in_flight.is_set():
            self.first_in_flight.set()
            await self.release.wait()
        self.sent.append(json.loads(payload))


def document(version: int) -> PlanDocument:
    """A plan document told apart by its one itinerary entry."""
    return PlanDocument(plan=None, itinerary=[Item(kind="stop", id=f"v{version}", minutes=1)],
                        done=[], at=None, projection=None, pending=None)


def plan_version(message: dict[str, Any]) -> int:
    return int(message["itinerary"][0]["id"].removeprefix("v"))


async def test_a_plan_published_mid_send_is_sent_next(tmp_path: Path) -> None:
    # No broker on that port: the uplink retries in the background, the outbox is open.
    async with running_bus(bus_config(tmp_path, free_port())) as (parts, _):
        uplink = parts.uplink
        client = HeldPublisher()
        await uplink.publish_plan(document(1))
        task = asyncio.create_task(uplink._publish_plan(client))  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(5):
                await client.first_in_flight.wait()
            await uplink.publish_plan(document(2))  # while version 1 awaits its PUBACK
            await uplink.publish_plan(document(3))  # latest wins: 2 may be skipped
            client.release.set()
            await wait_until(lambda: bool(client.sent) and plan_version(client.sent[-1]) == 3,
                             timeout=5, what="the latest plan sent after the held one")
            assert plan_version(client.sent[0]) == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
