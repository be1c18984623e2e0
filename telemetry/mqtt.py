"""Building aiomqtt clients from config: credentials, TLS, MQTT 5 with a 3.1.1 fallback.

Shared by the bus's uplink and the office, so both speak to the broker the same way.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY, CleanStartOption
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from busd.errors import ConfigError

if TYPE_CHECKING:  # the office's workers need no bus config: a faster start after a crash
    from busd.config import MqttConfig

# aiomqtt warns "There are N pending publish calls" whenever more than 10 QoS 1
# publishes await their PUBACK, which the drain does on purpose (a window of
# ``uplink.inflight``); keep its logger for real errors.
_PAHO_LOG = logging.getLogger("telemetry.mqtt.client")
_PAHO_LOG.setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Everything needed to reach a broker; ``repr`` never shows the password."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True
    keepalive_s: int = 30
    timeout_s: float = 10.0
    protocol: str = "auto"  # "auto" | "5" | "3.1.1"

    def __repr__(self) -> str:
        return (f"BrokerSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
                f"password={'***' if self.password else None}, tls={self.tls})")

    @classmethod
    def from_config(cls, cfg: MqttConfig) -> BrokerSettings:
        return cls(
            host=cfg.host, port=cfg.port, username=cfg.username, password=cfg.password_value(),
            tls=cfg.tls.enabled, ca_file=cfg.tls.ca_file, cert_file=cfg.tls.cert_file,
            key_file=cfg.tls.key_file, check_hostname=cfg.tls.check_hostname,
            keepalive_s=cfg.keepalive_s, timeout_s=cfg.timeout_s, protocol=cfg.protocol,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifying context: the broker's certificate must chain to ``ca_file``."""
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None)
            ctx.check_hostname = self.check_hostname
            if self.cert_file is not None and self.key_file is not None:
                ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError([("mqtt.tls", f"cannot load TLS files: {err}")]) from err
        return ctx


def first_protocol(settings: BrokerSettings) -> aiomqtt.ProtocolVersion:
    return (aiomqtt.ProtocolVersion.V311 if settings.protocol == "3.1.1"
            else aiomqtt.ProtocolVersion.V5)


def refused_protocol(err: BaseException) -> bool:
    """True when the broker refused the MQTT version (3.1.1 rc 1, MQTT 5 reason 132)."""
    rc = getattr(err, "rc", None)
    value = getattr(rc, "value", rc)
    return isinstance(err, MqttConnectError) and value in (1, 132)


def make_client(
    settings: BrokerSettings,
    *,
    identifier: str,
    protocol: aiomqtt.ProtocolVersion,
    will: aiomqtt.Will | None = None,
    persistent_session: bool = False,
    session_expiry_s: int = 7 * 86400,  # the office may be off over a weekend
    max_inflight: int = 20,
    max_queued_incoming: int = 1000,
) -> aiomqtt.Client:
    v5 = protocol == aiomqtt.ProtocolVersion.V5
    # aiomqtt's defaults, unless the session is asked for: MQTT 5 names it clean_start
    # (and keeps it by a session property), 3.1.1 clean_session
    clean_session: bool | None = None
    clean_start: CleanStartOption = MQTT_CLEAN_START_FIRST_ONLY
    properties: Properties | None = None
    if v5:
        clean_start = not persistent_session
        if persistent_session:
            properties = _properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = session_expiry_s
    else:
        clean_session = not persistent_session
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password,
        identifier=identifier,
        protocol=protocol,
        will=will,
        keepalive=settings.keepalive_s,
        timeout=settings.timeout_s,
        tls_context=settings.ssl_context(),
        logger=_PAHO_LOG,
        max_inflight_messages=max_inflight,
        # Bounded: past this paho/aiomqtt discard incoming messages (logged by aiomqtt).
        max_queued_incoming_messages=max_queued_incoming,
        clean_session=clean_session,
        clean_start=clean_start,
        properties=properties,
    )


def manual_ack(client: aiomqtt.Client) -> None:
    """Stop aiomqtt's paho client from acknowledging messages as it receives them.

    aiomqtt 2.x has no public API for it (aiomqtt#345); its paho client does (paho-mqtt 2.x
    ``manual_ack_set``). Call before connecting: a persistent session's queued messages come
    right after the CONNACK.
    """
    client._client.manual_ack_set(True)


def acknowledge(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """PUBACK one message (QoS 1). On a connection that is already gone this does nothing: the
    broker sends the message again on the next connection (the receiver drops the copy)."""
    client._client.ack(message.mid, message.qos)


def _properties(packet_type: int) -> Properties:
    # paho ships py.typed but leaves Properties.__init__ unannotated
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def expiry_properties(seconds: int) -> Properties:
    props = _properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = seconds
    return props


async def publish(client: aiomqtt.Client, topic: str, payload: bytes, **options: Any) -> None:
    """``client.publish`` that never swallows a cancellation.

    aiomqtt waits for the send (and a QoS 1 PUBACK) with ``asyncio.wait_for``, which on Python
    3.11 returns the result instead of raising CancelledError when the cancellation arrives as
    the wait completes (CPython gh-86296, fixed in 3.12). A loop that publishes then carries on
    as if never cancelled, and the TaskGroup stopping it waits for ever: the fleet simulator
    hung that way at shutdown (simulators/fleet). The cancellation is still recorded on the
    task (``cancelling()``), so it is raised here.
    """
    await client.publish(topic, payload, **options)
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
