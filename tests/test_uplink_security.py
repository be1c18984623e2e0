"""TLS with a test CA and client certificates; the example ACL between buses."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiomqtt
import pytest

from busd.clock import SystemClock
from busd.state import VehicleState
from busd.supervisor import ComponentContext, ComponentHealth, Phase
from telemetry.mqtt import BrokerSettings, make_client
from telemetry.wiring import build_uplink
from tests.support.mosquitto import REPO, Mosquitto, TlsFiles
from tests.support.uplink_env import archived_seqs, bus_config, running_bus, running_office
from tests.support.wait import wait_until

V5 = aiomqtt.ProtocolVersion.V5


async def test_tls_with_client_certificate_works(tmp_path: Path, test_pki: TlsFiles) -> None:
    broker = Mosquitto(tmp_path / "mq", tls=test_pki)
    broker.start()
    tls_port = broker.tls_port
    assert tls_port is not None  # started with TLS
    try:
        tls = {"enabled": True, "ca_file": test_pki.ca, "cert_file": test_pki.client_cert,
               "key_file": test_pki.client_key}
        config = bus_config(tmp_path, tls_port, host="localhost", tls=tls)
        async with running_office(broker.port) as office, running_bus(config) as (parts, _):
            await office.wait_until(lambda: office.fleet.get("bus-01") and
                                    office.fleet["bus-01"].online, timeout=10)
            seq = await parts.outbox.append("event", "over_tls", {})

            async def arrived() -> bool:
                return seq in await archived_seqs(office, "bus-01")

            await office.wait_until(arrived, timeout=10)
        assert "u'bus-01'" in broker.log_text()  # the certificate's CN became the username
    finally:
        broker.stop()


async def test_tls_with_a_wrong_ca_is_refused(tmp_path: Path, test_pki: TlsFiles) -> None:
    broker = Mosquitto(tmp_path / "mq", tls=test_pki)
    broker.start()
    tls_port = broker.tls_port
    assert tls_port is not None  # started with TLS
    try:
        wrong = BrokerSettings(host="localhost", port=tls_port, tls=True,
                               ca_file=test_pki.wrong_ca, cert_file=test_pki.client_cert,
                               key_file=test_pki.client_key)
        with pytest.raises((aiomqtt.MqttError, ssl.SSLError)) as err:
            async with make_client(wrong, identifier="wrong-ca", protocol=V5):
                pass
        assert "certificate verify failed" in str(err.value)

        # The uplink itself stays up, degraded, and says why.
        tls = {"enabled": True, "ca_file": test_pki.wrong_ca,
               "cert_file": test_pki.client_cert, "key_file": test_pki.client_key}
        config = bus_config(tmp_path, tls_port, host="localhost", tls=tls)
        parts = build_uplink(config, state=VehicleState(SystemClock()), clock=SystemClock())
        health = ComponentHealth("uplink", False)
        await parts.outbox.open()
        task = asyncio.create_task(parts.uplink.run(ComponentContext(health, SystemClock())))
        try:
            # Degraded from the start ("connecting"), then with the reason of the refusal.
            await wait_until(lambda: "certificate verify failed" in health.reason, timeout=10,
                             what="the uplink degraded by the refused certificate")
            assert health.phase is Phase.DEGRADED
            assert not parts.uplink.connected
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await parts.outbox.close()
    finally:
        broker.stop()


async def test_example_acl_keeps_each_bus_under_its_own_prefix(tmp_path: Path) -> None:
    acl = (REPO / "config" / "mosquitto" / "acl").read_text()
    broker = Mosquitto(tmp_path / "mq", acl=acl, passwords={
        "office": "office-pw", "bus-01": "pw-01", "bus-02": "pw-02"})
    broker.start()
    try:
        async with running_office(broker.port, username="office", password="office-pw") as office:
            bus1 = BrokerSettings(host="127.0.0.1", port=broker.port, username="bus-01",
                                  password="pw-01")
            async with make_client(bus1, identifier="bus-01-test", protocol=V5) as client:
                # Order is kept on one connection: if the forged message were let through,
                # it would reach the office before the genuine one.
                forged = (b'{"bus":"bus-02","ts":"2026-01-01T00:00:00.000Z",'
                          b'"schema":"busd.status/1","online":true,"version":"x","boot":"x"}')
                await client.publish("multimobile/v1/bus-02/status", forged, qos=1)
                await client.publish("multimobile/v1/bus-02/event/x", b'{"seq":1}', qos=1)
                await client.publish("multimobile/v1/bus-01/event/ok",
                                     b'{"bus":"bus-01","ts":"2026-01-01T00:00:00.000Z",'
                                     b'"schema":"busd.event/1","seq":1,"kind":"ok","data":{}}',
                                     qos=1)
                await office.wait_until(lambda: "bus-01" in office.fleet, timeout=10)
                assert "bus-02" not in office.fleet
                # A bus cannot send commands to another bus either.
                await client.publish("multimobile/v1/bus-02/cmd/plan", b"{}", qos=1)
            assert "Denied PUBLISH from bus-01-test" in broker.log_text()
            # And anonymous clients get nothing at all.
            anon = BrokerSettings(host="127.0.0.1", port=broker.port)
            with pytest.raises(aiomqtt.MqttError):
                async with make_client(anon, identifier="anon", protocol=V5):
                    pass
    finally:
        broker.stop()
