"""From an MQTT message to archive records: topics, envelopes, and the bus check.

Pure: bytes and a topic in, :class:`Parsed` out, no I/O. Both the live office (``busd office``)
and the ingest workers (``busd office ingest``) use it, so they store the same records and refuse
the same ones.

Security: the topic names the bus (the broker's ACL lets bus ``lv-01`` publish only under its own
prefix), the payload names it again. A record whose payload names another bus than its topic is
refused and counted: a bus's credentials must never put records into another bus's history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol, cast

from pydantic import BaseModel, ValidationError

from office.archive import ArchivedRecord
from telemetry.models import (
    SCHEMA_BATCH,
    SCHEMA_CMD_RESULT,
    SCHEMA_EVENT,
    SCHEMA_REPORT,
    SCHEMA_TELEMETRY,
    Batch,
    CmdResultRecord,
    EventRecord,
    ReportRecord,
    TelemetryRecord,
)

DEFAULT_PREFIX: Final = "multimobile/v1/{bus_id}"

# The topics that carry durable records (numbered by the bus's outbox), under a bus's prefix.
RECORD_SUFFIXES: Final = ("telemetry", "event/+", "report/+", "cmd/result")

# The envelope of a single record, by its schema (a batch is ``Batch``).
_RECORD_MODELS: Final[dict[str, type[BaseModel]]] = {
    SCHEMA_TELEMETRY: TelemetryRecord,
    SCHEMA_EVENT: EventRecord,
    SCHEMA_REPORT: ReportRecord,
    SCHEMA_CMD_RESULT: CmdResultRecord,
}


class _Envelope(Protocol):
    """What every single-record model has (telemetry, event, report, cmd result)."""

    seq: int
    ts: str
    kind: str
    data: object


class Rejected(StrEnum):
    """Why a message (or a record in it) was not stored; each is counted."""

    MALFORMED = "malformed"  # not JSON, not an envelope we know, or a record the archive refuses
    BUS_MISMATCH = "bus_mismatch"  # the payload names another bus than the topic
    FOREIGN_TOPIC = "foreign_topic"  # not under the prefix, or not a record topic


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one message gave: records to archive, and how many were refused and why."""

    bus: str | None
    suffix: str
    records: tuple[ArchivedRecord, ...] = ()
    rejected: dict[Rejected, int] = field(default_factory=dict)
    reason: str = ""  # the first refusal's detail, for the log


class Topics:
    """The buses' topic layout: ``prefix`` with ``{bus_id}``, e.g. ``multimobile/v1/{bus_id}``."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if prefix.count("{bus_id}") != 1:
            raise ValueError("prefix must contain {bus_id} once")
        self.prefix = prefix
        self._head, _, self._tail = prefix.partition("{bus_id}")

    def split(self, topic: str) -> tuple[str, str] | None:
        """(bus, suffix) for a topic under the prefix; None for any other topic."""
        if not topic.startswith(self._head):
            return None
        bus, sep, after = topic[len(self._head):].partition("/")
        if not bus or not sep:
            return None
        after = "/" + after
        if not after.startswith(self._tail + "/"):
            return None
        return bus, after[len(self._tail) + 1:]

    def filters(self, *, share: str | None = None) -> list[str]:
        """The subscriptions for every bus's records; ``share`` makes them MQTT 5 shared
        subscriptions (``$share/<group>/…``), so the broker spreads them over a group."""
        every = self.prefix.format(bus_id="+")
        head = f"$share/{share}/" if share else ""
        return [f"{head}{every}/{suffix}" for suffix in RECORD_SUFFIXES]

    def command(self, bus: str, name: str) -> str:
        return f"{self.prefix.format(bus_id=bus)}/cmd/{name}"


def not_json(constant: str) -> object:
    """Python's json reads NaN and Infinity, which JSON does not have: a malformed message."""
    raise ValueError(f"{constant} is not JSON")


def is_record_topic(suffix: str) -> bool:
    return (suffix in ("telemetry", "cmd/result")
            or (suffix.startswith(("event/", "report/")) and suffix.count("/") == 1))


def parse_records(topics: Topics, topic: str, payload: bytes, received: datetime) -> Parsed:
    """The durable records in one message on a record topic (a single record or a batch)."""
    where = topics.split(topic)
    if where is None or not is_record_topic(where[1]):
        return Parsed(None, "", rejected={Rejected.FOREIGN_TOPIC: 1}, reason=f"topic {topic}")
    bus, suffix = where
    try:
        msg = json.loads(payload, parse_constant=not_json)
        if not isinstance(msg, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as err:
        return Parsed(bus, suffix, rejected={Rejected.MALFORMED: 1}, reason=str(err)[:200])
    schema = msg.get("schema")
    # The bus check comes first, before any content is trusted: a batch names its bus once.
    if msg.get("bus") != bus:
        named = msg.get("bus")
        count = len(msg["records"]) if schema == SCHEMA_BATCH and isinstance(
            msg.get("records"), list) else 1
        return Parsed(bus, suffix, rejected={Rejected.BUS_MISMATCH: max(1, count)},
                      reason=f"payload bus {str(named)[:64]!r} on bus {bus!r}'s topic")
    items: list[tuple[int, str, str, str, object]]
    try:
        if schema == SCHEMA_BATCH:
            items = [(i.seq, i.ts, i.schema_, i.kind, i.data)
                     for i in Batch.model_validate(msg).records]
        elif isinstance(schema, str) and schema in _RECORD_MODELS:
            one = cast(_Envelope, _RECORD_MODELS[schema].model_validate(msg))
            body = one.data.model_dump(mode="json") if isinstance(one.data, BaseModel) \
                else one.data
            items = [(one.seq, one.ts, schema, one.kind, body)]
        else:
            raise ValueError(f"not a record schema: {str(schema)[:100]!r}")
    except (ValidationError, ValueError) as err:
        return Parsed(bus, suffix, rejected={Rejected.MALFORMED: 1}, reason=_short(err))
    records: list[ArchivedRecord] = []
    malformed = 0
    reason = ""
    for seq, ts, rec_schema, kind, data in items:
        try:
            records.append(ArchivedRecord.model_validate(
                {"bus": bus, "seq": seq, "ts": ts, "schema": rec_schema, "kind": kind,
                 "topic": suffix, "received": received, "data": data}))
        except ValidationError as err:
            malformed += 1
            reason = reason or _short(err)
    return Parsed(bus, suffix, tuple(records),
                  {Rejected.MALFORMED: malformed} if malformed else {}, reason)


def _short(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"[:200]
    return str(err)[:200]
