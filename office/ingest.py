"""``busd office ingest``: one of several workers that share the buses' records.

Every worker subscribes to the record topics (telemetry, events, reports, command results) as a
member of one MQTT 5 shared subscription, ``$share/<group>/multimobile/v1/+/…``, so the broker
hands each message to one member of the group. A worker writes what it gets into the archive in
batches (one transaction each) and acknowledges a message only after its batch is committed:

- **Nothing is lost when a worker dies.** The PUBACK is the broker's proof of delivery; a message
  a worker received but had not committed is unacknowledged, so the broker sends it again when
  the worker's session resumes. aiomqtt 2.x acknowledges every message as it hands it over and
  has no public switch for that (aiomqtt#345, the draft aiomqtt#346); paho-mqtt 2.x, which it
  wraps, has ``manual_ack``. :func:`telemetry.mqtt.manual_ack` turns it on through aiomqtt's
  paho client (the bus's uplink uses it too, for its commands).
- **Short-expiry sessions.** A worker keeps its session (fixed client id, session expiry
  ``session_expiry_s``, default 5 minutes) so that a restarted worker, or every worker after a
  broker restart, gets back the messages it had not acknowledged and those published meanwhile.
  Short, because mosquitto keeps giving an offline member its share of a shared subscription
  until its session expires: a worker that never comes back holds its share only that long,
  and what it held is then lost to the archive and shows as a gap (``busd office gaps``) that the
  bus's resend (``cmd/resend``) has to fill.
- **No worker's memory decides anything.** Duplicates (a message sent again after a crash) and
  gaps are the database's: ``ON CONFLICT DO NOTHING`` on ``(bus, seq)`` and gaps in SQL.
- **Flow control.** MQTT 5's Receive Maximum caps the messages the broker sends before they are
  acknowledged, so a worker holds at most ``receive_maximum`` unacknowledged messages; that is
  the bound on every queue here.
- **The topic names the bus.** A record whose payload names another bus is refused and counted
  (:mod:`office.records`), and acknowledged with its batch: it can never be stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import signal
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from busd.clock import Clock, SystemClock
from busd.reconnect import Link, Reconnector
from busd.supervisor import Backoff, ComponentContext, ComponentHealth
from office.archive import Archive, ArchivedRecord, ArchiveError
from office.records import Rejected, Topics, parse_records
from telemetry.mqtt import BrokerSettings, acknowledge, manual_ack

log = structlog.get_logger("office.ingest")


# A live record waits in a batch at most this long, whatever ``batch_linger_s`` says. Live
# batches are small (a record or two a bus a second), so a longer wait saves few commits; and
# a worker killed mid-batch holds what it took until its restart, since the broker gives its
# share to no one else: the longer the wait, the more live records late by the restart.
LIVE_LINGER_MAX_S = 0.05


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How one worker batches and keeps its session."""

    client_id: str
    group: str = "office"
    batch_max_records: int = 1000
    batch_linger_s: float = 0.2
    session_expiry_s: int = 300
    receive_maximum: int = 2000
    # Which records: "live" (the record topics), "backlog" (``backlog/…``: late ones), or
    # "all" on one connection. ``busd office ingest`` runs a live and a backlog worker, each
    # on its own connection, so the broker queues a fleet's backlog apart from live records.
    lane: Literal["all", "live", "backlog"] = "all"

    @property
    def linger_s(self) -> float:
        """How long a batch waits to fill after its first message, on this lane."""
        if self.lane == "live":
            return min(self.batch_linger_s, LIVE_LINGER_MAX_S)
        return self.batch_linger_s

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        if not self.group or any(c in self.group for c in "/+#"):
            raise ValueError("group must be one topic level without wildcards")
        if self.batch_max_records < 1 or self.batch_linger_s < 0:
            raise ValueError("batch_max_records must be positive and batch_linger_s not negative")
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError("receive_maximum must be 1..65535")
        if self.session_expiry_s < 1:
            # 0 would end the session with the connection, and with it the messages the
            # worker had received but not yet committed.
            raise ValueError("session_expiry_s must be at least 1")


@dataclass
class _Batch:
    """Messages taken for one transaction, and their records, parsed as they came."""

    messages: list[aiomqtt.Message]
    records: list[ArchivedRecord] = field(default_factory=list)


@dataclass
class IngestCounters:
    messages: int = 0  # MQTT messages received (a batch message counts once)
    batches: int = 0  # archive transactions committed
    inserted: int = 0  # records archived for the first time
    duplicates: int = 0  # records the archive already had
    unfit: int = 0  # events archived whose data does not fit the catalogue (not derived)
    rejected: Counter[Rejected] = field(default_factory=Counter)


def record_count(payload: object) -> int:
    """About how many records a message carries, without parsing it: for the batch's size
    only (each record has one ``"seq":``; a record's data may have more, never fewer)."""
    if isinstance(payload, bytes | bytearray):
        return max(1, payload.count(b'"seq":'))
    return 1


