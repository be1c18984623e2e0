"""NaN and Infinity are not JSON: no file or message the daemon writes holds them, and the
office does not take them in (bug 6(i))."""

from __future__ import annotations

import json

import pytest

from busd.alerts import Alert
from busd.alerts_memory import _encode
from busd.display.server import _sse
from office.archive import open_archive
from office.live import Office
from telemetry import mqtt


def strict_loads(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} in {text!r}")

    return json.loads(text, parse_constant=refuse)


def test_the_alerts_file_holds_no_nan() -> None:
    alert = Alert("lift_not_stowed_moving", "Lift not stowed", 1_767_225_600.0,
                  {"speed_kmh": float("nan"), "limit": float("inf"), "state": "deployed"})
    data = strict_loads(_encode({alert.kind: alert}))
    assert data == {alert.kind: {"message": "Lift not stowed",
                                 "raised_at": "2026-01-01T00:00:00.000Z",
                                 "details": {"speed_kmh": None, "limit": None,
                                             "state": "deployed"}}}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_the_display_stream_refuses_what_is_not_json(bad: float) -> None:
    assert strict_loads(_sse("snapshot", {"soc": 50.0}).decode().split("data: ")[1]) == \
        {"soc": 50.0}
    with pytest.raises(ValueError):
        _sse("snapshot", {"soc": bad})


async def test_the_office_takes_a_record_with_infinity_as_malformed() -> None:
    async with open_archive("sqlite://") as archive:
        office = Office(settings=mqtt.BrokerSettings(host="127.0.0.1", port=1), archive=archive)
        record = ('{"bus":"bus-01","ts":"2026-01-14T07:41:02.000Z","schema":"busd.event/1",'
                  '"seq":%d,"kind":"lift_cycle","data":{"kind":"lift_cycle","cycles":%s,'
                  '"day_cycles":1,"counter":null,"place_id":null,"place_name":null}}')
        await office.handle("multimobile/v1/bus-01/event/lift_cycle", (record % (1, "1")).encode())
        await office.handle("multimobile/v1/bus-01/event/lift_cycle",
                            (record % (2, "Infinity")).encode())
        assert office.malformed == 1 and office.invalid == 0
        assert [r.seq for r in await archive.records("bus-01")] == [1]
        # Valid JSON that the catalogue does not know: archived all the same, and counted.
        await office.handle("multimobile/v1/bus-01/event/lift_cycle",
                            (record % (3, '"many"')).encode())
        assert office.invalid == 1
        assert [r.seq for r in await archive.records("bus-01")] == [1, 3]
