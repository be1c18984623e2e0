"""The office's side: ``busd office``. Subscribes to every bus, archives, shows the fleet.

Unpacks batches, drops duplicates by ``(bus, seq)``, reports gaps (lost
records), keeps every durable record in the archive (SQLite, ``--archive``,
exportable to CSV), and shows a live table: bus, online, SOC, position age,
current/next stop, last record. The tests use :class:`Office` as their
subscriber, so what the tests check is what the office staff see.

The office connects with a persistent session (fixed client id, QoS 1
subscription), so while it is away the broker keeps the buses' records for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import structlog
from pydantic import ValidationError

from busd.clock import Clock, SystemClock
from busd.event_catalog import parse_event
from busd.reconnect import Link, Reconnector
from busd.supervisor import Backoff, ComponentContext, ComponentHealth
from telemetry import mqtt
from telemetry.archive import Archive
from telemetry.models import SCHEMA_BATCH

log = structlog.get_logger("telemetry.office")

DEFAULT_PREFIX = "multimobile/v1/{bus_id}"


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
        archive: Archive,
        prefix: str = DEFAULT_PREFIX,
        client_id: str = "busd-office",
        clock: Clock | None = None,
    ) -> None:
        if "{bus_id}" not in prefix:
            raise ValueError("prefix must contain {bus_id}")
        self._settings = settings
        self.archive = archive
        self._prefix = prefix
        self._client_id = client_id
        self._clock = clock or SystemClock()
        head, _, tail = prefix.partition("{bus_id}")
        self._head, self._tail = head, tail
        self.subscription = prefix.format(bus_id="+") + "/#"
        self.fleet: dict[str, BusView] = {}
        self.malformed = 0
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

    def _split(self, topic: str) -> tuple[str, str] | None:
        """(bus, suffix) for a topic under the prefix."""
        if not topic.startswith(self._head):
            return None
        rest = topic[len(self._head):]
        bus, _, after = rest.partition("/")
        after = "/" + after
        if not after.startswith(self._tail + "/"):
            return None
        return bus, after[len(self._tail) + 1:]

    async def handle(self, topic: str, payload: bytes) -> None:
        where = self._split(topic)
        if where is None:
            return
        bus, suffix = where
        if suffix.startswith("cmd/") and suffix != "cmd/result":
            return  # commands to the bus (maybe our own)
        view = self.fleet.setdefault(bus, BusView(bus))
        if not payload:
            return  # a cleared retained message
        try:
            msg = json.loads(payload, parse_constant=_not_json)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):
            self.malformed += 1
            self._log.warning("malformed_message", topic=topic, size=len(payload))
            return
        schema = msg.get("schema")
        if suffix == "status":
            view.status = msg
            view.online = bool(msg.get("online"))
        elif suffix == "state":
            view.state = msg
        elif suffix == "plan":
            view.plan = msg  # one envelope: the plan, itinerary, progress, projection
        elif schema == SCHEMA_BATCH or "seq" in msg:
            records = msg.get("records", []) if schema == SCHEMA_BATCH else [msg]
            good = [r for r in records if isinstance(r, dict) and isinstance(r.get("seq"), int)]
            self.malformed += len(records) - len(good)
            new, dups = await self.archive.add(bus, suffix, self._clock.now(), good)
            view.records += new
            view.duplicates += dups
            if good:
                view.last_seq = max(view.last_seq, max(r["seq"] for r in good))
                view.last_record_at = self._clock.now()
            view.cmd_results.extend(
                r.get("data", {}) for r in good if r.get("kind") == "cmd_result")
            self._check_events(bus, suffix, good)
        self._changed.set()

    def _check_events(self, bus: str, topic: str, records: list[dict[str, Any]]) -> None:
        """Events, reports and answers are read with the bus's own catalogue models: one that
        does not fit (a bus on another version) is archived all the same, and counted."""
        if not topic.startswith(("event/", "report/", "cmd/result")):
            return
        for record in records:
            try:
                event = parse_event(record.get("data"))
            except ValidationError as err:
                reason = str(err).splitlines()[0]
            else:
                if event.kind == record.get("kind"):
                    continue
                reason = f"kind {event.kind!r} in a record of kind {record.get('kind')!r}"
            self.invalid += 1
            self._log.warning("record_not_in_catalogue", bus=bus, topic=topic,
                              seq=record.get("seq"), reason=reason)

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
                                  protocol=self._protocol, persistent_session=True,
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
                    payload = message.payload
                    if not isinstance(payload, bytes):
                        payload = str(payload or "").encode()
                    await self.handle(str(message.topic), payload)
        finally:
            self._client = None
            self.connected.clear()

    async def send_command(self, bus: str, name: str, payload: bytes | dict[str, Any]) -> None:
        """Publish a command to a bus (QoS 1); needs a live connection."""
        if self._client is None:
            raise RuntimeError("office is not connected")
        body = payload if isinstance(payload, bytes) else \
            json.dumps(payload, allow_nan=False).encode()
        await self._client.publish(f"{self._prefix.format(bus_id=bus)}/cmd/{name}", body, qos=1)

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
            gaps = await self.archive.gaps(bus)
            table.add_row(bus, {True: "online", False: "OFFLINE", None: "?"}[v.online],
                          "-" if soc is None else f"{soc:.1f}",
                          "-" if pos_age is None else f"{pos_age:.0f} s", stops, last,
                          str(sum(b - a + 1 for a, b in gaps)), str(v.duplicates))
        return table


def _not_json(constant: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON does not have: a malformed message."""
    raise ValueError(f"{constant} is not JSON")


