"""The README's MQTT examples are valid against the committed JSON Schemas (docs/schema/)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from telemetry.models import EVENT_RECORDS, REPORT_RECORDS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
SCHEMA_DIR = REPO / "docs" / "schema"
# The schema file of each message, by its ``schema``; records also by their ``kind``.
FILES = {
    "busd.status/1": "status", "busd.state/1": "state", "busd.telemetry/1": "telemetry",
    "busd.cmd_result/1": "cmd_result", "busd.batch/1": "batch", "busd.plan/1": "plan",
    "busd.cmd.ping/1": "cmd_ping", "busd.cmd.plan/1": "cmd_plan",
}


def mqtt_examples() -> list[dict[str, Any]]:
    section = README.split("\n## MQTT uplink\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.S)
    return [json.loads(block) for block in blocks]


def schema_file(message: dict[str, Any]) -> str:
    schema = message["schema"]
    if schema == "busd.event/1":
        return f"event-{message['kind']}"
    if schema == "busd.report/1":
        return f"report-{message['kind']}"
    return FILES[schema]


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


EXAMPLES = mqtt_examples()


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: f"{m['schema']}:{m.get('kind', '')}")
def test_every_example_is_valid_against_its_schema(message: dict[str, Any]) -> None:
    validator(schema_file(message)).validate(message)


def test_every_event_kind_and_the_retained_plan_have_an_example() -> None:
    shown = {schema_file(m) for m in EXAMPLES}
    wanted = {f"event-{k}" for k in EVENT_RECORDS} | {f"report-{k}" for k in REPORT_RECORDS}
    assert wanted | {"plan", "batch", "cmd_result"} <= shown


def test_the_schemas_refuse_what_the_models_refuse() -> None:
    # Without this, an example could pass against a schema that accepts anything.
    leg = next(m for m in EXAMPLES if m.get("kind") == "leg_completed")
    check = validator("event-leg_completed")
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**leg, "data": {**leg["data"], "bus": "bus-01"}})  # the envelope's
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**leg, "kind": "visit_ended"})
    with pytest.raises(jsonschema.ValidationError):
        check.validate({**leg, "data": {**leg["data"], "km": "far"}})
    plan = next(m for m in EXAMPLES if m["schema"] == "busd.plan/1")
    with pytest.raises(jsonschema.ValidationError):  # no plan.plan
        validator("plan").validate({**plan, "plan": {"plan": plan["plan"]}})
