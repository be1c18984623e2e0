"""The bus's MQTT connection: status, live state, the outbox drain, commands in.

One supervisor component, ``uplink``. While the broker is unreachable it is
*degraded*, never failed: the bus works offline for days and the outbox keeps
everything. Each connection runs four tasks in one TaskGroup; if any of them
fails (the link dropped) all are cancelled and :class:`busd.reconnect.Reconnector`
connects again with capped, jittered exponential back-off.

- ``status`` (retained, QoS 1): online on every connect; the broker's last
  will publishes offline (reason ``connection_lost``) if the bus vanishes, and a
  clean shutdown publishes offline (reason ``shutdown``) itself.
- ``state`` (retained, QoS 0, MQTT 5 message expiry): live, superseded by the
  next one, so never queued; it flows on its own task however big the backlog.
- the drain: consecutive records of one topic packed into a ``busd.batch/1``
  message (up to ``batch_max_records`` / ``batch_max_kb``), up to ``inflight``
  messages awaiting PUBACK at once; each PUBACK moves its records to the
  outbox's kept ``sent`` table. A lost connection resends whatever was not acked.
  Two lanes: records made since this connection came up, or less than
  ``LIVE_WINDOW_S`` (30 s) before, are *live* and go first, on the record topics;
  what the outbox held from before (an outage's backlog)
  goes oldest first, one batch at a time while no live record waits, on the same
  topics under ``backlog/`` (``{prefix}/backlog/telemetry``). The office reads the
  backlog topics on a connection of their own, so a fleet's backlog never queues
  at the broker in front of a live record. The backlog and resends go at most
  ``uplink.backlog_records_per_s`` (telemetry/pace.py); live is never paced.
- resend (``cmd/resend``): kept records the office asked for again go out on
  the backlog topics with their original ``seq`` and ``ts``, one batch at a
  time and only while no live or backlog record waits.
- ``cmd/+`` in (QoS 1, persistent session: what the office sent while the bus
  was offline arrives when it connects, until ``mqtt.session_expiry_s`` or the
  command's own message expiry): validated by :class:`CommandDispatcher`; a
  receipt as the command arrives and each answer are durable records on
  ``cmd/result``; a command delivered twice is answered from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from pydantic import ValidationError

from busd import __version__
from busd.clock import Clock, utc_iso
from busd.config import BusdConfig, MotionConfig, MqttConfig, UplinkConfig
from busd.errors import BusdError, StorageError
from busd.event_catalog import CommandReceived, CommandResult, PlanDocument
from busd.motion import DEFAULT_MOTION, moving_now
from busd.reconnect import Link, Reconnector
from busd.state import VehicleState
from busd.supervisor import Backoff, ComponentContext
from telemetry import mqtt
from telemetry.commands import CommandDispatcher
from telemetry.models import (
    SCHEMA_BATCH,
    STREAM_SCHEMAS,
    Backlog,
    PlanMessage,
    State,
    Status,
)
from telemetry.outbox import Outbox, PeekRange, Row
from telemetry.pace import Pace
from telemetry.sampler import compact

log = structlog.get_logger("telemetry.uplink")

PLAN_META_KEY = "uplink.plan"
# Records older than the connection (and resends) go under ``{prefix}/backlog/``.
BACKLOG = "backlog"
# How old a record may be at connection time and still go in the live lane.
LIVE_WINDOW_S = 30.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    seqs: tuple[int, ...]


def _stored_plan(text: str | None) -> PlanDocument | None:
    """The plan document kept for a restart; one from an older version is not sent."""
    if not text:
        return None
    try:
        return PlanDocument.model_validate_json(text)
    except ValidationError as err:
        log.warning("stored_plan_unreadable", error=str(err).splitlines()[0])
        return None


def row_topic(row: Row) -> str:
    if row.stream == "telemetry":
        return "telemetry"
    if row.stream == "cmd_result":
        return "cmd/result"
    return f"{row.stream}/{row.kind}"  # event/{kind}, report/{kind}


def _record_json(bus_json: str | None, row: Row) -> str:
    # Built as text around the stored body: the drain never re-parses what it stored.
    head = f'"bus":{bus_json},' if bus_json is not None else ""
    return (f'{{{head}"ts":"{utc_iso(row.ts)}","schema":"{STREAM_SCHEMAS[row.stream]}",'
            f'"seq":{row.seq},"kind":{json.dumps(row.kind)},"data":{row.body}}}')


def build_messages(
    rows: list[Row], *, prefix: str, bus: str, now: float, max_records: int, max_bytes: int
) -> list[Message]:
    """Pack rows (oldest first) into messages: one record alone, or a batch of a topic's run."""
    bus_json = json.dumps(bus)
    out: list[Message] = []
    i = 0
    while i < len(rows):
        topic = row_topic(rows[i])
        run = [rows[i]]
        size = len(rows[i].body) + 120
        i += 1
        while (i < len(rows) and len(run) < max_records and row_topic(rows[i]) == topic
               and size + len(rows[i].body) + 120 <= max_bytes):
            run.append(rows[i])
            size += len(rows[i].body) + 120
            i += 1
        if len(run) == 1:
            text = _record_json(bus_json, run[0])
        else:
            text = (f'{{"bus":{bus_json},"ts":"{utc_iso(now)}","schema":"{SCHEMA_BATCH}",'
                    f'"records":[{",".join(_record_json(None, r) for r in run)}]}}')
        out.append(Message(f"{prefix}/{topic}", text.encode(), tuple(r.seq for r in run)))
    return out