class IngestWorker:
    """One worker: shared subscription in, archive batches out, PUBACK after commit."""

    def __init__(self, *, settings: BrokerSettings, archive: Archive, options: IngestOptions,
                 topics: Topics | None = None, clock: Clock | None = None) -> None:
        self._settings = settings
        self._archive = archive
        self.options = options
        self._topics = topics or Topics()
        self._clock = clock or SystemClock()
        self.filters = self._topics.filters(share=options.group,
                                            live=options.lane != "backlog",
                                            backlog=options.lane != "live")
        self.counters = IngestCounters()
        self.connected = asyncio.Event()
        self._log = log.bind(component="ingest", client_id=options.client_id)
        self.health = ComponentHealth("ingest", critical=True)
        self._ctx = ComponentContext(self.health, self._clock)

    async def run(self) -> None:
        """Ingest until cancelled, reconnecting with back-off. A batch the archive refused is
        not acknowledged: the session ends and the broker sends its messages again."""
        settings = self._settings
        runner = Reconnector(
            ctx=self._ctx, clock=self._clock, target=f"broker {settings.host}:{settings.port}",
            # Capped at 2 s: after a broker restart, mosquitto 2.0.11 queues nothing for a
            # restored session until its client is back, so every second away loses records
            # (the bus's resend has to fill them). A handful of workers cannot flood a broker.
            backoff=Backoff(initial_s=0.2, max_s=2.0),
            retry_on=(aiomqtt.MqttError, OSError, ArchiveError),
        )
        await runner.run(self._session)

    def _client(self) -> aiomqtt.Client:
        opts = self.options
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = opts.session_expiry_s
        props.ReceiveMaximum = opts.receive_maximum
        s = self._settings
        return aiomqtt.Client(
            s.host, s.port, username=s.username, password=s.password,
            identifier=opts.client_id, protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=s.keepalive_s, timeout=s.timeout_s, tls_context=s.ssl_context(),
            clean_start=False, properties=props,
            # Unbounded: aiomqtt drops a message silently when its queue is full, and mosquitto
            # 2.0.11 sends more than Receive Maximum (a resumed session's queue, its share of a
            # shared subscription). A dropped message is never acknowledged, so it would come
            # back only with the next connection. Receive Maximum bounds it in practice.
            max_queued_incoming_messages=0,
        )

    async def _session(self, link: Link) -> None:
        client = self._client()
        manual_ack(client)
        try:
            async with client:
                for topic_filter in self.filters:
                    await client.subscribe(topic_filter, qos=1)
                self._log.info("ingest_connected", lane=self.options.lane,
                               filters=self.filters, group=self.options.group)
                link.connected()
                link.working()
                self.connected.set()
                inbox: asyncio.Queue[aiomqtt.Message | BaseException] = asyncio.Queue()
                reader = asyncio.create_task(self._read(client, inbox), name="ingest:read")
                try:
                    await self._batches(client, inbox, link)
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        finally:
            self.connected.clear()

    @staticmethod
    async def _read(client: aiomqtt.Client,
                    inbox: asyncio.Queue[aiomqtt.Message | BaseException]) -> None:
        # Our own reader and queue: cancelling a wait on aiomqtt's iterator can drop a message
        # it had just taken; a wait on an asyncio.Queue leaves the item in the queue.
        try:
            async for message in client.messages:
                inbox.put_nowait(message)  # unbounded: see _client
        except Exception as err:  # the connection ended: the batcher raises it
            # Ahead of everything still queued: none of it can be acknowledged on this
            # connection, so the broker sends it all again on the next one. Worked through
            # first, a backlog worker's queue (up to receive_maximum batch messages) kept it
            # away for seconds after a broker restart, and mosquitto 2.0.11 queues nothing for
            # a restored session until its client is back: what the buses sent meanwhile was
            # lost until a resend.
            while not inbox.empty():
                inbox.get_nowait()
            inbox.put_nowait(err)

    async def _batches(self, client: aiomqtt.Client,
                       inbox: asyncio.Queue[aiomqtt.Message | BaseException], link: Link) -> None:
        """Fill a batch while the previous one commits: the worker parses while the database
        writes. One commit at a time, so the PUBACKs go out in the order received."""
        committing: asyncio.Task[None] | None = None
        try:
            while True:
                batch = self._parse(await self._fill(inbox))
                if committing is not None:
                    await committing
                    link.working()
                committing = asyncio.create_task(self._commit(client, batch),
                                                 name="ingest:commit")
        finally:
            if committing is not None and not committing.done():
                # The connection ended (or we stop): this batch's PUBACKs cannot go out on it,
                # so the broker sends its messages again, and the archive drops the copies.
                committing.cancel()
            if committing is not None:
                with contextlib.suppress(asyncio.CancelledError, ArchiveError):
                    await committing

    async def _fill(self, inbox: asyncio.Queue[aiomqtt.Message | BaseException]
                    ) -> list[aiomqtt.Message]:
        """Messages until they hold ``batch_max_records`` records (a bus's batch message
        carries up to a thousand) or the lane's linger after the first."""
        opts = self.options
        loop = asyncio.get_running_loop()
        first = await inbox.get()
        if isinstance(first, BaseException):
            raise first
        messages = [first]
        records = record_count(first.payload)
        deadline = loop.time() + opts.linger_s
        ended: BaseException | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while records < opts.batch_max_records:
                    item = await inbox.get()
                    if isinstance(item, BaseException):
                        ended = item
                        break
                    messages.append(item)
                    records += record_count(item.payload)
        if ended is not None:
            # The connection is gone: nothing can be acknowledged on it. The broker sends
            # these again on the next connection; committing them now would only save that.
            raise ended
        return messages

    def _parse(self, messages: list[aiomqtt.Message]) -> _Batch:
        # ``received``: the worker's clock when it took the batch (its commit follows, once
        # the previous batch's is done).
        received = datetime.fromtimestamp(self._clock.now(), UTC)
        batch = _Batch(messages)
        for message in messages:
            payload = message.payload if isinstance(message.payload, bytes) else \
                str(message.payload or "").encode()
            parsed = parse_records(self._topics, str(message.topic), payload, received)
            batch.records.extend(parsed.records)
            for why, n in parsed.rejected.items():
                self.counters.rejected[why] += n
                self._log.warning("record_rejected", reason=why.value, records=n,
                                  topic=str(message.topic), detail=parsed.reason)
        return batch

    async def _commit(self, client: aiomqtt.Client, batch: _Batch) -> None:
        try:
            result = await self._archive.insert_batch(batch.records)
        except ArchiveError as err:
            self._log.error("archive_batch_failed", records=len(batch.records), error=str(err))
            raise
        # Only now: the batch is committed, so the broker may forget these messages.
        # In the order received, as MQTT asks of PUBACKs.
        for message in batch.messages:
            acknowledge(client, message)
        c = self.counters
        c.messages += len(batch.messages)
        c.batches += 1
        c.inserted += result.inserted
        c.duplicates += result.duplicates
        c.unfit += result.unfit
        self._log.debug("batch_committed", messages=len(batch.messages),
                        inserted=result.inserted, duplicates=result.duplicates)


