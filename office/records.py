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
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from office.archive import ArchivedRecord
from office.archive.models import MAX_SEQ
from telemetry.models import (
    SCHEMA_BATCH,
    SCHEMA_CMD_RESULT,
    SCHEMA_EVENT,
    SCHEMA_REPORT,
    SCHEMA_TELEMETRY,
)

DEFAULT_PREFIX: Final = "multimobile/v1/{bus_id}"

# The topics that carry durable records (numbered by the bus's outbox), under a bus's prefix.
RECORD_SUFFIXES: Final = ("telemetry", "event/+", "report/+", "cmd/result")
# The same records, sent late (an outage's backlog, a resend), under ``{prefix}/backlog/``
# (telemetry/uplink.py): archived as if on their own topic.
BACKLOG: Final = "backlog/"

# The schemas of single records (a batch, ``busd.batch/1``, carries several of them).
_RECORD_SCHEMAS: Final = frozenset({SCHEMA_TELEMETRY, SCHEMA_EVENT, SCHEMA_REPORT,
                                    SCHEMA_CMD_RESULT})


# The envelope is checked strictly; the data is archived as the bus wrote it. A bus on an
# older or newer catalogue must not lose records at the office: the live table and the
# derived tables read the data with the catalogue models and count what does not fit.
class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    seq: int = Field(ge=1)
    ts: str
    schema_: str = Field(alias="schema")
    kind: str
    data: JsonValue = None


class _Single(_Item):
    bus: str


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    bus: str
    ts: str
    schema_: str = Field(alias="schema")
    records: list[_Item] = Field(min_length=1)


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

    def filters(self, *, share: str | None = None, live: bool = True,
                backlog: bool = True) -> list[str]:
        """The subscriptions for every bus's records, ``live`` ones and/or the ``backlog``;
        ``share`` makes them MQTT 5 shared subscriptions (``$share/<group>/…``), so the
        broker spreads them over a group."""
        every = self.prefix.format(bus_id="+")
        head = f"$share/{share}/" if share else ""
        lanes = ([""] if live else []) + ([BACKLOG] if backlog else [])
        return [f"{head}{every}/{lane}{suffix}" for lane in lanes for suffix in RECORD_SUFFIXES]

    def command(self, bus: str, name: str) -> str:
        return f"{self.prefix.format(bus_id=bus)}/cmd/{name}"

    def results(self, bus: str) -> list[str]:
        """Where ``bus``'s answers come: ``cmd/result``, and under ``backlog/`` an answer the
        bus made before its connection came up (telemetry/uplink.py's lanes)."""
        head = self.prefix.format(bus_id=bus)
        return [f"{head}/cmd/result", f"{head}/{BACKLOG}cmd/result"]


def not_json(constant: str) -> object:
    """Python's json reads NaN and Infinity, which JSON does not have: a malformed message."""
    raise ValueError(f"{constant} is not JSON")


def is_record_topic(suffix: str) -> bool:
    suffix = suffix.removeprefix(BACKLOG)
    return (suffix in ("telemetry", "cmd/result")
            or (suffix.startswith(("event/", "report/")) and suffix.count("/") == 1))


def parse_records(topics: Topics, topic: str, payload: bytes, received: datetime) -> Parsed:
    """The durable records in one message on a record topic (a single record or a batch)."""
    where = topics.split(topic)
    if where is None or not is_record_topic(where[1]):
        return Parsed(None, "", rejected={Rejected.FOREIGN_TOPIC: 1}, reason=f"topic {topic}")
    bus, suffix = where
    suffix = suffix.removeprefix(BACKLOG)  # a late record is stored as any other
    try:
        msg, wire = _load(payload)
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
    fast = _fast_records(bus, suffix, msg, schema, received) if wire else None
    if fast is not None:
        return Parsed(bus, suffix, fast)
    items: list[tuple[int, str, str, str, object]]
    try:
        if schema == SCHEMA_BATCH:
            items = [(i.seq, i.ts, i.schema_, i.kind, i.data)
                     for i in _Batch.model_validate(msg).records]
        elif schema in _RECORD_SCHEMAS:
            one = _Single.model_validate(msg)
            items = [(one.seq, one.ts, one.schema_, one.kind, one.data)]
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


