"""The live office: ``busd office``. Subscribes to every bus, shows the fleet, archives.

Keeps what each bus last said (status, state, plan), archives every durable record it hears
(``--archive``: a SQLite file or a PostgreSQL URL, see :mod:`office.archive`), and shows a live
table: bus, online, SOC, position age, current/next stop, last record, gaps, duplicates. The
tests and the scenario runner use :class:`Office` as their subscriber, so what they check is
what the office staff see.

It connects with a persistent session (fixed client id, QoS 1 subscription), so while it is away
the broker keeps the buses' records for it. A fleet's archive is fed by ``busd office ingest``
workers instead (:mod:`office.ingest`); this one is for a laptop, one municipality, the demo.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import structlog
from pydantic import ValidationError

from busd.clock import Clock, SystemClock
from busd.event_catalog import parse_event
from busd.reconnect import Link, Reconnector
from busd.supervisor import Backoff, ComponentContext, ComponentHealth
from office.archive import Archive, ArchivedRecord, open_archive
from office.records import (
    DEFAULT_PREFIX,
    Rejected,
    Topics,
    is_record_topic,
    not_json,
    parse_records,
)
from telemetry import mqtt

log = structlog.get_logger("office.live")


@dataclass
class BusView:
    """What the office knows of one bus."""

    bus: str
    online: bool | None = None
    status: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0
    last_record_at: float | None = None
    records: int = 0
    duplicates: int = 0
    # The latest command answers only (bounded; the archive keeps them all).
    cmd_results: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))


class Office:
    def __init__(
        self,
        *,
        settings: mqtt.BrokerSettings,
        archive: Archive | None,
        prefix: str = DEFAULT_PREFIX,
        client_id: str = "busd-office",
        clock: Clock | None = None,
        persistent: bool = True,
    ) -> None:
        self._topics = Topics(prefix)
        # False for a listener that wants only the live view (the web): its session is not
        # kept by the broker while it is away.
        self._persistent = persistent
        self._settings = settings
        self._archive = archive
        self._client_id = client_id
        self._clock = clock or SystemClock()
        self.subscription = prefix.format(bus_id="+") + "/#"
        self.fleet: dict[str, BusView] = {}
        self.malformed = 0
        self.rejected: Counter[Rejected] = Counter()
        self.invalid = 0  # archived records whose data the event catalogue does not know
        self.connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._protocol = mqtt.first_protocol(settings)
        self._log = log.bind(component="office")
        # Not a supervised part, but its connection reports like one (``busd office``).
        self.health = ComponentHealth("office", critical=False)
        self._ctx = ComponentContext(self.health, self._clock)

    # --- receiving -------------------------------------------------------------------

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            raise RuntimeError("this office archives nothing")
        return self._archive

    async def handle(self, topic: str, payload: bytes) -> None:
        where = self._topics.split(topic)
        if where is None:
            return
        bus, suffix = where
        if suffix.startswith("cmd/") and suffix != "cmd/result":
            return  # commands to the bus (maybe our own)
        view = self.fleet.setdefault(bus, BusView(bus))
        if not payload:
            return  # a cleared retained message
        if is_record_topic(suffix):
            await self._records(view, topic, payload)
        else:
            self._live(view, topic, suffix, payload)
        self._changed.set()

    def _live(self, view: BusView, topic: str, suffix: str, payload: bytes) -> None:
        try:
            msg = json.loads(payload, parse_constant=not_json)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):
            self.malformed += 1
            self._log.warning("malformed_message", topic=topic, size=len(payload))
            return
        if suffix == "status":
            view.status = msg
            view.online = bool(msg.get("online"))
        elif suffix == "state":
            view.state = msg
        elif suffix == "plan":
            view.plan = msg  # one envelope: the plan, itinerary, progress, projection

    async def _records(self, view: BusView, topic: str, payload: bytes) -> None:
        now = self._clock.now()
        parsed = parse_records(self._topics, topic, payload, datetime.fromtimestamp(now, UTC))
        for why, n in parsed.rejected.items():
            self.rejected[why] += n
            if why is Rejected.MALFORMED:
                self.malformed += n
            self._log.warning("record_rejected", reason=why.value, records=n, topic=topic,
                              detail=parsed.reason)
        if not parsed.records:
            return
        if self._archive is not None:
            result = await self._archive.insert_batch(parsed.records)
            view.records += result.inserted
            view.duplicates += result.duplicates
        view.last_seq = max(view.last_seq, max(r.seq for r in parsed.records))
        view.last_record_at = now
        view.cmd_results.extend(r.data for r in parsed.records if r.kind == "cmd_result")
        self._check_events(bus=view.bus, topic=topic, records=parsed.records)

    def _check_events(self, *, bus: str, topic: str, records: tuple[ArchivedRecord, ...]) -> None:
        """Events, reports and answers are read with the bus's own catalogue models: one that
        does not fit (a bus on another version) is archived all the same, and counted."""
        for record in records:
            if record.kind == "sample":
                continue
            try:
                kind = parse_event(record.data).kind
            except ValidationError as err:
                reason = str(err).splitlines()[0]
            else:
                if kind == record.kind:
                    continue
                reason = f"kind {kind!r} in a record of kind {record.kind!r}"
            self.invalid += 1
            self._log.warning("record_not_in_catalogue", bus=bus, topic=topic,
                              seq=record.seq, reason=reason)

    async def wait_until(self, predicate: Callable[[], Any], *, timeout: float) -> None:
        """Wait for a condition on what has been received; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return
                self._changed.clear()
                await self._changed.wait()

    # --- connection --------------------------------------------------------------------

    async def run(self) -> None:
        """Receive until cancelled, reconnecting with back-off (health in :attr:`health`)."""
        settings = self._settings
        runner = Reconnector(
            ctx=self._ctx, clock=self._clock, target=f"broker {settings.host}:{settings.port}",
            backoff=Backoff(initial_s=0.4, max_s=30.0), retry_on=(aiomqtt.MqttError, OSError),
        )
        await runner.run(self._session)

    async def _session(self, link: Link) -> None:
        try:
            await self._receive(link)
        except aiomqtt.MqttError as err:
            if not (mqtt.refused_protocol(err) and self._settings.protocol == "auto"
                    and self._protocol == aiomqtt.ProtocolVersion.V5):
                raise
            self._protocol = aiomqtt.ProtocolVersion.V311
            await self._receive(link)

    async def _receive(self, link: Link) -> None:
        client = mqtt.make_client(self._settings, identifier=self._client_id,
                                  protocol=self._protocol, persistent_session=self._persistent,
                                  max_queued_incoming=10_000)
        try:
            async with client:
                self._client = client
                await client.subscribe(self.subscription, qos=1)
                self._log.info("office_connected", subscription=self.subscription)
                link.connected()
                link.working()  # connected and subscribed: the office hears the fleet
                self.connected.set()
                async for message in client.messages:
                    await self.handle(str(message.topic), message.payload)
        finally:
            self._client = None
            self.connected.clear()

    async def send_command(self, bus: str, name: str, payload: bytes | dict[str, Any], *,
                           expiry_s: float | None = None) -> None:
        """Publish a command to a bus (QoS 1); needs a live connection. It expires (MQTT 5)
        after ``expiry_s`` seconds, or its kind's default (:mod:`office.dispatch.expiry`)."""
        from office.dispatch.expiry import default_expiry_s

        if self._client is None:
            raise RuntimeError("office is not connected")
        body = payload if isinstance(payload, bytes) else \
            json.dumps(payload, allow_nan=False).encode()
        properties = None
        if self._protocol == aiomqtt.ProtocolVersion.V5:
            seconds = default_expiry_s(name) if expiry_s is None else expiry_s
            properties = mqtt.expiry_properties(max(1, math.ceil(seconds)))
        await self._client.publish(self._topics.command(bus, name), body, qos=1,
                                   properties=properties)

    # --- the terminal table ----------------------------------------------------------------

    async def table(self) -> Any:
        from rich.table import Table  # only the interactive office needs rich

        table = Table(title="MultiMobile fleet")
        for col in ("bus", "online", "SOC %", "position age", "current / next stop",
                    "last record", "gaps", "dups"):
            table.add_column(col)
        now = self._clock.now()
        for bus, v in sorted(self.fleet.items()):
            values = v.state.get("values", {})
            ages = v.state.get("age_s", {})
            soc = values.get("battery.soc")
            pos_age = ages.get("gps.lat")
            stops = " / ".join(current_and_next(v.plan))
            last = (f"#{v.last_seq}, {now - v.last_record_at:.0f} s ago"
                    if v.last_record_at else "-")
            gaps = await self._archive.gaps(bus) if self._archive is not None else []
            table.add_row(bus, {True: "online", False: "OFFLINE", None: "?"}[v.online],
                          "-" if soc is None else f"{soc:.1f}",
                          "-" if pos_age is None else f"{pos_age:.0f} s", stops, last,
                          str(sum(g.missing for g in gaps)), str(v.duplicates))
        return table


