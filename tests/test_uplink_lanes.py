"""The uplink's two lanes (telemetry/uplink.py): what the outbox held when the connection came
up goes on ``backlog/`` topics, a batch at a time, and a record made after it overtakes it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiomqtt

from telemetry.mqtt import BrokerSettings, make_client
from tests.support.mosquitto import Mosquitto
from tests.support.tcp_proxy import TcpProxy
from tests.support.uplink_env import bus_config, running_bus

BUS = "lv-01"
PREFIX = f"multimobile/v1/{BUS}"


def seqs(payload: bytes) -> list[int]:
    msg = json.loads(payload)
    return [r["seq"] for r in msg["records"]] if "records" in msg else [msg["seq"]]


Arrival = tuple[float, str, list[int]]  # (monotonic time, topic suffix, seqs)


async def backlog_then_live(mosquitto: Mosquitto, tmp_path: Path, records: int,
                            **uplink: object) -> tuple[list[Arrival], int, int]:
    """A bus that starts out of reach makes a backlog of ``records`` (an event made as it
    opens, then samples an hour old, older than the live window), then reaches the broker and
    makes one live record as soon as the first record arrives. Returns every record message
    in arrival order until the backlog's last and the live record are in, the backlog's last
    seq and the live record's seq."""
    arrivals: list[Arrival] = []
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    async with TcpProxy(mosquitto.port) as link, \
            make_client(settings, identifier="test-office",
                        protocol=aiomqtt.ProtocolVersion.V5) as office:
        await office.subscribe(f"{PREFIX}/#", qos=1)
        link.cut()
        config = bus_config(tmp_path, link.port, bus_id=BUS, protocol="5")
        config = config.model_copy(update={"uplink": config.uplink.model_copy(update=uplink)})
        async with running_bus(config) as (parts, _):
            await parts.outbox.append("event", "tick", {"first": True})  # once it is open
            an_hour_ago = time.time() - 3600
            for i in range(records - 1):
                parts.outbox.add_telemetry({"i": i}, full=True, ts=an_hour_ago + i)
            await parts.outbox.flush()
            backlog_last = parts.outbox.last_seq
            link.restore()
            live_seq = 0
            async with asyncio.timeout(30):
                async for message in office.messages:
                    suffix = str(message.topic).removeprefix(PREFIX + "/")
                    if suffix in ("status", "state", "plan"):
                        continue
                    assert isinstance(message.payload, bytes)
                    arrivals.append((time.monotonic(), suffix, seqs(message.payload)))
                    if not live_seq:  # the first of the backlog is out: make a live record
                        live_seq = await parts.outbox.append("event", "tick", {"live": True})
                    if any(backlog_last in s for _, _, s in arrivals) and any(
                            live_seq in s for _, _, s in arrivals):
                        break
    return arrivals, backlog_last, live_seq