class Uplink:
    """Supervisor component ``uplink``; also the :class:`busd.ports.PlanPublisher`."""

    name = "uplink"
    critical = False  # a broker that is down for days is normal operation, not a failure

    def __init__(
        self,
        *,
        bus_id: str,
        mqtt_config: MqttConfig,
        config: UplinkConfig,
        state: VehicleState,
        outbox: Outbox,
        commands: CommandDispatcher,
        clock: Clock,
        active_alerts: Callable[[], dict[str, str]] | None = None,
        rng: random.Random | None = None,
        motion: MotionConfig = DEFAULT_MOTION,
    ) -> None:
        """``active_alerts()``: the alert board's active alerts (kind: message), shown on
        every state message."""
        self._bus = bus_id
        self._mqtt_cfg = mqtt_config
        self._settings = mqtt.BrokerSettings.from_config(mqtt_config)  # fails fast on bad files
        self._settings.ssl_context()
        self._cfg = config
        self._motion = motion
        self._state = state
        self._outbox = outbox
        self._commands = commands
        self._clock = clock
        self._rng = rng or random.Random()
        self.prefix = mqtt_config.topic_prefix.format(bus_id=bus_id)
        self._client_id = mqtt_config.client_id or f"busd-{bus_id}"
        self._boot = utc_iso(clock.now())
        self._protocol = mqtt.first_protocol(self._settings)
        self._plan: PlanDocument | None = None
        self._plan_changed = asyncio.Event()
        self._active_alerts: Callable[[], dict[str, str]] = active_alerts or dict
        self.connected = False
        # For `busd status` (clock.now() seconds): the office's last contact.
        self.connected_since: float | None = None  # of the last connection; see `connected`
        self.last_ack: float | None = None  # the last PUBACK of outbox records
        self.counters: dict[str, int] = {
            "messages": 0, "records_sent": 0, "records_resent": 0,
            "state_published": 0, "commands": 0,
        }
        self._log = log.bind(component="uplink", bus=bus_id)

    @classmethod
    def from_config(
        cls, config: BusdConfig, *, state: VehicleState, outbox: Outbox,
        commands: CommandDispatcher, clock: Clock,
        active_alerts: Callable[[], dict[str, str]] | None = None,
    ) -> Uplink:
        return cls(bus_id=config.bus_id, mqtt_config=config.mqtt, config=config.uplink,
                   state=state, outbox=outbox, commands=commands, clock=clock,
                   active_alerts=active_alerts, motion=config.motion)

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}"

    def _status(self, online: bool, reason: str | None = None) -> bytes:
        return json.dumps(Status(bus=self._bus, ts=utc_iso(self._clock.now()), online=online,
                                 version=__version__, boot=self._boot,
                                 reason=reason).dump(), allow_nan=False).encode()

    # --- PlanPublisher -------------------------------------------------------------

    async def publish_plan(self, document: PlanDocument) -> None:
        """Keep ``document`` as the retained ``.../plan`` (now if connected, else on
        reconnect)."""
        self._plan = document
        self._plan_changed.set()
        try:
            # Kept for a restart's first connection, before the planner publishes again.
            await self._outbox.set_meta(PLAN_META_KEY, document.model_dump_json())
        except StorageError as err:
            # The disk refuses it (the outbox reports that itself): the plan still goes
            # out now, and the next plan document is kept when the disk allows.
            self._log.warning("plan_not_kept_for_restart", error=str(err))

    def plan_payload(self, document: PlanDocument) -> bytes:
        """The retained ``plan`` message: the document's fields in one envelope."""
        msg = PlanMessage(bus=self._bus, ts=utc_iso(self._clock.now()),
                          **dict(document))
        return msg.model_dump_json(by_alias=True).encode()

    # --- the component ----------------------------------------------------------------

    async def run(self, ctx: ComponentContext) -> None:
        if self._plan is None:
            self._plan = _stored_plan(await self._outbox.get_meta(PLAN_META_KEY))
        # The runner reports "connecting" (degraded) at once: what starts after us needs no
        # broker, and one that does not answer must not hold the drivers back.
        broker = f"{self._settings.host}:{self._settings.port}"
        runner = Reconnector(
            ctx=ctx, clock=self._clock, target=f"broker {broker}",
            backoff=Backoff(initial_s=self._mqtt_cfg.reconnect_initial_s,
                            max_s=self._mqtt_cfg.reconnect_max_s),
            retry_on=(aiomqtt.MqttError, OSError), rng=self._rng,
        )
        await runner.run(lambda link: self._connection(ctx, link))

    async def _connection(self, ctx: ComponentContext, link: Link) -> None:
        try:
            try:
                await self._session(ctx, link)
            except aiomqtt.MqttError as err:
                if not (mqtt.refused_protocol(err) and self._settings.protocol == "auto"
                        and self._protocol == aiomqtt.ProtocolVersion.V5):
                    raise
                self._log.warning("mqtt5_refused_falling_back_to_311")
                self._protocol = aiomqtt.ProtocolVersion.V311
                await self._session(ctx, link)
        finally:
            self.connected = False

    async def _session(self, ctx: ComponentContext, link: Link) -> None:
        will = aiomqtt.Will(self.topic("status"), self._status(False, "connection_lost"),
                            qos=1, retain=True)
        client = mqtt.make_client(
            self._settings, identifier=self._client_id, protocol=self._protocol, will=will,
            max_inflight=self._cfg.inflight, max_queued_incoming=100,
            # The broker keeps the commands sent while the bus is offline (QoS 1, each until
            # its own message expiry) and hands them over when it connects again.
            persistent_session=True, session_expiry_s=self._mqtt_cfg.session_expiry_s,
        )
        # A command is acknowledged only once its answer is kept: a bus killed in between gets
        # it again on the next connection, and answers the copy from memory (exactly once).
        mqtt.manual_ack(client)
        async with client:
            self.connected = True
            # Each command topic by name, not cmd/+, which would echo our own cmd/result back.
            # Subscribed before "online": the office may send as soon as it sees us online.
            for name in self._commands.names:
                await client.subscribe(self.topic(f"cmd/{name}"), qos=1)
            await client.publish(self.topic("status"), self._status(True), qos=1, retain=True)
            self.connected_since = self._clock.now()  # subscribed and online
            self._log.info("uplink_connected",
                           broker=f"{self._settings.host}:{self._settings.port}",
                           protocol=str(self._protocol), backlog=self._outbox.rows)
            link.connected()
            link.working()  # connected, subscribed and online: the uplink's job
            try:
                # A failed task fails the group; the runner reads the group's reasons.
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._drain(client, ctx), name="uplink:drain")
                    tg.create_task(self._publish_state(client, ctx), name="uplink:state")
                    tg.create_task(self._receive(client), name="uplink:commands")
                    tg.create_task(self._publish_plan(client), name="uplink:plan")
            except asyncio.CancelledError:
                # Shutting down: say so ourselves; a clean DISCONNECT suppresses the will.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await client.publish(self.topic("status"), self._status(False, "shutdown"),
                                             qos=1, retain=True)
                self._log.info("uplink_offline_published")
                raise

    async def _drain(self, client: aiomqtt.Client, ctx: ComponentContext) -> None:
        # What the outbox held when this connection came up is the backlog; what is made
        # from now on is live. Live goes first, the backlog a batch at a time in between, on
        # ``backlog/…`` topics: the office reads those on a connection of their own, so a
        # fleet's hour of backlog never queues in front of a live record at the broker.
        # Records made in the last LIVE_WINDOW_S before it came up count as live too: a short
        # drop (a broker restart, a tunnel) must not send them behind a whole backlog.
        live_from = await self._outbox.seq_before(self._clock.now() - LIVE_WINDOW_S)
        live_upto = live_from  # live rows up to this are in flight or acked
        backlog_upto = 0  # backlog rows up to this are in flight or acked
        window = asyncio.Semaphore(self._cfg.inflight)
        max_bytes = self._cfg.batch_max_kb * 1024
        # The backlog and resends at their pace (telemetry/pace.py); live never waits for it.
        # The first batch after a random share of a batch's interval: a fleet that comes back
        # together after an outage spreads its first batches, as its reconnects are spread.
        batch = self._cfg.batch_max_records
        pace = Pace(rate=self._cfg.backlog_records_per_s, burst=batch, clock=self._clock,
                    credit=self._rng.uniform(0, batch))
        async with asyncio.TaskGroup() as tg:
            while True:
                # The backlog's tail, or the few records of a short outage, waits only for
                # its own credit, not a whole batch's (at most what is left: its seqs, or the
                # outbox's unacknowledged rows); a resend waits for a whole batch's.
                backlog_left = min(live_from - backlog_upto, self._outbox.rows)
                paced_s = pace.wait_s(backlog_left if backlog_upto < live_from else None)
                ranges = [PeekRange(after_seq=live_upto, limit=batch * 4)]
                if backlog_upto < live_from and paced_s == 0:
                    ranges.append(PeekRange(after_seq=backlog_upto, upto=live_from,
                                            limit=batch))
                found, rows = await self._outbox.peek_first(ranges)
                lane = "live" if found <= 0 else "backlog"
                if found < 0 and len(ranges) > 1:
                    backlog_upto = live_from  # every backlog row is acknowledged or in flight
                if not rows and paced_s == 0:
                    # Live records first: a resend goes one batch at a time in between.
                    rows = await self._outbox.peek_resend(limit=batch)
                    lane = "resend"
                if not rows:
                    if paced_s > 0 and (backlog_upto < live_from or self._outbox.resend_waiting):
                        await self._live_or_pace(live_upto, paced_s)
                    else:
                        await self._outbox.wait_new(live_upto)
                    continue
                if lane != "live":
                    pace.spend(len(rows))
                for message in build_messages(
                    rows, prefix=self.prefix if lane == "live" else self.topic(BACKLOG),
                    bus=self._bus, now=self._clock.now(),
                    max_records=batch, max_bytes=max_bytes,
                ):
                    await window.acquire()
                    tg.create_task(self._send(client, message, window,
                                              resend=lane == "resend"))
                    if lane == "live":
                        live_upto = message.seqs[-1]
                    elif lane == "backlog":
                        backlog_upto = message.seqs[-1]
                ctx.counters.update(self.counters, backlog=self._outbox.rows)
                ctx.beat()

    async def _live_or_pace(self, live_upto: int, paced_s: float) -> None:
        """Until a live record comes, or the backlog's pace lets the next batch go."""
        live = asyncio.ensure_future(self._outbox.wait_new(live_upto, resends=False))
        paced = asyncio.ensure_future(self._clock.sleep(paced_s))
        try:
            await asyncio.wait((live, paced), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (live, paced):
                task.cancel()
            await asyncio.gather(live, paced, return_exceptions=True)

    async def _send(self, client: aiomqtt.Client, message: Message,
                    window: asyncio.Semaphore, *, resend: bool = False) -> None:
        try:
            # aiomqtt's QoS 1 publish returns once the broker's PUBACK arrived.
            await client.publish(message.topic, message.payload, qos=1,
                                 timeout=self._settings.timeout_s)
            self.last_ack = self._clock.now()
            if not resend:  # a resent record was acknowledged once and is kept already
                await self._outbox.ack(message.seqs)
        finally:
            window.release()
        self.counters["messages"] += 1
        self.counters["records_resent" if resend else "records_sent"] += len(message.seqs)

    async def backlog(self) -> Backlog:
        """The outbox's unsent records and the oldest one's age, for the state message. A
        read that fails leaves the age out: the state still goes (it carries the alerts)."""
        try:
            oldest = await self._outbox.oldest_unsent_ts()
        except (BusdError, sqlite3.Error) as err:
            self._log.warning("outbox_backlog_unread", reason=str(err))
            oldest = None
        return Backlog(unsent=max(0, self._outbox.rows),
                       oldest_age_s=None if oldest is None
                       else round(max(0.0, self._clock.now() - oldest), 1))

    def state_payload(self, backlog: Backlog | None = None) -> bytes:
        values: dict[str, Any] = {}
        ages: dict[str, float] = {}
        stale: list[str] = []
        for name, view in self._state.snapshot(self._cfg.state_signals).items():
            if view.value is None or view.age_s is None:
                continue
            if view.stale:
                stale.append(name)
                ages[name] = round(view.age_s, 1)
            else:
                values[name] = compact(view.value, name)
        state = State(bus=self._bus, ts=utc_iso(self._clock.now()),
                      moving=moving_now(self._motion, self._state),
                      values=values, stale=stale or None, age_s=ages or None,
                      alerts=self._active_alerts() or None, outbox=backlog)
        return json.dumps(state.dump(), separators=(",", ":"), allow_nan=False).encode()

    async def _publish_state(self, client: aiomqtt.Client, ctx: ComponentContext) -> None:
        props = None
        if self._protocol == aiomqtt.ProtocolVersion.V5 and self._cfg.state_expiry_s:
            props = mqtt.expiry_properties(self._cfg.state_expiry_s)
        last = float("-inf")
        while True:
            moving = moving_now(self._motion, self._state)
            interval = (self._cfg.state_interval_moving_s if moving
                        else self._cfg.state_interval_parked_s)
            now = self._clock.monotonic()
            if now - last >= interval - 1e-6:
                last = now
                # QoS 0: a lost state is replaced by the next one; queueing it would be wrong.
                payload = self.state_payload(await self.backlog())
                await mqtt.publish(client, self.topic("state"), payload, qos=0,
                                   retain=True, properties=props)
                self.counters["state_published"] += 1
                ctx.beat()
            # Tick at the moving rate so a bus that starts moving is seen within a second.
            await self._clock.sleep(self._cfg.state_interval_moving_s)

    async def _receive(self, client: aiomqtt.Client) -> None:
        cmd_prefix = self.topic("cmd/")
        async for message in client.messages:
            topic = str(message.topic)
            if not topic.startswith(cmd_prefix):
                mqtt.acknowledge(client, message)
                continue
            name = topic[len(cmd_prefix):]
            payload = message.payload if isinstance(message.payload, bytes) else \
                str(message.payload or "").encode()
            self.counters["commands"] += 1
            result = await self._commands.handle(name, payload, received=self._keep_answer)
            # On a full disk the answer waits in the outbox's memory and goes out when the
            # disk takes it again: the link stays up, the command is not lost.
            await self._keep_answer(result)
            mqtt.acknowledge(client, message)

    async def _keep_answer(self, answer: CommandResult | CommandReceived) -> None:
        """A receipt or an answer, durable on cmd/result in order with the other records."""
        await self._outbox.keep("cmd_result", answer.kind, answer)

    async def _publish_plan(self, client: aiomqtt.Client) -> None:
        while True:
            # Cleared before the plan is read, never after the send: a plan that arrives
            # while the previous one awaits its PUBACK sets the event again, and goes out
            # next (latest wins; clearing after the send lost it for good).
            self._plan_changed.clear()
            plan = self._plan
            if plan is not None:
                await mqtt.publish(client, self.topic("plan"), self.plan_payload(plan),
                                   qos=1, retain=True)
            await self._plan_changed.wait()
