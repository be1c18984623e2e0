"""The uplink and the office against a real mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from office.live import Office
from tests.support.mosquitto import Mosquitto
from tests.support.tcp_proxy import TcpProxy
from tests.support.uplink_env import archived_seqs, bus_config, running_bus, running_office
from tests.support.wait import wait_until

BUS = "bus-01"


def online(office: Office, bus: str = BUS) -> bool:
    view = office.fleet.get(bus)
    return view is not None and view.online is True


async def test_records_from_a_broker_outage_arrive_once_and_in_order(mosquitto: Mosquitto,
                                                                     tmp_path: Path) -> None:
    # The bus reaches the broker through a proxy the test can cut, so the test also decides
    # that the office is back before the bus: mosquitto 2.0.11 was seen not to deliver to a
    # persistent session restored from its store until the subscriber reconnected.
    async with TcpProxy(mosquitto.port) as link:
        config = bus_config(tmp_path, link.port)
        async with running_office(mosquitto.port) as office, running_bus(config) as (parts, _):
            await office.wait_until(lambda: online(office), timeout=10)
            for i in range(20):
                await parts.outbox.append("event", "tick", {"i": i})

            async def count(n: int) -> bool:
                return len(await archived_seqs(office, BUS)) >= n

            await office.wait_until(lambda: count(20), timeout=10)
            link.cut()
            await asyncio.to_thread(mosquitto.stop)
            await asyncio.wait_for(_until(lambda: not parts.uplink.connected), 10)
            for i in range(20, 600):
                await parts.outbox.append("event", "tick", {"i": i})
            assert parts.outbox.rows >= 580  # all waiting on disk
            await asyncio.to_thread(mosquitto.start)
            await asyncio.wait_for(office.connected.wait(), 10)
            link.restore()
            last = parts.outbox.last_seq
            await office.wait_until(lambda: count(last), timeout=20)
            # Nothing lost, nothing twice, oldest first.
            arrived = await archived_seqs(office, BUS, by_arrival=True)
            assert arrived[:last] == list(range(1, last + 1))
            assert await office.archive.gaps(BUS) == []
            ticks = await office.archive.records(BUS, kind="tick")
            assert [r.data["i"] for r in ticks] == list(range(600))
            assert all(r.topic == "event/tick" for r in ticks)
            # The backlog went in batches, not one message per record.
            assert parts.uplink.counters["messages"] < 300
            await asyncio.wait_for(_until(lambda: parts.outbox.rows == 0), 5)


async def _until(predicate: Callable[[], bool], step: float = 0.01) -> None:
    # For flags of the component that have no event to wait on; always under a timeout.
    await wait_until(predicate, timeout=60, interval=step)  # the callers set tighter ones


async def test_state_and_telemetry_carry_the_signals(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    async with running_office(mosquitto.port) as office, running_bus(config) as (_parts, state):
        state.update("battery.soc", 87.25, source="test")
        state.update("vehicle.speed", 42.0, source="test")
        await office.wait_until(
            lambda: office.fleet.get(BUS) and
            office.fleet[BUS].state.get("values", {}).get("battery.soc") == 87.25, timeout=10)
        st = office.fleet[BUS].state
        assert st["schema"] == "busd.state/1" and st["bus"] == BUS and st["moving"] is True
        assert st["ts"].endswith("Z")
        assert isinstance(st["outbox"]["unsent"], int)  # the backlog, as the bus counts it

        async def sampled() -> bool:
            recs = await office.archive.records(BUS, kind="sample")
            return any(r.data["values"].get("battery.soc") == 87.25 for r in recs)

        await office.wait_until(sampled, timeout=10)


async def test_clean_stop_publishes_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    async with running_office(mosquitto.port) as office:
        async with running_bus(config):
            await office.wait_until(lambda: online(office), timeout=10)
        await office.wait_until(lambda: office.fleet[BUS].online is False, timeout=10)
        assert office.fleet[BUS].status["reason"] == "shutdown"
