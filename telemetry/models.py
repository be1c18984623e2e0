"""Every MQTT payload, as pydantic models: the source of docs/schema/*.json.

Every message carries ``bus``, ``ts`` (UTC ISO 8601 with ms) and ``schema``
(name/major version: a consumer dispatches on it). Durable records, the ones
that went through the outbox, also carry ``seq``: contiguous per bus across
restarts, so the office drops duplicates and sees any loss as a gap.

A batch (``busd.batch/1``) carries several durable records of one topic in one
message; its ``records`` are the same records without the repeated ``bus``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
    """``.../event/{kind}``, QoS 1. ``data_dropped`` reports what the full outbox lost."""

    schema_: Literal["busd.event/1"] = Field(default=SCHEMA_EVENT, alias="schema")
    data: dict[str, Any]


class ReportRecord(_Record):
    """``.../report/{kind}`` (``daily``), QoS 1."""

    schema_: Literal["busd.report/1"] = Field(default=SCHEMA_REPORT, alias="schema")
    data: dict[str, Any]


class CmdResultData(_Model):
    command: str = Field(description="ping, plan, ... or '?' when unreadable")
    id: str | None = Field(None, description="the command's id, when it could be read")
    accepted: bool
    reason: str = Field("", description="exactly why not, when rejected")
    detail: dict[str, Any] = Field(default_factory=dict)


class CmdResultRecord(_Record):
    """``.../cmd/result``, QoS 1: the answer to every command, accepted or not."""

    schema_: Literal["busd.cmd_result/1"] = Field(default=SCHEMA_CMD_RESULT, alias="schema")
    kind: Literal["cmd_result"] = "cmd_result"
    data: CmdResultData


class BatchItem(_Model):
    seq: int = Field(ge=1)
    ts: str
    schema_: str = Field(alias="schema", description="the record's own schema")
    kind: str
    data: dict[str, Any]


class Batch(_Model):
    """Several durable records of one topic in one message, oldest first."""

    bus: str
    ts: str = Field(description="when the batch was sent")
    schema_: Literal["busd.batch/1"] = Field(default=SCHEMA_BATCH, alias="schema")
    records: list[BatchItem] = Field(min_length=1)


class PlanMessage(_Model):
    """``.../plan``, retained: the active plan with its projections (body from the planner)."""

    bus: str
    ts: str
    schema_: Literal["busd.plan/1"] = Field(default=SCHEMA_PLAN, alias="schema")
    plan: dict[str, Any]


class CmdPing(_Model):
    """``.../cmd/ping`` (office to bus): answered on cmd/result with the bus's time."""

    bus: str
    ts: str
    schema_: Literal["busd.cmd.ping/1"] = Field(default=SCHEMA_CMD_PING, alias="schema")
    id: str = Field(min_length=1, max_length=64)


class CmdPlan(_Model):
    """``.../cmd/plan`` (office to bus): a new stop plan; version must increase."""

    bus: str
    ts: str
    schema_: Literal["busd.cmd.plan/1"] = Field(default=SCHEMA_CMD_PLAN, alias="schema")
    id: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    date: dt.date = Field(description="the operating day: the plan's own date, and today in "
                          "the plan's time zone")
    plan: dict[str, Any] = Field(description="the plan itself (busd.plan.Plan), with the same "
                                 "date and version; the planner gets only this")


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
}