def current_and_next(document: Any) -> tuple[str, str]:
    """Where the bus is and where it goes next, by name, from the retained ``plan``
    document (the planner's: the plan, its itinerary, what is done and where it is)."""
    if not isinstance(document, dict) or not isinstance(document.get("plan"), dict):
        return "-", "-"
    plan = document["plan"]
    names = {p.get("id"): p.get("name") or p.get("id")
             for key in ("stops", "chargers") for p in plan.get(key) or []
             if isinstance(p, dict)}
    depot = plan.get("depot") if isinstance(plan.get("depot"), dict) else {}
    at = document.get("at")
    done = set(document.get("done") or [])
    ahead = [i.get("id") for i in document.get("itinerary") or []
             if isinstance(i, dict) and i.get("id") not in done and i.get("id") != at]
    current = names.get(at, at) if at else "-"
    upcoming = names.get(ahead[0], ahead[0]) if ahead else depot.get("name") or "depot"
    return str(current), str(upcoming)


async def run_office(
    *,
    settings: mqtt.BrokerSettings,
    archive_path: Path | None,
    prefix: str = DEFAULT_PREFIX,
    client_id: str = "busd-office",
    export_csv: Path | None = None,
    live: bool = True,
    duration_s: float | None = None,
) -> int:
    """The ``busd office`` command. Returns an exit status."""
    archive = await Archive(archive_path or ":memory:").open()
    try:
        if export_csv is not None:
            n = await archive.export_csv(export_csv)
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
    finally:
        await archive.close()


def add_office_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``office`` to the ``busd`` CLI; the parser's ``func(args)`` returns an exit code."""
    p = subparsers.add_parser("office", help="the office's side: live fleet table and archive",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("BUSD_OFFICE_HOST", "localhost"))
    p.add_argument("--port", type=int, default=None, help="default 1883, or 8883 with --tls")
    p.add_argument("--username", default=os.environ.get("BUSD_OFFICE_USERNAME"))
    p.add_argument("--password-file", type=Path,
                   help="file with the password (or set BUSD_OFFICE_PASSWORD)")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca-file", type=Path, help="CA that signed the broker's certificate")
    p.add_argument("--cert-file", type=Path, help="client certificate")
    p.add_argument("--key-file", type=Path, help="client private key")
    p.add_argument("--no-check-hostname", action="store_true")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix with {bus_id}")
    p.add_argument("--client-id", default="busd-office",
                   help="fixed, so the broker keeps records while the office is away")
    p.add_argument("--archive", type=Path, help="SQLite file archiving every record")
    p.add_argument("--export-csv", type=Path, metavar="OUT",
                   help="write the archive as CSV and exit")
    p.add_argument("--no-live", action="store_true", help="no table, just archive")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=office_main)
    return p


def settings_from_args(args: argparse.Namespace) -> mqtt.BrokerSettings:
    password = os.environ.get("BUSD_OFFICE_PASSWORD")
    if args.password_file is not None:
        password = args.password_file.read_text(encoding="utf-8").strip()
    return mqtt.BrokerSettings(
        host=args.host, port=args.port or (8883 if args.tls else 1883),
        username=args.username, password=password, tls=args.tls, ca_file=args.ca_file,
        cert_file=args.cert_file, key_file=args.key_file,
        check_hostname=not args.no_check_hostname,
    )


def office_main(args: argparse.Namespace) -> int:
    if args.export_csv is not None and args.archive is None:
        print("--export-csv needs --archive", flush=True)
        return 2
    return asyncio.run(run_office(
        settings=settings_from_args(args), archive_path=args.archive, prefix=args.prefix,
        client_id=args.client_id, export_csv=args.export_csv, live=not args.no_live,
        duration_s=args.duration,
    ))


def main(argv: list[str] | None = None) -> int:
    """``python -m telemetry.office`` until the lead wires ``busd office``."""
    parser = argparse.ArgumentParser(prog="busd")
    add_office_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