def _not_json(constant: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON does not have: a malformed message."""
    raise ValueError(f"{constant} is not JSON")


def place_names(document: Any) -> dict[str, str]:
    """Each stop's and charger's name by id (the id where it has none), from the retained
    ``plan`` document."""
    plan = document.get("plan") if isinstance(document, dict) else None
    if not isinstance(plan, dict):
        return {}
    return {str(p["id"]): str(p.get("name") or p["id"])
            for key in ("stops", "chargers") for p in plan.get(key) or []
            if isinstance(p, dict) and p.get("id")}


def current_and_next(document: Any) -> tuple[str, str]:
    """Where the bus is and where it goes next, by name, from the retained ``plan``
    document (the planner's: the plan, its itinerary, what is done and where it is)."""
    if not isinstance(document, dict) or not isinstance(document.get("plan"), dict):
        return "-", "-"
    plan = document["plan"]
    names = place_names(document)
    depot = plan.get("depot") if isinstance(plan.get("depot"), dict) else {}
    at = document.get("at")
    done = set(document.get("done") or [])
    ahead = [i.get("id") for i in document.get("itinerary") or []
             if isinstance(i, dict) and i.get("id") not in done and i.get("id") != at]
    current = names.get(str(at), at) if at else "-"
    upcoming = names.get(str(ahead[0]), ahead[0]) if ahead else depot.get("name") or "depot"
    return str(current), str(upcoming)


async def run_office(
    *,
    settings: mqtt.BrokerSettings,
    archive_url: str | None,
    prefix: str = DEFAULT_PREFIX,
    client_id: str = "busd-office",
    export_csv: Path | None = None,
    live: bool = True,
    duration_s: float | None = None,
) -> int:
    """The ``busd office`` command. Returns an exit status."""
    async with open_archive(archive_url or "sqlite://") as archive:
        if export_csv is not None:
            from office.export import export_csv as export

            n = await export(archive, export_csv)
            print(f"exported {n} records to {export_csv}")
            return 0
        office = Office(settings=settings, archive=archive, prefix=prefix, client_id=client_id)
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(office.run())
            try:
                async with asyncio.timeout(duration_s):
                    if live:
                        from rich.live import Live

                        with Live(await office.table(), refresh_per_second=2) as screen:
                            while True:
                                await asyncio.sleep(1.0)
                                screen.update(await office.table())
                    else:
                        await asyncio.Event().wait()
            except TimeoutError:
                pass
            finally:
                runner.cancel()
        return 0


def office_main(args: argparse.Namespace) -> int:
    """``busd office`` without a sub-command: the live table (and archive)."""
    from office.cli import archive_url, settings_from_args

    if args.export_csv is not None and args.archive is None:
        print("--export-csv needs --archive", flush=True)
        return 2
    return asyncio.run(run_office(
        settings=settings_from_args(args),
        archive_url=archive_url(args.archive) if args.archive else None,
        prefix=args.prefix, client_id=args.client_id, export_csv=args.export_csv,
        live=not args.no_live, duration_s=args.duration,
    ))
