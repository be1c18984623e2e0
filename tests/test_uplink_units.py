"""Pure parts of the uplink: message packing, telemetry sampling, config, schema files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from busd.clock import ManualClock
from busd.config import BusdConfig, UplinkConfig, load_config, outbox_path
from busd.errors import ConfigError
from busd.event_catalog import LiftCycle
from busd.state import VehicleState
from telemetry import schema
from telemetry.models import Batch, EventRecord, TelemetryRecord
from telemetry.mqtt import BrokerSettings
from telemetry.outbox import Row
from telemetry.sampler import TelemetrySampler
from telemetry.uplink import build_messages


def rows() -> list[Row]:
    out = [Row(i, "telemetry", "sample", 1_767_225_600.0 + i,
               json.dumps({"full": False, "values": {"battery.soc": 90.0 - i}})) for i in (1, 2, 3)]
    cycle = LiftCycle(cycles=1, day_cycles=3, counter=41, place_id="jersika", place_name="Jersika")
    out.append(Row(4, "event", "lift_cycle", 1_767_225_604.0, cycle.to_json()))
    out.append(Row(5, "telemetry", "sample", 1_767_225_605.0, '{"full":true,"values":{}}'))
    return out


def test_consecutive_records_of_a_topic_are_batched_and_validate() -> None:
    msgs = build_messages(rows(), prefix="multimobile/v1/bus-01", bus="bus-01", now=1_767_225_610.0,
                          max_records=100, max_bytes=100_000)
    assert [(m.topic.rsplit("/", 2)[-2:], m.seqs) for m in msgs] == [
        (["bus-01", "telemetry"], (1, 2, 3)),
        (["event", "lift_cycle"], (4,)),
        (["bus-01", "telemetry"], (5,)),
    ]
    batch = Batch.model_validate(json.loads(msgs[0].payload))
    assert [r.seq for r in batch.records] == [1, 2, 3]
    assert batch.records[0].ts == "2026-01-01T00:00:01.000Z"
    assert batch.records[0].schema_ == "busd.telemetry/1"
    assert isinstance(EventRecord.model_validate(json.loads(msgs[1].payload)).data, LiftCycle)
    TelemetryRecord.model_validate(json.loads(msgs[2].payload))


def test_batches_respect_the_record_and_byte_limits() -> None:
    many = [Row(i, "telemetry", "sample", 1.0 * i, '{"full":true,"values":{"x":1}}')
            for i in range(1, 101)]
    by_count = build_messages(many, prefix="p", bus="b", now=0, max_records=30, max_bytes=10**6)
    assert [len(m.seqs) for m in by_count] == [30, 30, 30, 10]
    by_size = build_messages(many, prefix="p", bus="b", now=0, max_records=1000, max_bytes=2000)
    assert all(len(m.payload) <= 2000 for m in by_size)
    assert sum(len(m.seqs) for m in by_size) == 100


async def test_sampler_sends_keyframes_then_changes_only_and_marks_stale() -> None:
    clock = ManualClock()
    state = VehicleState(clock)
    sampler = TelemetrySampler(state=state, outbox=None, clock=clock,  # type: ignore[arg-type]
                               config=UplinkConfig(telemetry_keyframe_s=60))
    assert sampler.sample() is None  # nothing known yet: no record
    state.update("battery.soc", 90.123456789, source="t")
    state.update("vehicle.speed", 30.0, source="t")
    first = sampler.sample()
    assert first == {"full": True, "values": {"battery.soc": 90.12, "vehicle.speed": 30.0}}
    await clock.advance(1)
    assert sampler.sample() is None  # unchanged: nothing to send
    state.update("vehicle.speed", 31.0, source="t")
    assert sampler.sample() is None  # within the 2 km/h deadband: noise, not news
    state.update("vehicle.speed", 32.04, source="t")
    assert sampler.sample() == {"full": False, "values": {"vehicle.speed": 32.0}}
    await clock.advance(state.freshness("battery.soc") + 1)
    state.update("vehicle.speed", 32.0, source="t")
    stale = sampler.sample()
    assert stale is not None
    assert stale["stale"] == ["battery.soc"] and "battery.soc" not in stale["values"]
    await clock.advance(61)
    state.update("vehicle.speed", 32.5, source="t")
    key = sampler.sample()
    assert key is not None and key["full"] is True and key["values"] == {"vehicle.speed": 32.5}


def test_mqtt_host_and_port_come_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("BUSD_MQTT__HOST", "broker.example")
    monkeypatch.setenv("BUSD_MQTT__PORT", "8883")
    monkeypatch.setenv("BUSD_MQTT__PASSWORD", "s3cret")
    cfg = BusdConfig(bus_id="bus-01")
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("broker.example", 8883)
    settings = BrokerSettings.from_config(cfg.mqtt)
    assert settings.password == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(cfg)


def test_password_file_and_tls_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt.pw").write_text("from-file\n")
    path = tmp_path / "busd.toml"
    path.write_text('bus_id = "bus-01"\ndata_dir = "data"\n'
                    '[mqtt]\npassword_file = "secrets/mqtt.pw"\n'
                    '[mqtt.tls]\nenabled = true\nca_file = "ca.crt"\n')
    cfg = load_config(path)
    assert cfg.mqtt.password_value() == "from-file"
    assert cfg.mqtt.tls.ca_file == tmp_path / "ca.crt"
    assert outbox_path(cfg) == tmp_path / "data" / "outbox.sqlite"


@pytest.mark.parametrize(("section", "bad", "message"), [
    ("mqtt", {"port": 0}, "greater than or equal to 1"),
    ("mqtt", {"password": "x", "password_file": "/x"}, "not both"),
    ("mqtt", {"topic_prefix": "a/#/{bus_id}"}, "wildcards"),
    ("mqtt", {"tls": {"cert_file": "/a"}}, "go together"),
    ("mqtt", {"hots": "x"}, "Extra inputs"),
    ("uplink", {"telemetry_signals": ["battery.nope"]}, "unknown signals"),
    ("outbox", {"synchronous": "OFF"}, "FULL"),
])
def test_bad_uplink_config_names_the_problem(section: str, bad: dict[str, object],
                                             message: str) -> None:
    with pytest.raises(ValidationError) as err:
        sections: dict[str, Any] = {section: bad}
        BusdConfig(bus_id="bus-01", **sections)
    assert message in str(err.value)


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = BusdConfig(bus_id="bus-01", mqtt={"password_file": tmp_path / "missing"})
    with pytest.raises(ConfigError) as err:
        cfg.mqtt.password_value()
    assert "mqtt.password_file" in str(err.value)


def test_committed_json_schemas_are_up_to_date() -> None:
    assert schema.stale_files() == [], "run: python -m telemetry.schema"


def test_compact_rounds_to_the_signal_resolution() -> None:
    from telemetry.sampler import compact

    assert compact(56.354312345, "gps.lat") == 56.35431
    assert compact(3.14159, "battery.cell_v_min") == 3.142
    assert compact(1.23456789, "unknown") == 1.234568
    assert compact(True, "vehicle.ready") is True


def test_the_state_message_shows_the_active_alerts(tmp_path: Path) -> None:
    """Live, not durable: while the disk refuses writes the alert events wait in memory,
    and the retained state is how the office learns of it at once."""
    from telemetry.models import State
    from telemetry.wiring import build_uplink
    from tests.support.uplink_env import bus_config

    clock = ManualClock()
    state = VehicleState(clock)
    active: dict[str, str] = {}
    parts = build_uplink(bus_config(tmp_path, 1883), state=state, clock=clock,
                         active_alerts=lambda: active)
    quiet = json.loads(parts.uplink.state_payload())
    assert "alerts" not in quiet
    active["storage_unwritable"] = "cannot write outbox: full"
    loud = State.model_validate(json.loads(parts.uplink.state_payload()))
    assert loud.alerts == {"storage_unwritable": "cannot write outbox: full"}


async def test_the_state_message_carries_the_outbox_backlog(tmp_path: Path) -> None:
    """The office shows how much a bus still has to send and since when: from the bus."""
    from telemetry.models import State
    from telemetry.wiring import build_uplink
    from tests.support.uplink_env import bus_config

    clock = ManualClock(start=1_700_000_000.0)
    parts = build_uplink(bus_config(tmp_path, 1883), state=VehicleState(clock), clock=clock)
    async with parts.outbox:
        empty = await parts.uplink.backlog()
        assert (empty.unsent, empty.oldest_age_s) == (0, None)
        first = await parts.outbox.append("event", "note", {"n": 1})
        await clock.advance(60)
        await parts.outbox.append("event", "note", {"n": 2})
        await clock.advance(30)
        state = State.model_validate(json.loads(
            parts.uplink.state_payload(await parts.uplink.backlog())))
        assert state.outbox is not None
        assert (state.outbox.unsent, state.outbox.oldest_age_s) == (2, 90.0)
        await parts.outbox.ack([first])  # acknowledged, still awaiting the group delete
        acked = await parts.uplink.backlog()
        assert (acked.unsent, acked.oldest_age_s) == (1, 30.0)
    # A closed outbox: the state still goes, with the count and no age.
    closed = await parts.uplink.backlog()
    assert closed.oldest_age_s is None
