"""``busd office ingest``: workers that share the buses' records through a real mosquitto, into
both archive back ends; PUBACK only after the batch is committed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import aiomqtt
import pytest

from busd.clock import SystemClock
from office.archive import Archive, open_archive
from office.archive.models import ArchivedRecord, InsertResult
from office.ingest import IngestOptions, IngestWorker
from office.records import Rejected
from telemetry.mqtt import BrokerSettings, make_client
from tests.support.mosquitto import REPO, Mosquitto
from tests.support.tcp_proxy import TcpProxy
from tests.support.uplink_env import bus_config, running_bus

V5 = aiomqtt.ProtocolVersion.V5
TS = "2026-03-10T12:00:00.000Z"


def record(bus: str, seq: int, *, named: str | None = None) -> bytes:
    return json.dumps({"bus": named or bus, "ts": TS, "schema": "busd.event/1", "seq": seq,
                       "kind": "tick", "data": {"i": seq}}).encode()


def batch(bus: str, seqs: range, *, named: str | None = None) -> bytes:
    return json.dumps({"bus": named or bus, "ts": TS, "schema": "busd.batch/1", "records": [
        {"ts": TS, "schema": "busd.event/1", "seq": s, "kind": "tick", "data": {"i": s}}
        for s in seqs]}).encode()


async def eventually(predicate: Callable[[], Awaitable[bool]], *,
                     timeout: float,
                     what: str) -> None:
    """Poll an async condition (the archive is another process's too) until it holds."""
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():  # noqa: ASYNC110 - a database, not an event
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


@pytest.fixture
async def archive(archive_url: str) -> AsyncIterator[Archive]:
    async with open_archive(archive_url) as opened:
        yield opened


@contextlib.asynccontextmanager
async def running_worker(port: int, archive_url: str, client_id: str,
                         **options: object) -> AsyncIterator[IngestWorker]:
    """An in-process worker with its own archive connection, as a separate process has."""
    async with open_archive(archive_url) as own:
        worker = IngestWorker(settings=BrokerSettings(host="127.0.0.1", port=port), archive=own,
                              options=IngestOptions(client_id=client_id, **options),  # type: ignore[arg-type]
                              clock=SystemClock())
        task = asyncio.create_task(worker.run(), name=f"test:{client_id}")
        try:
            async with asyncio.timeout(10):
                await worker.connected.wait()
            yield worker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def publisher(port: int) -> AsyncIterator[aiomqtt.Client]:
    settings = BrokerSettings(host="127.0.0.1", port=port)
    async with make_client(settings, identifier="test-bus", protocol=V5) as client:
        yield client


def ingest_process(port: int, archive_url: str, client_id: str,
                   *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "busd.cli", "office", "ingest", "--host", "127.0.0.1",
         "--port", str(port), "--archive", archive_url, "--client-id", client_id, *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def until_line(proc: subprocess.Popen[bytes], needle: bytes, *,
                     timeout: float, also: bytes = b"") -> None:
    async def read() -> None:
        assert proc.stdout is not None
        while True:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, f"the worker exited before {needle!r}"
            if needle in line and also in line:
                return

    await asyncio.wait_for(read(), timeout)


async def test_two_workers_share_the_load_and_the_archive_has_every_record_once(
        mosquitto: Mosquitto, archive_url: str, archive: Archive) -> None:
    async with running_worker(mosquitto.port, archive_url, "ingest-a") as a, \
            running_worker(mosquitto.port, archive_url, "ingest-b") as b, \
            publisher(mosquitto.port) as bus:
        for seq in range(1, 101):
            for name in ("lv-01", "lv-02"):
                await bus.publish(f"multimobile/v1/{name}/event/tick", record(name, seq), qos=1)
        await bus.publish("multimobile/v1/lv-03/event/tick", batch("lv-03", range(1, 51)), qos=1)

        async def all_there() -> bool:
            return await archive.count() == 250

        await eventually(all_there, timeout=20, what="250 records archived")
    # Each worker got a share; together every record, once.
    assert a.counters.messages > 0 and b.counters.messages > 0
    assert a.counters.messages + b.counters.messages == 201
    assert a.counters.inserted + b.counters.inserted == 250
    assert a.counters.duplicates + b.counters.duplicates == 0
    # "tick" is no catalogue event: archived, counted, not derived.
    assert a.counters.unfit + b.counters.unfit == 250
    assert await archive.gaps() == []
    assert [r.seq for r in await archive.records("lv-03")] == list(range(1, 51))
    assert await archive.buses() == ["lv-01", "lv-02", "lv-03"]


async def test_a_batch_is_bounded_by_records_not_by_messages(
        mosquitto: Mosquitto, postgres_url: str) -> None:
    # A bus's batch message carries many records: three of 4 make 12 >= 10, so the batch
    # closes at once; counted in messages (3 < 10) it would wait out the hour's linger.
    async with open_archive(postgres_url) as archive, \
            running_worker(mosquitto.port, postgres_url, "ingest-r", batch_max_records=10,
                           batch_linger_s=3600.0) as worker, \
            publisher(mosquitto.port) as bus:
        for first in (1, 5, 9):
            await bus.publish("multimobile/v1/lv-01/event/tick",
                              batch("lv-01", range(first, first + 4)), qos=1)

        async def committed() -> bool:
            return await archive.count() == 12

        await eventually(committed, timeout=20, what="the 12 records committed")
        assert (worker.counters.batches, worker.counters.messages) == (1, 3)


async def test_a_live_batch_waits_a_twentieth_of_a_second_at_most_whatever_the_linger(
        mosquitto: Mosquitto, postgres_url: str) -> None:
    # The backlog lane waits out its linger to fill a batch; the live lane commits a record
    # within LIVE_LINGER_MAX_S of taking it (here the linger asked for is an hour).
    assert IngestOptions(client_id="x", lane="live", batch_linger_s=0.01).linger_s == 0.01
    assert IngestOptions(client_id="x", lane="backlog", batch_linger_s=3600).linger_s == 3600
    async with open_archive(postgres_url) as archive, \
            running_worker(mosquitto.port, postgres_url, "ingest-live", lane="live",
                           batch_linger_s=3600.0) as worker, \
            publisher(mosquitto.port) as bus:
        await bus.publish("multimobile/v1/lv-01/event/tick", batch("lv-01", range(1, 4)), qos=1)

        async def committed() -> bool:
            return await archive.count() == 3

        await eventually(committed, timeout=20, what="the live records committed")
        assert worker.counters.batches == 1


async def test_a_worker_never_drops_a_message_it_received() -> None:
    # aiomqtt discards what arrives while its queue is full (never acknowledged, so back only
    # with the next connection); mosquitto 2.0.11 sends beyond Receive Maximum.
    worker = IngestWorker(settings=BrokerSettings(host="127.0.0.1", port=1),
                          archive=None,  # type: ignore[arg-type]  # never reached
                          options=IngestOptions(client_id="x", receive_maximum=10))
    assert worker._client()._queue.maxsize == 0  # unbounded


@pytest.mark.parametrize("lanes", ["both", "all"])
async def test_the_ingest_command_reads_live_and_backlog_records(
        mosquitto: Mosquitto, postgres_url: str, lanes: str) -> None:
    # both: two sessions, ingest-l and ingest-l-backlog; all: one (a broker that binds client
    # ids to usernames holds one connection a username).
    worker = ingest_process(mosquitto.port, postgres_url, "ingest-l", "--batch-linger", "0.05",
                            "--lanes", lanes)
    try:
        await until_line(worker, b"ingest_connected", also=b"live" if lanes == "both" else
                         b"all", timeout=20)

        async def backlog_subscribed() -> bool:  # its last filter, in the broker's log
            return "+/backlog/cmd/result" in mosquitto.log_text()

        await eventually(backlog_subscribed, timeout=20, what="the backlog lane subscribed")
        async with open_archive(postgres_url) as archive, publisher(mosquitto.port) as bus:
            await bus.publish("multimobile/v1/lv-01/backlog/telemetry",
                              batch("lv-01", range(1, 4)), qos=1)
            await bus.publish("multimobile/v1/lv-01/event/tick", record("lv-01", 4), qos=1)

            async def both() -> bool:
                return await archive.count() == 4

            await eventually(both, timeout=20, what="live and backlog records archived")
            assert [r.topic for r in await archive.records("lv-01")] == \
                ["telemetry"] * 3 + ["event/tick"]
        clients = mosquitto.log_text()
        assert "ingest-l " in clients
        assert ("ingest-l-backlog" in clients) == (lanes == "both")
    finally:
        worker.terminate()
        assert worker.wait(timeout=10) == 0


async def test_a_worker_killed_mid_batch_loses_nothing(
        mosquitto: Mosquitto, archive_url: str, archive: Archive) -> None:
    # Batches of 30 and a linger of an hour: 30 records are committed, the next 20 wait in the
    # worker, received but neither committed nor acknowledged, when it is SIGKILLed. (The
    # backlog lane: the live lane waits LIVE_LINGER_MAX_S at most.)
    worker = ingest_process(mosquitto.port, archive_url, "ingest-k", "--batch-max", "30",
                            "--batch-linger", "3600")
    try:
        # The backlog lane's connection: the records below go on the backlog topics.
        await until_line(worker, b"ingest_connected", also=b"backlog", timeout=20)
        async with publisher(mosquitto.port) as bus:
            for seq in range(1, 51):
                await bus.publish("multimobile/v1/lv-01/backlog/event/tick",
                                  record("lv-01", seq), qos=1)

        async def first_batch() -> bool:
            return await archive.count() == 30

        await eventually(first_batch, timeout=20, what="the first batch committed")

        def delivered() -> int:
            return mosquitto.log_text().count("Sending PUBLISH to ingest-k")

        async def all_delivered() -> bool:
            return delivered() >= 50

        await eventually(all_delivered, timeout=20, what="the broker sent all 50")
        assert await archive.count() == 30  # the other 20 are in the worker's open batch
        worker.kill()
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    # systemd restarts it (same client id, so the same session): the broker sends again
    # what the killed worker had not acknowledged.
    again = ingest_process(mosquitto.port, archive_url, "ingest-k", "--batch-linger", "0.05")
    try:
        async def all_archived() -> bool:
            return await archive.count() == 50

        await eventually(all_archived, timeout=20, what="all 50 archived after the restart")
    finally:
        again.terminate()
        assert again.wait(timeout=10) == 0
    assert [r.seq for r in await archive.records("lv-01")] == list(range(1, 51))
    assert await archive.gaps() == []


async def test_a_broker_restart_loses_nothing(
        tmp_path: Path, mosquitto: Mosquitto, archive_url: str, archive: Archive) -> None:
    """What the broker holds for the workers' sessions survives its restart: what a worker had
    received but not acknowledged when it went away, and its share sent on meanwhile.

    The bus reaches the broker through a proxy that is cut while the broker restarts, so the
    workers are back before the bus: mosquitto 2.0.11 does not queue messages for a session it
    restored from its store until that client has reconnected (README, "Deployment")."""
    async with TcpProxy(mosquitto.port) as link:
        config = bus_config(tmp_path, link.port, bus_id="lv-01", protocol="5")
        async with running_worker(mosquitto.port, archive_url, "ingest-a") as a, \
                running_bus(config) as (parts, _):
            for i in range(100):
                await parts.outbox.append("event", "tick", {"i": i})

            async def first_hundred() -> bool:
                return await archive.count("lv-01") == 100

            await eventually(first_hundred, timeout=20, what="the first 100 archived")
            # ingest-b joins, holds what it gets in an open batch (linger of an hour), and goes
            # away without acknowledging it: its session keeps it, and its share from then on.
            async with running_worker(mosquitto.port, archive_url, "ingest-b",
                                      batch_linger_s=3600.0):
                for i in range(100, 200):
                    await parts.outbox.append("event", "tick", {"i": i})

                async def the_broker_took_all() -> bool:
                    sent_b = mosquitto.log_text().count("Sending PUBLISH to ingest-b")
                    return parts.outbox.rows == 0 and sent_b > 0

                await eventually(the_broker_took_all, timeout=20, what="ingest-b's share sent")
            assert await archive.count("lv-01") < 200
            link.cut()
            await asyncio.to_thread(mosquitto.restart)
            async with running_worker(mosquitto.port, archive_url, "ingest-b") as b:
                async def both_back() -> bool:
                    return a.connected.is_set() and b.connected.is_set()

                await eventually(both_back, timeout=20, what="both workers reconnected")
                link.restore()
                for i in range(200, 300):
                    await parts.outbox.append("event", "tick", {"i": i})

                async def all_archived() -> bool:
                    return await archive.count("lv-01") >= 300

                await eventually(all_archived, timeout=30, what="all 300 archived")
            assert b.counters.inserted > 0  # what it held before the restart, sent again
    ticks = [r.data["i"] for r in await archive.records("lv-01", kind="tick")]
    assert ticks == list(range(300))
    assert await archive.gaps() == []


async def test_a_record_whose_payload_names_another_bus_is_rejected_and_counted(
        mosquitto: Mosquitto, archive_url: str, archive: Archive) -> None:
    async with running_worker(mosquitto.port, archive_url, "ingest-a") as worker, \
            publisher(mosquitto.port) as bus:
        # lv-01's credentials, lv-02's name: neither a single record nor a batch gets in.
        await bus.publish("multimobile/v1/lv-01/event/tick", record("lv-01", 1, named="lv-02"),
                          qos=1)
        await bus.publish("multimobile/v1/lv-01/event/tick",
                          batch("lv-01", range(2, 5), named="lv-02"), qos=1)
        await bus.publish("multimobile/v1/lv-01/event/tick", b"{not json", qos=1)
        await bus.publish("multimobile/v1/lv-01/event/tick", record("lv-01", 7), qos=1)

        async def the_good_one() -> bool:
            return await archive.count() == 1

        await eventually(the_good_one, timeout=20, what="the genuine record")
        await eventually(lambda: _settled(worker, 4), timeout=10, what="all four handled")
    assert worker.counters.rejected == {Rejected.BUS_MISMATCH: 4, Rejected.MALFORMED: 1}
    assert [r.seq for r in await archive.records("lv-01")] == [7]
    assert await archive.records("lv-02") == []


async def _settled(worker: IngestWorker, messages: int) -> bool:
    return worker.counters.messages >= messages


@contextlib.asynccontextmanager
async def refused_database(postgres_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """The database behind a proxy that refuses connections (a server still starting) until
    the test restores it; yields the proxy and the database's URL through it."""
    pg_port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    async with TcpProxy(pg_port) as database:
        database.cut()
        yield database, postgres_url.replace(f":{pg_port}/", f":{database.port}/")


async def test_a_worker_started_before_its_database_waits_for_it(
        mosquitto: Mosquitto, postgres_url: str) -> None:
    # A reboot of both, a failover: the worker waits instead of exiting, so systemd's start
    # limit is not used up and it need not be started by hand once the database is back.
    async with refused_database(postgres_url) as (database, late_url):
        worker = ingest_process(mosquitto.port, late_url, "ingest-w", "--batch-linger", "0.05")
        try:
            await until_line(worker, b"archive_unreachable", timeout=30)
            await until_line(worker, b"archive_unreachable", timeout=30)  # and again
            assert worker.poll() is None
            database.restore()
            await until_line(worker, b"ingest_connected", timeout=30)
            async with open_archive(postgres_url) as archive, publisher(mosquitto.port) as bus:
                await bus.publish("multimobile/v1/lv-01/event/tick", record("lv-01", 1), qos=1)

                async def archived() -> bool:
                    return await archive.count() == 1

                await eventually(archived, timeout=20, what="the record archived")
        finally:
            worker.terminate()
            assert worker.wait(timeout=10) == 0


async def test_a_worker_waiting_for_its_database_stops_at_once_when_told(
        mosquitto: Mosquitto, postgres_url: str) -> None:
    async with refused_database(postgres_url) as (_, late_url):
        worker = ingest_process(mosquitto.port, late_url, "ingest-s")
        try:
            await until_line(worker, b"archive_unreachable", timeout=30)
        finally:
            worker.terminate()
            assert await asyncio.to_thread(worker.wait, 10) == 0


async def test_a_worker_with_a_long_queue_reconnects_at_once_after_a_broker_restart(
        mosquitto: Mosquitto, archive_url: str, archive: Archive,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A backlog worker holds many batch messages it has not committed yet. When the broker
    # restarts, none of them can be acknowledged any more: the worker must reconnect now, not
    # after working through them (mosquitto 2.0.11 queues nothing for a restored session
    # until its client is back). Here each batch takes 0.4 s: 30 queued are 12 s of work.
    async with open_archive(archive_url) as own:
        slow = asyncio.Event()
        slow.set()
        insert = own.insert_batch

        async def slow_insert(records: Sequence[ArchivedRecord]) -> InsertResult:
            if slow.is_set():
                await asyncio.sleep(0.4)
            return await insert(records)

        monkeypatch.setattr(own, "insert_batch", slow_insert)
        worker = IngestWorker(settings=BrokerSettings(host="127.0.0.1", port=mosquitto.port),
                              archive=own, clock=SystemClock(),
                              options=IngestOptions(client_id="ingest-q", lane="backlog",
                                                    batch_max_records=1, batch_linger_s=0))
        task = asyncio.create_task(worker.run(), name="test:ingest-q")
        try:
            async with asyncio.timeout(10):
                await worker.connected.wait()
            async with publisher(mosquitto.port) as bus:
                for seq in range(1, 31):
                    await bus.publish("multimobile/v1/lv-01/backlog/event/tick",
                                      record("lv-01", seq), qos=1)

            async def all_delivered() -> bool:
                return mosquitto.log_text().count("Sending PUBLISH to ingest-q") >= 30

            await eventually(all_delivered, timeout=20, what="the broker sent all 30")
            assert await archive.count() < 30  # most wait in the worker's queue
            await asyncio.to_thread(mosquitto.restart)

            async def connected_again() -> bool:
                # The log goes on across the restart: what follows its last start.
                return "as ingest-q " in mosquitto.log_text().split("Config loaded")[-1]

            # Well before the 12 s the queue would take.
            await eventually(connected_again, timeout=4, what="the worker back on the broker")
            slow.clear()

            async def all_archived() -> bool:
                return await archive.count() == 30

            await eventually(all_archived, timeout=20, what="all 30 archived")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [r.seq for r in await archive.records("lv-01")] == list(range(1, 31))