# The fast path: what the bus writes (busd/clock.py utc_iso, compact JSON) and nothing odd.
# Anything else goes the validating path, so the fast one never decides a refusal.
_BUS = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_ITEM_KEYS: Final = frozenset({"seq", "ts", "schema", "kind", "data"})
_BATCH_KEYS: Final = frozenset({"bus", "ts", "schema", "records"})
_REQUIRED: Final = frozenset({"seq", "ts", "schema", "kind"})


# An integer literal orjson would read as a float (beyond 64 bits): such a payload is read with
# json, which keeps it an int. Digits in a string match too, which only costs speed.
_LONG_DIGITS = re.compile(rb"\d{19,}")


def _load(payload: bytes) -> tuple[Any, bool]:
    """The payload's JSON, and whether orjson read it (about four times faster than json).

    orjson refuses NaN, Infinity, 1e999 and lone surrogates, as :func:`not_json` and the
    archive do; then json reads it, so what is refused, and why, is json's, as before."""
    if _LONG_DIGITS.search(payload) is None:
        try:
            return orjson.loads(payload), True
        except orjson.JSONDecodeError:
            pass
    return json.loads(payload, parse_constant=not_json), False


def _fast_records(bus: str, suffix: str, msg: dict[str, object], schema: object,
                  received: datetime) -> tuple[ArchivedRecord, ...] | None:
    """The records of a well-formed message that orjson read, checked without pydantic
    (about 5 µs a record instead of 45); None when anything is unusual, and the validating
    path decides.

    Every check is the validators' own (office/archive/models.py, the envelope models
    above) for the plain case: ASCII kind, ``ts`` as the bus writes it, integer ``seq``.
    Data whose JSON has an escape (a control character, NUL) goes the slow way; orjson has
    refused lone surrogates already.
    """
    if schema == SCHEMA_BATCH:
        items = msg.get("records")
        if (not msg.keys() <= _BATCH_KEYS or type(msg.get("ts")) is not str
                or type(items) is not list or not items):
            return None
    elif schema in _RECORD_SCHEMAS:
        if not msg.keys() - {"bus"} <= _ITEM_KEYS:
            return None
        items = [msg]
    else:
        return None
    if not _BUS.fullmatch(bus) or not suffix.isascii() or len(suffix) > 500:
        return None
    received = received.astimezone(UTC)
    out: list[ArchivedRecord] = []
    for item in items:
        if type(item) is not dict or not _REQUIRED <= item.keys() <= _ITEM_KEYS | {"bus"}:
            return None
        if item is not msg and "bus" in item:
            return None
        seq, ts, rec_schema, kind = item["seq"], item["ts"], item["schema"], item["kind"]
        if (type(seq) is not int or not 1 <= seq <= MAX_SEQ or type(ts) is not str
                or rec_schema not in _RECORD_SCHEMAS or type(kind) is not str
                or not 1 <= len(kind) <= 200 or not kind.isascii() or "\x00" in kind
                or not _TS.fullmatch(ts)):
            return None
        data = item.get("data")
        try:
            # orjson read it, so no NaN or infinity (orjson would write them as null).
            text = orjson.dumps(data).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson writes
            return None
        if "\\u" in text:  # control characters, NUL: the validators check them
            return None
        try:
            stamp = datetime.fromisoformat(ts).astimezone(UTC)
        except ValueError:  # a date that does not exist (February 30th)
            return None
        out.append(ArchivedRecord.checked_wire(
            bus=bus, seq=seq, ts=stamp, schema=str(rec_schema), kind=kind, topic=suffix,
            received=received, data=data, data_json=text))
    return tuple(out)


def _short(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"[:200]
    return str(err)[:200]
