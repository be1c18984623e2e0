"""The shipped broker config (config/mosquitto/): a real mosquitto started with that very file.

Bus ``lv-01`` publishes only under its own prefix and reads only its own commands; the office's
users read everything and the office sends commands; no bus takes over another's connection by
its client id; ingest workers authenticate over TLS and archive through the shared subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from office.archive import open_archive
from office.ingest import IngestOptions, IngestWorker
from telemetry.mqtt import BrokerSettings, make_client
from tests.support.mosquitto import REPO, Mosquitto, TlsFiles, free_port

V5 = aiomqtt.ProtocolVersion.V5
SHIPPED = REPO / "config" / "mosquitto"
PASSWORDS = {"office": "office-pw", "ingest-1": "ingest-pw", "lv-01": "pw-01",
             "lv-02": "pw-02"}
TS = "2026-03-10T12:00:00.000Z"


def render(workdir: Path, port: int, pki: TlsFiles) -> str:
    """The shipped mosquitto.conf with its paths in the test's directory and a free port."""
    text = (SHIPPED / "mosquitto.conf").read_text()
    for old, new in (("/etc/mosquitto/busd/passwd", workdir / "passwd"),
                     ("/etc/mosquitto/busd/acl", workdir / "acl"),
                     ("/etc/mosquitto/busd/ca.crt", pki.ca),
                     ("/etc/mosquitto/busd/server.crt", pki.server_cert),
                     ("/etc/mosquitto/busd/server.key", pki.server_key),
                     ("/var/lib/mosquitto/", f"{workdir / 'data'}/"),
                     ("listener 8883", f"listener {port} 127.0.0.1")):
        assert str(old) in text, f"the shipped config no longer has {old}"
        text = text.replace(str(old), str(new))
    # Run as the tests' user, log to a file the tests read.
    head = f"user {getpass.getuser()}\nlog_dest file {workdir / 'mosquitto.log'}\nlog_type all\n"
    return head + text


@pytest.fixture
def broker(tmp_path: Path, test_pki: TlsFiles) -> Iterator[Mosquitto]:
    workdir = tmp_path / "mq"
    port = free_port()
    mq = Mosquitto(workdir, acl=(SHIPPED / "acl").read_text(), passwords=PASSWORDS,
                   config_text=render(workdir, port, test_pki), port=port)
    mq.start()
    yield mq
    mq.stop()


def login(broker: Mosquitto, pki: TlsFiles, user: str | None, *,
          password: str | None = None) -> BrokerSettings:
    return BrokerSettings(host="localhost", port=broker.port, username=user,
                          password=password or (PASSWORDS.get(user) if user else None),
                          tls=True, ca_file=pki.ca)


@contextlib.asynccontextmanager
async def client(broker: Mosquitto, pki: TlsFiles, user: str,
                 identifier: str | None = None) -> AsyncIterator[aiomqtt.Client]:
    async with make_client(login(broker, pki, user), identifier=identifier or f"{user}-test",
                           protocol=V5) as c:
        yield c


def record(bus: str, seq: int) -> bytes:
    return json.dumps({"bus": bus, "ts": TS, "schema": "busd.event/1", "seq": seq,
                       "kind": "tick", "data": {}}).encode()


async def received_until(c: aiomqtt.Client, marker: str) -> list[str]:
    """Topics received, up to and including ``marker``: one connection keeps order, so anything
    let through before the marker was published would have arrived before it."""
    topics: list[str] = []
    async with asyncio.timeout(10):
        async for message in c.messages:
            topics.append(str(message.topic))
            if str(message.topic) == marker:
                return topics
    raise AssertionError("unreachable")


async def test_a_bus_publishes_only_under_its_own_prefix(broker: Mosquitto,
                                                         test_pki: TlsFiles) -> None:
    async with client(broker, test_pki, "office") as office, \
            client(broker, test_pki, "lv-01") as bus:
        await office.subscribe("multimobile/v1/#", qos=1)
        await bus.publish("multimobile/v1/lv-02/event/tick", record("lv-02", 1), qos=1)
        await bus.publish("multimobile/v1/lv-02/status", b"{}", qos=1, retain=True)
        await bus.publish("multimobile/v1/lv-02/cmd/plan", b"{}", qos=1)  # no commands either
        await bus.publish("multimobile/v1/lv-01/cmd/plan", b"{}", qos=1)  # not even its own
        await bus.publish("elsewhere/lv-01", b"{}", qos=1)
        await bus.publish("multimobile/v1/lv-02/backlog/telemetry", record("lv-02", 2), qos=1)
        await bus.publish("multimobile/v1/lv-01/backlog/cmd/plan", b"{}", qos=1)
        # Its own records, live and late (telemetry/uplink.py's backlog lane).
        await bus.publish("multimobile/v1/lv-01/backlog/telemetry", record("lv-01", 1), qos=1)
        await bus.publish("multimobile/v1/lv-01/event/tick", record("lv-01", 2), qos=1)
        seen = await received_until(office, "multimobile/v1/lv-01/event/tick")
    assert seen == ["multimobile/v1/lv-01/backlog/telemetry", "multimobile/v1/lv-01/event/tick"]


