"""One connection for sending commands to buses and reading their ``cmd/result``.

Shared by every office command that talks to buses (``plan send``, ``resend``): it connects with
a clean session and a client id of its own, subscribes to the buses' ``cmd/result`` before
anything is sent (the answer may come at once), publishes each command at QoS 1 with an MQTT 5
message expiry (given, or the command kind's default), and hands every receipt and answer it
reads to the caller. A bus that is offline gets the command from its persistent session when it
connects, unless the expiry passed first; its answer then reaches the archive through the
ingest.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import aiomqtt
import structlog
from pydantic import BaseModel, ValidationError

from busd.event_catalog import CommandReceived, CommandResult
from office.archive import Archive
from office.archive.models import ArchivedRecord
from office.dispatch.expiry import command_expiry
from office.records import Topics, parse_records
from telemetry import mqtt

log = structlog.get_logger("office.dispatch")

Key = tuple[str, str]  # (bus, command id)


@dataclass(frozen=True, slots=True)
class Heard:
    """What one ``cmd/result`` message said: the records as the archive takes them, and
    the receipts and answers among them by (bus, id)."""

    records: list[ArchivedRecord]
    receipts: dict[Key, CommandReceived]
    answers: dict[Key, CommandResult]


def heard(topics: Topics, topic: str, payload: bytes, received: datetime) -> Heard:
    parsed = parse_records(topics, topic, payload, received)
    receipts: dict[Key, CommandReceived] = {}
    answers: dict[Key, CommandResult] = {}
    for record in parsed.records:
        try:
            if record.kind == "cmd_received":
                receipt = CommandReceived.model_validate(record.data)
                receipts[(record.bus, receipt.id)] = receipt
            elif record.kind == "cmd_result":
                result = CommandResult.model_validate(record.data)
                if result.id is not None:
                    answers[(record.bus, result.id)] = result
        except ValidationError:
            continue  # not ours to judge: the archive's readers count it
    return Heard(list(parsed.records), receipts, answers)


async def archive_heard(archive: Archive, heard_messages: Iterable[Heard]) -> None:
    """Put what was heard on ``cmd/result`` into the archive as the ingest would (it drops
    what it has by (bus, seq)); the answers update the commands table in that transaction."""
    records = [r for h in heard_messages for r in h.records]
    if records:
        await archive.insert_batch(records)


class CommandChannel:
    """``async with CommandChannel(settings, buses=…) as channel``: send, then :meth:`wait`."""

    def __init__(self, settings: mqtt.BrokerSettings, *, buses: Iterable[str], prefix: str,
                 name: str = "commands") -> None:
        self._settings = settings
        self._buses = sorted(set(buses))
        self.topics = Topics(prefix)
        self._protocol = mqtt.first_protocol(settings)
        self._client = mqtt.make_client(
            settings, identifier=f"busd-office-{name}-{os.getpid()}-{secrets.token_hex(3)}",
            protocol=self._protocol)

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        try:
            for bus in self._buses:
                for topic in self.topics.results(bus):
                    await self._client.subscribe(topic, qos=1)
        except BaseException:
            await self._client.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def send(self, bus: str, name: str, command: BaseModel, *,
                   expires: datetime | None = None, now: datetime | None = None) -> None:
        """Publish ``command`` on the bus's ``cmd/{name}`` (QoS 1; returns at the PUBACK).

        ``expires``: the broker drops it then if the bus has not taken it (MQTT 5; a 3.1.1
        broker keeps it, and the bus rejects a plan whose day has passed); None: the kind's
        default (:func:`office.dispatch.expiry.command_expiry`)."""
        if bus not in self._buses:
            raise ValueError(f"bus {bus!r} is not one this channel listens to")
        now = now or datetime.now(UTC)
        if expires is None:
            expires = command_expiry(name, now)
        properties = None
        if self._protocol == aiomqtt.ProtocolVersion.V5:
            left = (expires - now).total_seconds()
            properties = mqtt.expiry_properties(max(1, math.ceil(left)))
        await self._client.publish(self.topics.command(bus, name),
                                   command.model_dump_json(by_alias=True).encode(), qos=1,
                                   properties=properties)

    async def wait(self, waiting: set[Key], timeout_s: float,
                   seen: Callable[[Heard], None] | None = None) -> dict[Key, CommandResult]:
        """The answers to ``waiting`` that come within ``timeout_s``; ``seen`` is told of every
        ``cmd/result`` message read (receipts, answers, others' answers)."""
        answers: dict[Key, CommandResult] = {}
        if not waiting:
            return answers
        try:
            async with asyncio.timeout(timeout_s):
                async for message in self._client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    got = heard(self.topics, str(message.topic), payload, datetime.now(UTC))
                    if seen is not None:
                        seen(got)
                    answers.update((k, r) for k, r in got.answers.items() if k in waiting)
                    if len(answers) == len(waiting):
                        break
        except TimeoutError:
            log.warning("commands_unanswered", unanswered=len(waiting) - len(answers))
        return answers