async def test_a_live_record_overtakes_the_backlog_which_goes_on_backlog_topics(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # Small batches, one in flight: the 300 backlog records take 60 round trips.
    arrivals, backlog_last, live_seq = await backlog_then_live(
        mosquitto, tmp_path, 300, batch_max_records=5, inflight=1)
    order = [seq for _, _, s in arrivals for seq in s]
    assert sorted(order) == list(range(1, live_seq + 1))  # each once
    for _, suffix, s in arrivals:
        if s[0] <= backlog_last:
            assert suffix.startswith("backlog/"), (suffix, s)
        else:
            assert suffix == "event/tick", (suffix, s)
    # Live went first: it did not wait for the 300 records made before the connection.
    assert order.index(live_seq) < order.index(backlog_last)


async def test_the_backlog_goes_at_its_pace_and_a_live_record_does_not_wait_for_it(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # 600 backlog records at 200 a second in batches of 100: one each 0.5 s after the first
    # (itself within 0.5 s), 2.5 s in all. A live record made meanwhile goes at once.
    arrivals, backlog_last, live_seq = await backlog_then_live(
        mosquitto, tmp_path, 600, backlog_records_per_s=200, batch_max_records=100)
    backlog = [(t, s) for t, suffix, s in arrivals if suffix.startswith("backlog/")]
    assert sorted(seq for _, s in backlog for seq in s) == list(range(1, backlog_last + 1))
    assert backlog[-1][0] - backlog[0][0] >= 2.4  # 5 × 0.5 s, less the clock's grain
    live_at = next(t for t, _, s in arrivals if live_seq in s)
    assert live_at < backlog[-1][0]  # it did not wait for the paced backlog


async def test_a_few_backlog_records_wait_only_for_their_own_credit_not_a_whole_batchs(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # 10 backlog records at half a record a second in batches of 1000: a whole batch's credit
    # would take the first batch 2000 s less its random start credit (over 30 s but 1.5 % of
    # the time); their own credit, 20 s at most (and none 99 % of the time).
    start = time.monotonic()
    arrivals, backlog_last, _ = await backlog_then_live(
        mosquitto, tmp_path, 10, backlog_records_per_s=0.5, batch_max_records=1000)
    backlog = [s for _, suffix, s in arrivals if suffix.startswith("backlog/")]
    assert sorted(seq for s in backlog for seq in s) == list(range(1, backlog_last + 1))
    assert arrivals[-1][0] - start < 25.0


async def test_acknowledged_rows_awaiting_their_delete_do_not_hide_the_backlog_behind_them(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # A reconnect reads the backlog from the outbox's head, where acknowledged rows wait for
    # the next group delete (every 2000): more of them than a batch must not end the backlog
    # lane with a record still unsent behind them (it stayed in the outbox for good).
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    async with TcpProxy(mosquitto.port) as link, \
            make_client(settings, identifier="test-office",
                        protocol=aiomqtt.ProtocolVersion.V5) as office:
        await office.subscribe(f"{PREFIX}/backlog/#", qos=1)
        link.cut()
        config = bus_config(tmp_path, link.port, bus_id=BUS, protocol="5")
        config = config.model_copy(update={"uplink": config.uplink.model_copy(
            update={"batch_max_records": 5})})
        async with running_bus(config) as (parts, _):
            await parts.outbox.append("event", "tick", {"first": True})  # once it is open
            for i in range(99):
                parts.outbox.add_telemetry({"i": i}, full=True, ts=time.time() - 3600 + i)
            await parts.outbox.flush()
            last = parts.outbox.last_seq
            await parts.outbox.ack(range(1, last))  # all but the last, not yet deleted
            link.restore()
            async with asyncio.timeout(20):
                async for message in office.messages:
                    assert isinstance(message.payload, bytes)
                    if last in seqs(message.payload):
                        break
            assert str(message.topic) == f"{PREFIX}/backlog/telemetry"


async def test_records_made_just_before_the_connection_still_go_live(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # A short drop (a broker restart) must not send its few seconds of records behind a whole
    # backlog: those younger than LIVE_WINDOW_S at the connection are live.
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    arrived: dict[int, str] = {}
    async with TcpProxy(mosquitto.port) as link, \
            make_client(settings, identifier="test-office",
                        protocol=aiomqtt.ProtocolVersion.V5) as office:
        await office.subscribe(f"{PREFIX}/#", qos=1)
        link.cut()
        config = bus_config(tmp_path, link.port, bus_id=BUS, protocol="5")
        async with running_bus(config) as (parts, _):
            await parts.outbox.append("event", "tick", {"first": True})  # once it is open
            now = time.time()
            for i in range(10):  # an hour ago, then the last few seconds
                parts.outbox.add_telemetry({"i": i}, full=True,
                                           ts=now - 3600 + i if i < 5 else now - 10 + i)
            await parts.outbox.flush()
            last = parts.outbox.last_seq
            link.restore()
            async with asyncio.timeout(20):
                async for message in office.messages:
                    suffix = str(message.topic).removeprefix(PREFIX + "/")
                    if suffix in ("status", "state", "plan"):
                        continue
                    assert isinstance(message.payload, bytes)
                    arrived.update(dict.fromkeys(seqs(message.payload), suffix))
                    if len(arrived) == last:
                        break
    # seq 1 (the event, made now) comes before the hour-old samples: it is backlog too.
    assert {s for s, t in arrived.items() if t.startswith("backlog/")} == set(range(1, 7))
    assert {s for s, t in arrived.items() if t == "telemetry"} == set(range(7, last + 1))
