"""Every MQTT payload, as pydantic models: the source of docs/schema/*.json.

Every message carries ``bus``, ``ts`` (UTC ISO 8601 with ms) and ``schema``
(name/major version: a consumer dispatches on it). Durable records, the ones
that went through the outbox, also carry ``seq``: contiguous per bus across
restarts, so the office drops duplicates and sees any loss as a gap.

A batch (``busd.batch/1``) carries several durable records of one topic in one
message; its ``records`` are the same records without the repeated ``bus``.

The ``data`` of events, reports and command answers is a model of the event
catalogue (busd/event_catalog.py); each kind has its own record model here
(:data:`EVENT_RECORDS`), and so its own schema file. Numbers must be finite.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from busd.event_catalog import (
    EVENT_MODELS,
    REPORT_MODELS,
    BusEvent,
    CommandReceived,
    CommandResult,
    DailyReport,
    Event,
    EventModel,
    Item,
    ProjectionDoc,
    Proposal,
    kind_of,
)
from busd.plan import Plan

Scalar = float | int | bool | str

SCHEMA_STATUS: Final = "busd.status/1"
SCHEMA_STATE: Final = "busd.state/1"
SCHEMA_TELEMETRY: Final = "busd.telemetry/1"
SCHEMA_EVENT: Final = "busd.event/1"
SCHEMA_REPORT: Final = "busd.report/1"
SCHEMA_CMD_RESULT: Final = "busd.cmd_result/1"
SCHEMA_BATCH: Final = "busd.batch/1"
SCHEMA_PLAN: Final = "busd.plan/1"
SCHEMA_CMD_PING: Final = "busd.cmd.ping/1"
SCHEMA_CMD_PLAN: Final = "busd.cmd.plan/1"
SCHEMA_CMD_RESEND: Final = "busd.cmd.resend/1"
# The largest seq range one cmd/resend may ask for; the office splits longer gaps.
MAX_RESEND_RANGE: Final = 100_000
# A seq is an SQLite INTEGER on the bus and a bigint in the office's archive.
MAX_SEQ: Final = 2**63 - 1

# Which record schema each outbox stream publishes with, and on which topic.
STREAM_SCHEMAS = {
    "telemetry": SCHEMA_TELEMETRY,
    "event": SCHEMA_EVENT,
    "report": SCHEMA_REPORT,
    "cmd_result": SCHEMA_CMD_RESULT,
}


class _Model(BaseModel):
    # "schema" shadows a BaseModel attribute, hence the alias; extra="forbid"
    # so a typo in an office-side producer is an error, not a silent field.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Status(_Model):
    """``.../status``, retained. The last will is the same with online=false."""

    bus: str
    ts: str = Field(description="UTC ISO 8601 with ms; for the will: when it was registered")
    schema_: Literal["busd.status/1"] = Field(default=SCHEMA_STATUS, alias="schema")
    online: bool
    version: str
    boot: str = Field(description="when this daemon process started")
    reason: str | None = Field(None, description="why offline: shutdown, connection_lost")


class Backlog(_Model):
    """The outbox's records the broker has not acknowledged yet (what the office still
    waits for)."""

    unsent: int = Field(ge=0, description="records in the outbox not yet acknowledged")
    oldest_age_s: float | None = Field(
        None, ge=0, description="how old the oldest unsent record is, seconds; absent when "
        "nothing waits")


class State(_Model):
    """``.../state``, retained: the current signals. Stale signals are listed, never valued."""

    bus: str
    ts: str
    schema_: Literal["busd.state/1"] = Field(default=SCHEMA_STATE, alias="schema")
    moving: bool
    values: dict[str, Scalar] = Field(
        description="every fresh signal (within its freshness limit), rounded to its resolution")
    stale: list[str] | None = Field(None, description="signals received once but now stale; "
                                    "absent when none is")
    age_s: dict[str, float] | None = Field(
        None, description="how old each stale signal's last value is; absent when none is")
    alerts: dict[str, str] | None = Field(
        None, description="active alerts, kind: message; absent when none is. Live, not "
        "durable: the alert events are the record, but while the disk refuses writes "
        "(storage_unwritable) this is how the office learns of it at once")
    outbox: Backlog | None = Field(
        None, description="the outbox's backlog when this state was made: how far behind "
        "the office's archive is, as the bus sees it")


class TelemetryData(_Model):
    """One sample. ``full`` samples hold every fresh signal; the others only what changed."""

    full: bool
    values: dict[str, Scalar]
    stale: list[str] = Field(default_factory=list, description="went stale since last sample")


class _Record(_Model):
    bus: str
    ts: str = Field(description="when the record was made (not when it was sent)")
    seq: int = Field(ge=1, description="contiguous per bus; a gap is a lost record")
    kind: str


class TelemetryRecord(_Record):
    """``.../telemetry``, QoS 1."""

    schema_: Literal["busd.telemetry/1"] = Field(default=SCHEMA_TELEMETRY, alias="schema")
    kind: Literal["sample"] = "sample"
    data: TelemetryData


class EventRecord(_Record):
    """``.../event/{kind}``, QoS 1: any event of the catalogue (``kind`` = ``data.kind``).
    ``data_dropped`` reports what the full outbox lost."""

    schema_: Literal["busd.event/1"] = Field(default=SCHEMA_EVENT, alias="schema")
    data: Event

    @model_validator(mode="after")
    def _one_kind(self) -> EventRecord:
        if self.kind != self.data.kind:
            raise ValueError(f"record kind {self.kind!r} but data of kind {self.data.kind!r}")
        return self


class ReportRecord(_Record):
    """``.../report/{kind}`` (``daily``), QoS 1."""

    schema_: Literal["busd.report/1"] = Field(default=SCHEMA_REPORT, alias="schema")
    kind: Literal["daily"] = "daily"
    data: DailyReport


# The answer's data is the catalogue's model; a receipt comes first (the command arrived).
CmdResultData = Annotated[CommandResult | CommandReceived, Field(discriminator="kind")]


class CmdResultRecord(_Record):
    """``.../cmd/result``, QoS 1: the receipt of every valid command as it arrives
    (``cmd_received``), then the answer to every command, accepted or not (``cmd_result``)."""

    schema_: Literal["busd.cmd_result/1"] = Field(default=SCHEMA_CMD_RESULT, alias="schema")
    kind: Literal["cmd_result", "cmd_received"] = "cmd_result"
    data: CmdResultData


class BatchItem(_Model):
    seq: int = Field(ge=1)
    ts: str
    schema_: str = Field(alias="schema", description="the record's own schema")
    kind: str
    data: TelemetryData | BusEvent


class Batch(_Model):
    """Several durable records of one topic in one message, oldest first."""

    bus: str
    ts: str = Field(description="when the batch was sent")
    schema_: Literal["busd.batch/1"] = Field(default=SCHEMA_BATCH, alias="schema")
    records: list[BatchItem] = Field(min_length=1)


class PlanMessage(_Model):
    """``.../plan``, retained: the active plan with its projections, in one envelope (the
    planner's :class:`~busd.event_catalog.PlanDocument` with ``bus``, ``ts``, ``schema``)."""

    bus: str
    ts: str
    schema_: Literal["busd.plan/1"] = Field(default=SCHEMA_PLAN, alias="schema")
    plan: Plan | None = Field(description="the day's plan; None before one is loaded")
    itinerary: list[Item]
    done: list[str] = Field(description="ids of the itinerary entries already served")
    at: str | None = Field(description="id of the place the bus is at, if any")
    projection: ProjectionDoc | None
    pending: Proposal | None = Field(description="the proposal awaiting the driver, if any")
    proposal_at: str | None = Field(
        default=None, description="on the road: id of the place ahead where the planner will "
        "propose a change it holds until the bus arrives (the change leaves that place as it "
        "is; the leg is driven either way)")

    def dump(self) -> dict[str, Any]:
        # Nulls kept: "no pending proposal" is a fact the office reads, not a missing field.
        return self.model_dump(mode="json", by_alias=True)


class CmdPing(_Model):
    """``.../cmd/ping`` (office to bus): answered on cmd/result with the bus's time."""

    bus: str
    ts: str
    schema_: Literal["busd.cmd.ping/1"] = Field(default=SCHEMA_CMD_PING, alias="schema")
    id: str = Field(min_length=1, max_length=64)


class CmdPlan(_Model):
    """``.../cmd/plan`` (office to bus): a new stop plan; version must increase for its day."""

    bus: str
    ts: str
    schema_: Literal["busd.cmd.plan/1"] = Field(default=SCHEMA_CMD_PLAN, alias="schema")
    id: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    date: dt.date = Field(description="the operating day: the plan's own date, today or a "
                          "later day in the plan's time zone (a later day's plan is kept until "
                          "its day)")
    plan: Plan = Field(description="the plan itself, with the same date and version; the "
                       "planner gets only this")


class CmdResend(_Model):
    """``.../cmd/resend`` (office to bus): publish again the records ``first_seq`` ..
    ``last_seq`` (at most 100,000) that the bus still keeps after their PUBACK, on their
    topics under backlog/ with their original ``seq`` and ``ts``; the answer on cmd/result says
    how many (``detail.resent``) and which ranges the bus no longer has
    (``detail.missing``). Asking twice is harmless: the office drops duplicates by seq."""

    bus: str
    ts: str
    schema_: Literal["busd.cmd.resend/1"] = Field(default=SCHEMA_CMD_RESEND, alias="schema")
    id: str = Field(min_length=1, max_length=64)
    first_seq: int = Field(ge=1, le=MAX_SEQ, strict=True)  # "1" or true is no seq
    last_seq: int = Field(ge=1, le=MAX_SEQ, strict=True)

    @model_validator(mode="after")
    def _range(self) -> CmdResend:
        if self.first_seq > self.last_seq:
            raise ValueError(f"first_seq {self.first_seq} is above last_seq {self.last_seq}")
        size = self.last_seq - self.first_seq + 1
        if size > MAX_RESEND_RANGE:
            raise ValueError(f"the range holds {size} records, at most {MAX_RESEND_RANGE} "
                             "may be asked at once")
        return self


def _record_model(model: type[EventModel], schema: str, base_doc: str) -> type[_Record]:
    """The record of one catalogue kind: its envelope with ``kind`` and ``data`` narrowed."""
    kind = kind_of(model)
    name = "".join(part.title() for part in kind.split("_")) + "Record"
    fields: dict[str, Any] = {
        "schema_": (Literal[schema], Field(default=schema, alias="schema")),
        "kind": (Literal[kind], kind),
        "data": (model, ...),
    }
    return create_model(
        name, __base__=_Record,
        __doc__=f"{base_doc.format(kind=kind)} {model.__doc__ or ''}".strip(), **fields,
    )


# One record model per kind: ``event-{kind}`` / ``report-{kind}`` in docs/schema/.
EVENT_RECORDS: dict[str, type[_Record]] = {
    kind_of(m): _record_model(m, SCHEMA_EVENT, "``.../event/{kind}``, QoS 1.")
    for m in EVENT_MODELS
}
REPORT_RECORDS: dict[str, type[_Record]] = {
    kind_of(m): _record_model(m, SCHEMA_REPORT, "``.../report/{kind}``, QoS 1.")
    for m in REPORT_MODELS
}

# Name of each schema file in docs/schema/, and the model that generates it.
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "status": Status,
    "state": State,
    "telemetry": TelemetryRecord,
    "event": EventRecord,
    "report": ReportRecord,
    "cmd_result": CmdResultRecord,
    "batch": Batch,
    "plan": PlanMessage,
    "cmd_ping": CmdPing,
    "cmd_plan": CmdPlan,
    "cmd_resend": CmdResend,
    **{f"event-{kind}": model for kind, model in EVENT_RECORDS.items()},
    **{f"report-{kind}": model for kind, model in REPORT_RECORDS.items()},
}