async def test_a_bus_reads_only_its_own_commands_and_the_office_sends_them(
        broker: Mosquitto, test_pki: TlsFiles) -> None:
    async with client(broker, test_pki, "office") as office, \
            client(broker, test_pki, "lv-01") as bus, \
            client(broker, test_pki, "lv-02") as other:
        await bus.subscribe("multimobile/v1/#", qos=1)  # asks for everything
        await other.publish("multimobile/v1/lv-02/telemetry", record("lv-02", 1), qos=1)
        await office.publish("multimobile/v1/lv-02/cmd/plan", b"{}", qos=1)
        await office.publish("multimobile/v1/lv-02/cmd/ping", b"{}", qos=1)
        await office.publish("multimobile/v1/lv-01/cmd/ping", b"{}", qos=1)
        seen = await received_until(bus, "multimobile/v1/lv-01/cmd/ping")
    assert seen == ["multimobile/v1/lv-01/cmd/ping"]


async def test_an_ingest_worker_may_read_but_not_command(broker: Mosquitto,
                                                         test_pki: TlsFiles) -> None:
    async with client(broker, test_pki, "ingest-1") as worker, \
            client(broker, test_pki, "lv-01") as bus:
        await bus.subscribe("multimobile/v1/lv-01/cmd/#", qos=1)
        await worker.publish("multimobile/v1/lv-01/cmd/plan", b"{}", qos=1)
        await worker.publish("multimobile/v1/lv-01/cmd/result", b"{}", qos=1)  # no forged answer
        async with client(broker, test_pki, "office") as office:
            await office.publish("multimobile/v1/lv-01/cmd/ping", b"{}", qos=1)
        seen = await received_until(bus, "multimobile/v1/lv-01/cmd/ping")
    assert seen == ["multimobile/v1/lv-01/cmd/ping"]


async def test_no_bus_takes_over_another_bus_by_its_client_id(broker: Mosquitto,
                                                               test_pki: TlsFiles) -> None:
    async with client(broker, test_pki, "lv-01", identifier="busd-lv-01") as bus:
        await bus.subscribe("multimobile/v1/lv-01/cmd/#", qos=1)
        # lv-02 connects with lv-01's client id. Without use_username_as_clientid the broker
        # would close lv-01's connection and hand lv-02 its session.
        async with client(broker, test_pki, "lv-02", identifier="busd-lv-01") as intruder:
            await intruder.publish("multimobile/v1/lv-02/state", b"{}", qos=0)
            async with client(broker, test_pki, "office") as office:
                await office.publish("multimobile/v1/lv-01/cmd/ping", b"{}", qos=1)
            seen = await received_until(bus, "multimobile/v1/lv-01/cmd/ping")
    assert seen == ["multimobile/v1/lv-01/cmd/ping"]
    log = broker.log_text()
    assert "already connected, closing old connection" not in log
    assert "as lv-02 (" in log  # its id is its username


@pytest.mark.parametrize("user,password", [(None, None), ("lv-01", "wrong"),
                                           ("nobody", "pw")])
async def test_anonymous_and_wrong_passwords_are_refused(
        broker: Mosquitto, test_pki: TlsFiles, user: str | None, password: str | None) -> None:
    settings = login(broker, test_pki, user, password=password)
    with pytest.raises(aiomqtt.MqttError):
        async with make_client(settings, identifier="refused", protocol=V5):
            pass


async def test_nothing_listens_in_the_clear(broker: Mosquitto, test_pki: TlsFiles) -> None:
    plain = BrokerSettings(host="127.0.0.1", port=broker.port, username="office",
                           password=PASSWORDS["office"], timeout_s=3)
    with pytest.raises(aiomqtt.MqttError):
        async with make_client(plain, identifier="plain", protocol=V5):
            pass


async def test_an_ingest_worker_authenticates_over_tls_and_archives(
        broker: Mosquitto, test_pki: TlsFiles, tmp_path: Path) -> None:
    async with open_archive(f"sqlite:///{tmp_path}/archive.db") as archive:
        worker = IngestWorker(settings=login(broker, test_pki, "ingest-1"), archive=archive,
                              options=IngestOptions(client_id="ignored: the username is"))
        task = asyncio.create_task(worker.run(), name="test:ingest")
        try:
            async with asyncio.timeout(10):
                await worker.connected.wait()
            async with client(broker, test_pki, "lv-01") as bus:
                await bus.publish("multimobile/v1/lv-01/event/tick", record("lv-01", 1), qos=1)
            async with asyncio.timeout(10):
                while await archive.count() < 1:  # noqa: ASYNC110 - a database, not an event
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert [r.seq for r in await archive.records("lv-01")] == [1]
    assert "as ingest-1 (" in broker.log_text()
