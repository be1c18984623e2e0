"""The archive's typed contracts: a record in and out, an insert's outcome, a gap.

A record is one durable message of one bus, as the outbox numbered it: ``(bus, seq)`` names it,
and ``ts`` is the time the bus stamped when it made the record. The bus stamps ``ts`` once and
stores the record whole in its outbox, so every resend of ``(bus, seq)`` carries the same ``ts``
(tests/test_office_archive.py checks that on the real outbox). The PostgreSQL back end relies on
it: its primary key must contain the partition key, so it is ``(bus, seq, ts)``, and a resend is
recognised as a duplicate only because its ``ts`` is the original's.

``data`` stays JSON (TEXT in SQLite, JSONB in PostgreSQL), as the bus wrote it; the derived
tables (visits, legs, charging, daily reports, plan changes, alerts) are filled from it with the
event catalogue (office/archive/derived/).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from busd.errors import BusdError

# A bus id is one MQTT topic level: no separators or wildcards, printable, bounded.
BusId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# PostgreSQL stores seq as bigint.
MAX_SEQ = 2**63 - 1


class ArchiveError(BusdError):
    """The archive could not do what was asked (the database refused, the schema is unknown)."""


class ArchiveUnreachable(ArchiveError):
    """The archive's server did not answer: worth trying again later, unlike other errors."""


def _check_strings(value: Any, where: str) -> None:
    """Refuse what PostgreSQL cannot store (NUL, lone surrogates), so both back ends agree."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: NUL character in a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"{where}: string is not valid Unicode ({err.reason})") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, where)
            _check_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_strings(item, f"{where}[{i}]")


def dump_json(value: Any) -> str:
    """Compact JSON; NaN and Infinity are not JSON and are refused."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


class ArchivedRecord(BaseModel):
    """One durable record of one bus, as archived."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bus: BusId
    seq: int = Field(ge=0, le=MAX_SEQ)
    ts: AwareDatetime
    schema_: str = Field(alias="schema", min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=200)
    topic: str = Field(min_length=1, max_length=500)
    received: AwareDatetime
    data: Any = None
    # The data's JSON text, when the record was made from a wire message that already had it
    # checked (:meth:`checked_wire`): the insert then does not dump ``data`` again.
    _wire_json: str | None = PrivateAttr(default=None)

    @field_validator("ts", "received")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("schema_", "kind", "topic")
    @classmethod
    def _text(cls, value: str) -> str:
        _check_strings(value, "text")
        return value

    @field_validator("data", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        try:
            text = dump_json(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"payload is not JSON: {err}") from None
        # The stored form is what comes back out: tuples become lists, and so on.
        loaded = json.loads(text)
        _check_strings(loaded, "data")
        return loaded

    def __eq__(self, other: object) -> bool:
        # The cached JSON text is how the record came, not what it is.
        if not isinstance(other, ArchivedRecord):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:  # frozen: hashable by its fields, as pydantic makes it
        return hash(tuple(self.__dict__.values()))

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        if update:  # the cached JSON text was the original's data
            object.__setattr__(copied, "__pydantic_private__", {"_wire_json": None})
        return copied

    def data_json(self) -> str:
        # Read from pydantic's private dict: the attribute goes through a slow __getattr__.
        private = self.__pydantic_private__
        text = private.get("_wire_json") if private else None
        return text if text is not None else dump_json(self.data)

    @classmethod
    def checked_wire(cls, *, bus: str, seq: int, ts: datetime, schema: str, kind: str,
                     topic: str, received: datetime, data: Any, data_json: str) -> ArchivedRecord:
        """A record whose every field the caller has checked as the validators would, with
        ``data_json`` = :func:`dump_json` of ``data`` (office/records.py's fast path for the
        common well-formed record): skips pydantic's validation, about 30 µs a record."""
        # What model_construct does, without its per-field loop (a third of the fast path's
        # cost); tests/test_office_records.py compares the result with a validated record.
        record = object.__new__(cls)
        set_ = object.__setattr__
        set_(record, "__dict__", {"bus": bus, "seq": seq, "ts": ts, "schema_": schema,
                                  "kind": kind, "topic": topic, "received": received,
                                  "data": data})
        set_(record, "__pydantic_fields_set__", set(_ALL_FIELDS))
        set_(record, "__pydantic_extra__", None)
        set_(record, "__pydantic_private__", {"_wire_json": data_json})
        return record


_ALL_FIELDS = frozenset(ArchivedRecord.model_fields)


@dataclass(frozen=True, slots=True)
class InsertResult:
    """What one batch did: records stored for the first time, and records already there.

    ``unfit``: inserted event records whose data does not fit the event catalogue; they are
    archived as they came, but give no derived rows."""

    inserted: int
    duplicates: int
    unfit: int = 0


@dataclass(frozen=True, slots=True)
class Gap:
    """Records of ``bus`` numbered ``first``..``last`` are missing from the archive.

    ``after`` is the ``ts`` of the last record archived before the gap and ``before`` that of the
    first after it: the lost records were made between the two. ``day`` is ``after``'s local day,
    the day the loss began; a gap is listed under that one day.
    """

    bus: str
    first: int
    last: int
    after: datetime
    before: datetime
    day: date

    @property
    def missing(self) -> int:
        return self.last - self.first + 1
