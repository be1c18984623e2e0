"""``cmd/resend`` end to end: a real mosquitto, the real outbox and uplink, the office's archive,
and ``busd office resend`` as the staff run it.

The loss it repairs is the one a PUBACK cannot see: the broker took the records (so the bus
acknowledged them) while no office was subscribed to receive them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from busd.cli import main as busd_main
from office.archive import Archive, open_archive
from office.dispatch import command_statuses
from office.live import Office
from telemetry.mqtt import BrokerSettings, make_client
from telemetry.wiring import UplinkParts
from tests.support.mosquitto import Mosquitto
from tests.support.uplink_env import bus_config, running_bus, running_office
from tests.support.wait import wait_until

BUS = "bus-01"


@contextlib.asynccontextmanager
async def office_on(archive: Archive, port: int, client_id: str) -> AsyncIterator[Office]:
    """A live office writing into ``archive``; a new client id is a session of its own, so it
    gets nothing that was published before it connected."""
    office = Office(settings=BrokerSettings(host="127.0.0.1", port=port, protocol="3.1.1"),
                    archive=archive, client_id=client_id)
    task = asyncio.create_task(office.run(), name=f"test:{client_id}")
    try:
        async with asyncio.timeout(10):
            await office.connected.wait()
        yield office
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ticks(parts: UplinkParts, n: int) -> None:
    for _ in range(n):
        await parts.outbox.append("event", "tick", {"n": parts.outbox.last_seq + 1})


async def seqs(archive: Archive) -> list[int]:
    return [r.seq for r in await archive.records(BUS)]


async def test_records_the_broker_acknowledged_but_no_office_archived_are_recovered(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path}/archive.db"
    config = bus_config(tmp_path, mosquitto.port)
    async with open_archive(url) as archive, running_bus(config) as (parts, _):
        async with office_on(archive, mosquitto.port, "office-a") as office:
            await office.wait_until(lambda: office.fleet.get(BUS) and office.fleet[BUS].online,
                                    timeout=10)
            await ticks(parts, 5)
            top = parts.outbox.last_seq
            await office.wait_until(lambda: _has(archive, top), timeout=10)
        # Nobody subscribed: the broker PUBACKs these and drops them.
        lost_from = parts.outbox.last_seq + 1
        await ticks(parts, 8)
        lost_to = parts.outbox.last_seq
        await wait_until(lambda: parts.outbox.rows == 0, timeout=10, what="all acknowledged")
        async with office_on(archive, mosquitto.port, "office-b") as office:
            await ticks(parts, 3)
            top = parts.outbox.last_seq
            await office.wait_until(lambda: _has(archive, top), timeout=10)
            gaps = await archive.gaps(BUS)
            assert [(g.first, g.last) for g in gaps] == [(lost_from, lost_to)]

            capsys.readouterr()
            status = await asyncio.to_thread(busd_main, [
                "office", "resend", "--host", "127.0.0.1", "--port", str(mosquitto.port),
                "--archive", url, "--bus", BUS, "--timeout", "20", "--json"])
            assert status == 0
            answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                       if line.startswith('{"bus"')]
            assert len(answers) == 1
            answer = answers[0]
            assert (answer["first"], answer["last"]) == (lost_from, lost_to)
            assert answer["result"]["accepted"] is True
            assert answer["result"]["detail"]["resent"] == lost_to - lost_from + 1
            assert answer["result"]["detail"]["missing"] == []
            # The ask is followed in the archive's commands table like any command.
            [(sent, state)] = await command_statuses(archive, bus=BUS)
            assert (sent.sent.command, sent.sent.id, state) == ("resend", answer["id"],
                                                                "accepted")

            async def healed() -> bool:
                return await archive.gaps(BUS) == []

            await office.wait_until(healed, timeout=20)
            top = parts.outbox.last_seq
            await office.wait_until(lambda: _has(archive, top), timeout=10)
            assert await seqs(archive) == list(range(1, top + 1))  # each once
            ticks_back = [r for r in await archive.records(BUS, kind="tick")
                          if lost_from <= r.seq <= lost_to]
            # On their original topic, with their original content.
            assert all(r.topic == "event/tick" and r.data["n"] == r.seq for r in ticks_back)

            # Asked twice more: the bus sends them again, the archive keeps them once.
            resent = parts.uplink.counters["records_resent"]
            dups = office.fleet[BUS].duplicates
            for i in range(2):
                await office.send_command(BUS, "resend", {
                    "schema": "busd.cmd.resend/1", "bus": BUS, "ts": "2026-01-01T00:00:00.000Z",
                    "id": f"again-{i}", "first_seq": lost_from, "last_seq": lost_to})
            n = lost_to - lost_from + 1
            await office.wait_until(lambda: office.fleet[BUS].duplicates >= dups + n, timeout=20)
            # The bus counts a resend at its PUBACK, which may come after the office has it.
            await wait_until(lambda: parts.uplink.counters["records_resent"] >= resent + n,
                             timeout=10, what="the bus's count of records resent")
            top = parts.outbox.last_seq  # the answers to the two commands, so far
            await office.wait_until(lambda: _has(archive, top), timeout=10)
            # Each once and no hole (a command's last answer may still be on its way: more
            # than ``top`` is fine, read in one go).
            got = await seqs(archive)
            assert got == list(range(1, got[-1] + 1)) and got[-1] >= top

            # Nothing left to ask for.
            capsys.readouterr()
            status = await asyncio.to_thread(busd_main, [
                "office", "resend", "--host", "127.0.0.1", "--port", str(mosquitto.port),
                "--archive", url, "--bus", BUS, "--timeout", "5"])
            assert status == 0
            assert "no gaps: nothing to ask for" in capsys.readouterr().out


async def _has(archive: Archive, top: int) -> bool:
    return top in await seqs(archive)


async def test_hostile_resends_are_answered_with_the_reason_and_the_uplink_goes_on(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    async with running_office(mosquitto.port) as office, running_bus(config) as (parts, _):
        await office.wait_until(lambda: office.fleet.get(BUS) and office.fleet[BUS].online,
                                timeout=10)
        await ticks(parts, 3)
        await wait_until(lambda: parts.outbox.rows == 0, timeout=10, what="all acknowledged")

        def cmd(id_: str, first: object, last: object) -> dict[str, object]:
            return {"schema": "busd.cmd.resend/1", "bus": BUS, "ts": "2026-01-01T00:00:00.000Z",
                    "id": id_, "first_seq": first, "last_seq": last}

        sends: list[bytes | dict[str, object]] = [
            cmd("backwards", 9, 2), cmd("huge", 1, 10**9), cmd("negative", -5, 2),
            b'{"schema":"busd.cmd.resend/1","bus":"bus-01","id":"noise","first_seq":[1]}',
            cmd("gone", 10**6, 10**6 + 10), cmd("fine", 1, 3),
        ]
        for payload in sends:
            await office.send_command(BUS, "resend", payload)

        def answers() -> dict[str, dict[str, Any]]:
            return {r["id"]: r for r in office.fleet[BUS].cmd_results if r.get("id")}

        await office.wait_until(lambda: len(answers()) >= len(sends), timeout=20)
        got = answers()
        assert "first_seq 9 is above last_seq 2" in got["backwards"]["reason"]
        assert "the range holds 1000000000 records" in got["huge"]["reason"]
        assert "first_seq: Input should be greater than or equal to 1" in \
            got["negative"]["reason"]
        assert got["noise"]["reason"].startswith("invalid command: ")
        assert got["gone"]["reason"].startswith(
            f"seq {10**6}-{10**6 + 10} was never made: this bus's last record is")
        assert got["gone"]["detail"]["missing"] == [[10**6, 10**6 + 10]]
        assert [r["accepted"] for r in got.values()] == [False] * 5 + [True]
        assert got["fine"]["detail"]["resent"] == 3
        # Still connected and still sending: a new record arrives.
        await ticks(parts, 1)
        top = parts.outbox.last_seq
        await office.wait_until(lambda: _has(office.archive, top), timeout=10)
        assert parts.uplink.connected


async def test_a_resend_does_not_hold_live_records_back(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    base = bus_config(tmp_path, mosquitto.port)
    # Small batches, so the resend is many messages and a live record can come between them.
    config = base.model_copy(update={"uplink": base.uplink.model_copy(
        update={"batch_max_records": 10})})
    async with running_bus(config) as (parts, _):
        await wait_until(lambda: parts.uplink.connected, timeout=10, what="connected")
        await ticks(parts, 2000)
        await wait_until(lambda: parts.outbox.rows == 0, timeout=30, what="all acknowledged")
        arrived: list[tuple[str, int]] = []  # (topic, last seq of the message)
        listener = make_client(BrokerSettings(host="127.0.0.1", port=mosquitto.port),
                               identifier="listener", protocol=aiomqtt.ProtocolVersion.V311)
        async with listener:
            await listener.subscribe(f"multimobile/v1/{BUS}/event/#", qos=1)
            await listener.subscribe(f"multimobile/v1/{BUS}/backlog/event/#", qos=1)  # resends
            await parts.outbox.request_resend(1, 2000)
            live = await parts.outbox.append("event", "live", {})

            async def listen() -> None:
                async for message in listener.messages:
                    body = json.loads(message.payload)
                    records = body.get("records") or [body]
                    arrived.append((str(message.topic), records[-1]["seq"]))
                    if sum(1 for _, s in arrived if s == 2000 or s == live) == 2:
                        return

            async with asyncio.timeout(30):
                await listen()
        order = [seq for _, seq in arrived]
        # The live record went out while the resend was still going, not after all of it.
        assert order.index(live) < order.index(2000)
        await wait_until(lambda: parts.uplink.counters["records_resent"] == 2000, timeout=10,
                         what="every resent record acknowledged")
