"""office/records.py: from a message to archive records; the topic must agree with the payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from office.archive import open_archive
from office.live import Office
from office.records import Rejected, Topics, parse_records
from telemetry.mqtt import BrokerSettings

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TS = "2026-03-10T11:59:58.125Z"
TOPICS = Topics()


def one(bus: str, seq: int, **extra: object) -> bytes:
    return json.dumps({"bus": bus, "ts": TS, "schema": "busd.event/1", "seq": seq,
                       "kind": "visit_started", "data": {"stop": "rozupe"}, **extra}).encode()


def test_a_single_record_and_a_batch_become_archive_records() -> None:
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/event/visit_started", one("lv-01", 5),
                           NOW)
    (rec,) = parsed.records
    assert (rec.bus, rec.seq, rec.kind, rec.topic, rec.schema_) == (
        "lv-01", 5, "visit_started", "event/visit_started", "busd.event/1")
    assert rec.ts == datetime(2026, 3, 10, 11, 59, 58, 125000, tzinfo=UTC)
    assert rec.received == NOW and rec.data == {"stop": "rozupe"} and not parsed.rejected
    batch = {"bus": "lv-01", "ts": TS, "schema": "busd.batch/1", "records": [
        {"ts": TS, "schema": "busd.telemetry/1", "seq": s, "kind": "sample",
         "data": {"full": False, "values": {"battery.soc": 80.5}}} for s in (6, 7)]}
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/telemetry", json.dumps(batch).encode(),
                           NOW)
    assert [r.seq for r in parsed.records] == [6, 7]
    assert parsed.records[0].data == {"full": False, "values": {"battery.soc": 80.5}}


def test_a_payload_naming_another_bus_is_refused_whole() -> None:
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/event/visit_started",
                           one("lv-02", 5), NOW)
    assert parsed.records == () and parsed.rejected == {Rejected.BUS_MISMATCH: 1}
    assert "lv-02" in parsed.reason
    batch = {"bus": "lv-02", "ts": TS, "schema": "busd.batch/1", "records": [
        {"ts": TS, "schema": "busd.event/1", "seq": s, "kind": "x", "data": {}} for s in (1, 2)]}
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/event/x", json.dumps(batch).encode(),
                           NOW)
    assert parsed.records == () and parsed.rejected == {Rejected.BUS_MISMATCH: 2}
    # No bus at all is no agreement either.
    missing = json.loads(one("lv-01", 3))
    del missing["bus"]
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/event/x", json.dumps(missing).encode(),
                           NOW)
    assert parsed.rejected == {Rejected.BUS_MISMATCH: 1}


@pytest.mark.parametrize("payload", [
    b"{not json", b"[1, 2]", b'"text"',
    json.dumps({"bus": "lv-01", "ts": TS, "schema": "busd.status/1", "online": True}).encode(),
    one("lv-01", 0),  # seq starts at 1
    one("lv-01", 5).replace(b'"stop": "rozupe"', b'"soc": NaN'),  # not JSON, though Python reads it
    one("lv-01", 5, extra_field=1),  # the envelope forbids unknown fields
    json.dumps({"bus": "lv-01", "ts": "yesterday", "schema": "busd.event/1", "seq": 1,
                "kind": "x", "data": {}}).encode(),
    json.dumps({"bus": "lv-01", "ts": TS, "schema": "busd.batch/1", "records": []}).encode(),
])
def test_malformed_messages_are_counted_not_raised(payload: bytes) -> None:
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/event/x", payload, NOW)
    assert parsed.records == () and parsed.rejected == {Rejected.MALFORMED: 1}
    assert parsed.reason


@pytest.mark.parametrize("topic", [
    "multimobile/v1/lv-01/status", "multimobile/v1/lv-01/cmd/plan", "multimobile/v1/lv-01",
    "other/v1/lv-01/telemetry", "multimobile/v1/lv-01/event/a/b", "multimobile/v1//telemetry",
])
def test_only_record_topics_under_the_prefix_are_records(topic: str) -> None:
    parsed = parse_records(TOPICS, topic, one("lv-01", 1), NOW)
    assert parsed.records == () and parsed.rejected == {Rejected.FOREIGN_TOPIC: 1}


def test_shared_subscription_filters_and_a_custom_prefix() -> None:
    assert TOPICS.filters(share="office")[:4] == [
        "$share/office/multimobile/v1/+/telemetry", "$share/office/multimobile/v1/+/event/+",
        "$share/office/multimobile/v1/+/report/+", "$share/office/multimobile/v1/+/cmd/result"]
    assert TOPICS.filters(share="office")[4:] == [
        "$share/office/multimobile/v1/+/backlog/telemetry",
        "$share/office/multimobile/v1/+/backlog/event/+",
        "$share/office/multimobile/v1/+/backlog/report/+",
        "$share/office/multimobile/v1/+/backlog/cmd/result"]
    custom = Topics("fleet/{bus_id}/up")
    assert custom.split("fleet/lv-01/up/report/daily") == ("lv-01", "report/daily")
    assert custom.split("fleet/lv-01/down/report/daily") is None
    assert custom.filters()[0] == "fleet/+/up/telemetry"
    with pytest.raises(ValueError, match="bus_id"):
        Topics("fleet/up")


async def test_the_live_office_refuses_a_mismatched_record_too() -> None:
    async with open_archive("sqlite://") as archive:
        office = Office(settings=BrokerSettings(host="127.0.0.1", port=1), archive=archive)
        await office.handle("multimobile/v1/lv-01/event/visit_started", one("lv-02", 1))
        await office.handle("multimobile/v1/lv-01/event/visit_started", one("lv-01", 2))
        assert office.rejected == {Rejected.BUS_MISMATCH: 1}
        assert [r.seq for r in await archive.records("lv-01")] == [2]
        assert await archive.buses() == ["lv-01"]
        assert office.fleet["lv-01"].records == 1
        await office.handle("multimobile/v1/lv-01/state", b'{"values": {"battery.soc": NaN}}')
        assert office.malformed == 1 and office.fleet["lv-01"].state == {}


def _batch_of(*items: dict[str, object], bus: str = "lv-01") -> bytes:
    return json.dumps({"bus": bus, "ts": TS, "schema": "busd.batch/1",
                       "records": list(items)}).encode()


def _item(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {"ts": TS, "schema": "busd.telemetry/1", "seq": 7,
                               "kind": "sample", "data": {"values": {"battery.soc": 80.5}}}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not _DROP}


_DROP = object()

# Messages the fast path must read exactly as the validating one does (or leave to it).
_AGREE: dict[str, tuple[str, bytes]] = {
    "single event": ("event/visit_started", one("lv-01", 5)),
    "telemetry batch": ("telemetry", _batch_of(_item(seq=1), _item(seq=2))),
    "non-ASCII data": ("telemetry", _batch_of(_item(data={"to_name": "Līvāni"}))),
    "NUL in data": ("telemetry", _batch_of(_item(data={"x": "a\x00b"}))),
    "escaped backslash-u": ("telemetry", _batch_of(_item(data={"x": "\\u0000"}))),
    "NUL in kind": ("telemetry", _batch_of(_item(kind="sam\x00ple"))),
    "long kind": ("telemetry", _batch_of(_item(kind="k" * 201))),
    "seq as text": ("telemetry", _batch_of(_item(seq="5"))),
    "seq as float": ("telemetry", _batch_of(_item(seq=5.0))),
    "seq zero": ("telemetry", _batch_of(_item(seq=0))),
    "seq true": ("telemetry", _batch_of(_item(seq=True))),
    "seq too large": ("telemetry", _batch_of(_item(seq=2**63))),
    "ts with offset": ("telemetry", _batch_of(_item(ts="2026-03-10T14:59:58.125+03:00"))),
    "ts without zone": ("telemetry", _batch_of(_item(ts="2026-03-10T11:59:58.125"))),
    "ts not a day": ("telemetry", _batch_of(_item(ts="2026-02-30T11:59:58.125Z"))),
    "ts as a number": ("telemetry", _batch_of(_item(ts=1773143998))),
    "extra key": ("telemetry", _batch_of(_item(extra=1))),
    "bus inside a batch item": ("telemetry", _batch_of(_item(bus="lv-01"))),
    "no data": ("telemetry", _batch_of(_item(data=_DROP))),
    "no kind": ("telemetry", _batch_of(_item(kind=_DROP))),
    "unknown schema": ("telemetry", _batch_of(_item(schema="busd.other/1"))),
    "infinite number": ("telemetry", b'{"bus":"lv-01","ts":"x","schema":"busd.telemetry/1",'
                                     b'"seq":3,"kind":"sample","data":{"v":1e999}}'),
    "empty batch": ("telemetry", _batch_of()),
    "an integer beyond 64 bits": ("telemetry", _batch_of(_item(data={"n": 2**70}))),
    "a long number in a string": ("telemetry", _batch_of(_item(data={"n": "1" * 30}))),
    "a float": ("telemetry", _batch_of(_item(data={"f": 0.1, "g": 1e16, "h": -0.0}))),
    "a lone surrogate": ("telemetry", _batch_of(_item(data={"x": "\ud800"}))),
    "deep data": ("telemetry", _batch_of(_item(data=json.loads("[" * 300 + "]" * 300)))),
    "duplicate keys": ("event/visit_started", b'{"bus":"lv-01","ts":"2026-03-10T11:59:58.125Z",'
                       b'"schema":"busd.event/1","seq":3,"seq":4,"kind":"k","data":{}}'),
    "batch ts not text": ("telemetry", json.dumps({"bus": "lv-01", "ts": 5,
                                                   "schema": "busd.batch/1",
                                                   "records": [_item()]}).encode()),
}


@pytest.mark.parametrize("name", sorted(_AGREE))
def test_the_fast_path_reads_every_message_as_the_validating_path_does(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    suffix, payload = _AGREE[name]
    topic = f"multimobile/v1/lv-01/{suffix}"
    fast = parse_records(TOPICS, topic, payload, NOW)
    monkeypatch.setattr("office.records._fast_records", lambda *args: None)
    slow = parse_records(TOPICS, topic, payload, NOW)
    assert (fast.rejected, fast.reason) == (slow.rejected, slow.reason)
    assert [r.model_dump(by_alias=True) for r in fast.records] == \
        [r.model_dump(by_alias=True) for r in slow.records]
    # The same JSON value (orjson writes non-ASCII as it is, json escapes it).
    assert [json.loads(r.data_json()) for r in fast.records] == \
        [json.loads(r.data_json()) for r in slow.records]
    assert fast.records == slow.records


def test_what_the_bus_writes_takes_the_fast_path() -> None:
    # The fast path is the ingest workers' throughput (about 8 µs a record instead of 45):
    # the bus's own messages, telemetry batches and events, must not fall back.
    payload = _batch_of(_item(seq=1), _item(seq=2, data={"full": True, "values": {"x": None}}))
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/telemetry", payload, NOW)
    assert len(parsed.records) == 2
    assert all(r._wire_json is not None for r in parsed.records)
    (event,) = parse_records(TOPICS, "multimobile/v1/lv-01/event/visit_started",
                             one("lv-01", 5), NOW).records
    assert event._wire_json is not None


def test_a_late_record_on_a_backlog_topic_is_stored_under_its_own_topic() -> None:
    parsed = parse_records(TOPICS, "multimobile/v1/lv-01/backlog/event/visit_started",
                           one("lv-01", 5), NOW)
    (rec,) = parsed.records
    assert rec.topic == "event/visit_started" and not parsed.rejected
    for foreign in ("backlog/state", "backlog/backlog/telemetry", "backlog/cmd/plan"):
        parsed = parse_records(TOPICS, f"multimobile/v1/lv-01/{foreign}", one("lv-01", 5), NOW)
        assert parsed.rejected == {Rejected.FOREIGN_TOPIC: 1}, foreign
    assert TOPICS.filters(share="g", backlog=False) == [
        "$share/g/multimobile/v1/+/telemetry", "$share/g/multimobile/v1/+/event/+",
        "$share/g/multimobile/v1/+/report/+", "$share/g/multimobile/v1/+/cmd/result"]
    assert TOPICS.results("lv-01") == ["multimobile/v1/lv-01/cmd/result",
                                       "multimobile/v1/lv-01/backlog/cmd/result"]
    assert TOPICS.filters(live=False) == [
        "multimobile/v1/+/backlog/telemetry", "multimobile/v1/+/backlog/event/+",
        "multimobile/v1/+/backlog/report/+", "multimobile/v1/+/backlog/cmd/result"]


def test_a_copy_with_other_data_is_stored_with_that_data() -> None:
    # The fast path keeps the JSON text it read; a changed copy must not write the old one.
    (rec,) = parse_records(TOPICS, "multimobile/v1/lv-01/event/visit_started", one("lv-01", 5),
                           NOW).records
    changed = rec.model_copy(update={"seq": 6, "data": {"stop": "turki"}})
    assert json.loads(changed.data_json()) == {"stop": "turki"} and changed.seq == 6
    assert json.loads(rec.model_copy().data_json()) == {"stop": "rozupe"}