async def open_when_reachable(archive_url: str, stop: asyncio.Event, *,
                              attempt_timeout_s: float = 2.0, backoff_max_s: float = 10.0
                              ) -> Archive | None:
    """The archive, opened as soon as its server answers; None if ``stop`` came first.

    A worker that started while its database was down (a reboot of both, a failover) waits
    for it instead of exiting: exits would use up systemd's start limit and leave the worker
    down for good, and its unit can then restart it at once after a real crash (the broker
    holds a dead worker's share of the live records until it is back). Any other error, a
    wrong URL or a refused login, ends the command as before."""
    from office.archive import ArchiveUnreachable, open_archive

    backoff = Backoff(initial_s=1.0, max_s=backoff_max_s)
    rng = random.Random()
    failures = 0
    while not stop.is_set():
        archive = open_archive(archive_url, connect_timeout_s=attempt_timeout_s)
        try:
            return await archive.open()
        except ArchiveUnreachable as err:
            failures += 1
            delay = backoff.delay(failures, rng)
            log.warning("archive_unreachable", retry_in_s=round(delay, 2), reason=str(err))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
    return None


async def run_ingest(*, settings: BrokerSettings, archive_url: str, options: IngestOptions,
                     prefix: str | None = None, duration_s: float | None = None,
                     both_lanes: bool = True) -> int:
    """The ``busd office ingest`` command: one worker until SIGTERM (or ``duration_s``);
    ``both_lanes``: a live and a backlog worker, else the one ``options.lane`` says."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        archive = await open_when_reachable(archive_url, stop)
        if archive is not None:
            try:
                await _ingest(archive, settings=settings, options=options, prefix=prefix,
                              duration_s=duration_s, both_lanes=both_lanes, stop=stop)
            finally:
                await archive.close()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


async def _ingest(archive: Archive, *, settings: BrokerSettings, options: IngestOptions,
                  prefix: str | None, duration_s: float | None, both_lanes: bool,
                  stop: asyncio.Event) -> None:
    # A live and a backlog worker, each its own MQTT session (``<client id>`` and
    # ``<client id>-backlog``), into the one archive; or the one lane asked for.
    lanes = [dataclasses.replace(options, lane="live"),
             dataclasses.replace(options, lane="backlog",
                                 client_id=f"{options.client_id}-backlog")] \
        if both_lanes else [options]
    workers = [IngestWorker(settings=settings, archive=archive, options=lane,
                            topics=Topics(prefix) if prefix else None) for lane in lanes]
    tasks = [asyncio.create_task(w.run(), name=f"ingest:{w.options.lane}") for w in workers]
    stopped = asyncio.create_task(stop.wait(), name="ingest:stop")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration_s):
            await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
    # Stopping drops the batch being filled, unacknowledged: the broker keeps it for the
    # session, and sends it again when this worker (or its restart) connects.
    for task in [*tasks, stopped]:
        task.cancel()
    for task in [*tasks, stopped]:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for w in workers:
        c = w.counters
        log.info("ingest_stopped", lane=w.options.lane, messages=c.messages,
                 batches=c.batches, inserted=c.inserted, duplicates=c.duplicates,
                 unfit=c.unfit, rejected={k.value: v for k, v in c.rejected.items()})
