"""docs/asyncapi.yaml: up to date with the models, a valid AsyncAPI 3.0.0 document, and its
payload schemas accept what the bus really sends."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from busd.event_catalog import LiftCycle
from telemetry import asyncapi, schema
from telemetry.models import EVENT_RECORDS, REPORT_RECORDS
from tests.conftest import REPO
from tests.test_readme_payloads import EXAMPLES

FIXTURES = REPO / "tests" / "fixtures" / "asyncapi"
DOCUMENT = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))


def asyncapi_validator() -> jsonschema.Draft7Validator:
    """The official AsyncAPI 3.0.0 JSON Schema (@asyncapi/specs, see the fixture's README)."""
    meta = json.loads((FIXTURES / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(meta)
    return jsonschema.Draft7Validator(meta)


def test_the_committed_document_is_up_to_date() -> None:
    text = (REPO / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert text == asyncapi.render(), "run: python -m telemetry.schema"
    assert schema.main(["--check"]) == 0


def test_it_is_a_valid_asyncapi_3_document() -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
              for e in asyncapi_validator().iter_errors(DOCUMENT)]
    assert errors == []


def test_the_validator_sees_a_broken_document() -> None:
    # The check above must be able to fail: an OpenAPI-style discriminator, a channel
    # without its address's type, an unknown operation action.
    broken = json.loads(json.dumps(DOCUMENT))
    broken["operations"]["publish_status"]["action"] = "publish"
    assert not asyncapi_validator().is_valid(broken)
    broken = json.loads(json.dumps(DOCUMENT))
    name = next(iter(broken["components"]["schemas"]))
    broken["components"]["schemas"][name]["discriminator"] = {"propertyName": "kind"}
    assert not asyncapi_validator().is_valid(broken)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves_inside_the_document() -> None:
    for ref in _refs(DOCUMENT):
        assert ref.startswith("#/"), ref
        node: Any = DOCUMENT
        for part in ref[2:].split("/"):
            node = node[part]


def test_the_whole_interface_is_there() -> None:
    addresses = {c["address"].removeprefix("multimobile/v1/{bus_id}/")
                 for c in DOCUMENT["channels"].values()}
    records = {f"event/{k}" for k in EVENT_RECORDS} | {f"report/{k}" for k in REPORT_RECORDS} \
        | {"telemetry", "cmd/result"}
    # Every record topic twice: live, and late under backlog/ (telemetry/uplink.py).
    assert records | {f"backlog/{t}" for t in records} \
        | {"status", "state", "plan", "cmd/ping", "cmd/plan", "cmd/resend"} == addresses
    actions = {name: op["action"] for name, op in DOCUMENT["operations"].items()}
    assert actions["receive_cmd_plan"] == "receive" and actions["publish_plan"] == "send"
    assert DOCUMENT["operations"]["publish_plan"]["bindings"]["mqtt"]["retain"] is True


def payload_validator(channel: str, message: str) -> jsonschema.Draft202012Validator:
    """The channel's message payload, resolved within the document."""
    ref = DOCUMENT["channels"][channel]["messages"][message]["$ref"]
    payload = DOCUMENT["components"]["messages"][ref.rsplit("/", 1)[1]]["payload"]
    return jsonschema.Draft202012Validator(
        {**payload, "components": DOCUMENT["components"]})


@pytest.mark.parametrize("message", [m for m in EXAMPLES if m["schema"] == "busd.event/1"],
                         ids=lambda m: m["kind"])
def test_the_readmes_events_match_their_channels_payload(message: dict[str, Any]) -> None:
    kind = message["kind"]
    record = EVENT_RECORDS[kind].__name__
    payload_validator(f"event_{kind}", record).validate(message)
    other = next(k for k in EVENT_RECORDS if k != kind)
    assert not payload_validator(f"event_{other}", EVENT_RECORDS[other].__name__).is_valid(
        message)


def test_a_batch_of_events_matches_the_batch_payload() -> None:
    cycle = LiftCycle(cycles=1, day_cycles=1, counter=None, place_id=None, place_name=None)
    batch: dict[str, Any] = {
        "bus": "bus-01", "ts": "2026-01-14T09:10:00.120Z", "schema": "busd.batch/1",
        "records": [{"ts": "2026-01-14T09:00:00.000Z", "schema": "busd.event/1",
                     "seq": 7, "kind": "lift_cycle", "data": cycle.to_dict()}]}
    check = payload_validator("event_lift_cycle", "Batch")
    check.validate(batch)
    batch["records"][0]["data"]["cycles"] = "many"
    assert not check.is_valid(batch)
