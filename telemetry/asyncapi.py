"""The whole MQTT interface as an AsyncAPI 3.0 document, generated from the payload models.

``python -m telemetry.schema`` writes it to ``docs/asyncapi.yaml`` beside the
JSON Schemas of ``docs/schema/`` (``--check`` fails when it is out of date).
Every payload schema comes from the same pydantic models the bus and the office
use (telemetry/models.py and the event catalogue, busd/event_catalog.py), so
the document cannot drift from the code. Operations are described from the
bus's side: it *sends* status, state, telemetry, events, reports, the plan
and command answers, and *receives* commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from telemetry.models import (
    EVENT_RECORDS,
    REPORT_RECORDS,
    Batch,
    CmdPing,
    CmdPlan,
    CmdResend,
    CmdResultRecord,
    PlanMessage,
    State,
    Status,
    TelemetryRecord,
)

API_VERSION: Final = "1.0.0"  # the interface's own version: ``v1`` in the topic prefix
PREFIX: Final = "multimobile/v1/{bus_id}"
MQTT_BINDING: Final = "0.2.0"


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic under the prefix and what travels on it."""

    suffix: str
    models: tuple[type[BaseModel], ...]
    send: bool  # True: the bus publishes it; False: the bus receives it (a command)
    qos: int
    retain: bool
    summary: str


def topics() -> list[Topic]:
    out = [
        Topic("status", (Status,), True, 1, True,
              "online on every connect; the broker's last will and a clean stop say offline"),
        Topic("state", (State,), True, 0, True,
              "the current signals, every second while moving, slower parked; MQTT 5 "
              "message expiry"),
        Topic("telemetry", (TelemetryRecord, Batch), True, 1, False,
              "samples for the office's history, alone or batched"),
    ]
    for prefix, records in (("event", EVENT_RECORDS), ("report", REPORT_RECORDS)):
        for kind, model in records.items():
            data = model.model_fields["data"].annotation
            about = (getattr(data, "__doc__", None) or kind).strip()
            out.append(Topic(f"{prefix}/{kind}", (model, Batch), True, 1, False,
                             " ".join(about.split("\n\n")[0].split())))
    out += [
        Topic("plan", (PlanMessage,), True, 1, True,
              "the active plan with its projection and any pending proposal"),
        Topic("cmd/result", (CmdResultRecord, Batch), True, 1, False,
              "the answer to every command, accepted or exactly why not"),
        Topic("cmd/ping", (CmdPing,), False, 1, False,
              "office to bus: answered on cmd/result with the bus's time"),
        Topic("cmd/plan", (CmdPlan,), False, 1, False,
              "office to bus: a new stop plan; its version must increase"),
        Topic("cmd/resend", (CmdResend,), False, 1, False,
              "office to bus: publish a seq range again that the office lacks (what the bus "
              "still keeps after the PUBACK); the answer says what is gone"),
    ]
    # Every record topic again under backlog/: what the outbox held when the connection came
    # up, and resends (telemetry/uplink.py); the office reads them on a connection of their own.
    out += [Topic(f"backlog/{t.suffix}", t.models, True, 1, False,
                  f"late (an outage's backlog, a resend): {t.summary}")
            for t in out if t.send and not t.retain and t.qos == 1]
    return out


def _name(suffix: str) -> str:
    return suffix.replace("/", "_")


def _asyncapi_schema(node: Any) -> Any:
    """pydantic's JSON Schema as an AsyncAPI Schema Object: there ``discriminator`` is the
    property's name, not OpenAPI's object (the mapping is implied by each ``const``)."""
    if isinstance(node, dict):
        out = {k: _asyncapi_schema(v) for k, v in node.items()}
        if isinstance(node.get("discriminator"), dict):
            out["discriminator"] = node["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def document() -> dict[str, Any]:
    """The AsyncAPI document (plain data, in a stable order)."""
    all_topics = topics()
    models: list[type[BaseModel]] = []
    for topic in all_topics:
        models += [m for m in topic.models if m not in models]
    refs, top = models_json_schema(
        [(m, "serialization") for m in models], by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    schemas = {name: _asyncapi_schema(s) for name, s in sorted(top.get("$defs", {}).items())}

    def ref_of(model: type[BaseModel]) -> str:
        return str(refs[(model, "serialization")]["$ref"])

    messages: dict[str, Any] = {}
    for model in models:
        name = ref_of(model).rsplit("/", 1)[1]
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (model.__doc__ or name).strip().split("\n")[0],
            "contentType": "application/json",
            "payload": {"$ref": ref_of(model)},
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in all_topics:
        key = _name(topic.suffix)
        channels[key] = {
            "address": f"{PREFIX}/{topic.suffix}",
            "summary": topic.summary,
            "parameters": {"bus_id": {"description": "the bus's id (config bus_id)"}},
            "messages": {
                ref_of(m).rsplit("/", 1)[1]: {
                    "$ref": f"#/components/messages/{ref_of(m).rsplit('/', 1)[1]}"}
                for m in topic.models
            },
        }
        operations[("publish_" if topic.send else "receive_") + key] = {
            "action": "send" if topic.send else "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": topic.summary,
            "bindings": {"mqtt": {"qos": topic.qos, "retain": topic.retain,
                                  "bindingVersion": MQTT_BINDING}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "busd MQTT interface",
            "version": API_VERSION,
            "description": (
                "What an electric service minibus (busd) publishes and accepts over MQTT. "
                "The prefix multimobile/v1/{bus_id} is the default (mqtt.topic_prefix). "
                "Every message carries bus, ts (UTC ISO 8601 with ms) and schema; every "
                "durable record also seq, contiguous per bus (a gap is a lost record). "
                "Records of one topic may travel as a busd.batch/1 message. Generated from "
                "the payload models by python -m telemetry.schema; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "broker:8883",
                "protocol": "mqtt",
                "description": "the office's broker (MQTT 5, or 3.1.1 where it lacks 5); TLS "
                "with CA verification, username/password or client certificates",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    """``docs/asyncapi.yaml``'s text (deterministic, so the committed file can be diffed)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]  # only the generator, tests

    header = "# Generated by `python -m telemetry.schema` from the payload models; do not edit.\n"
    text: str = yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
    return header + text
