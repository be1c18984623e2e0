"""The fleet simulator's parts without a broker: the day model, the cuttable link, the config."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from busd.event_catalog import DailyReport, LegCompleted, VisitEnded, parse_event
from simulators.fleet.config import DayConfig, FleetConfig, MinutesRange
from simulators.fleet.day import DEPOT, DayModel
from simulators.fleet.link import Link

START = 1_767_250_000.0


def run_day(seed: int, *, tick: float = 10.0, hours: float = 12.0) -> list[object]:
    config = DayConfig(stops=3, visit_min=MinutesRange(low=30, high=40))
    day = DayModel(config=config, start=START, seed=seed)
    events: list[object] = []
    t = START
    while t < START + hours * 3600:
        step = day.step(t)
        events += step.events
        assert 0 <= float(step.values["battery.soc"]) <= 100
        t += tick
    return events


def test_a_day_has_its_events_in_order_and_each_is_a_catalogue_record() -> None:
    events = run_day(seed=3)
    kinds = [e.kind for e in events]  # type: ignore[attr-defined]
    assert kinds[0] == "plan_changed"
    assert kinds.count("visit_started") == kinds.count("visit_ended") == 3
    assert kinds.count("leg_completed") == 4  # three villages and home
    assert kinds.count("charging_started") == kinds.count("charging_ended") == 1
    assert kinds[-1] == "daily"
    assert kinds.index("charging_ended") < kinds.index("daily")
    assert kinds.count("lift_cycle") >= 3
    # Each round-trips through the catalogue, as the office reads it.
    for event in events:
        data = event.to_json()  # type: ignore[attr-defined]
        assert parse_event(data) == event
    legs = [e for e in events if isinstance(e, LegCompleted)]
    assert legs[-1].to_place == DEPOT.id and all(leg.km > 0 for leg in legs)
    visits = [e for e in events if isinstance(e, VisitEnded)]
    assert all(30 <= v.duration_min <= 40 for v in visits)
    report = events[-1]
    assert isinstance(report, DailyReport)
    assert report.visits == 3 and report.legs == 4
    assert report.km == pytest.approx(sum(leg.km for leg in legs), rel=0.01)


def test_the_day_is_the_seed_s_and_does_not_depend_on_the_tick() -> None:
    assert run_day(seed=5) == run_day(seed=5)
    assert run_day(seed=5) != run_day(seed=6)
    coarse = [e.kind for e in run_day(seed=5, tick=60)  # type: ignore[attr-defined]
              if e.kind != "lift_cycle"]  # type: ignore[attr-defined]
    fine = [e.kind for e in run_day(seed=5, tick=5)  # type: ignore[attr-defined]
            if e.kind != "lift_cycle"]  # type: ignore[attr-defined]
    assert coarse == fine


async def test_a_cut_link_refuses_at_once_and_carries_again_when_restored() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Link("127.0.0.1", port) as link:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            writer.write(b"one")
            assert await asyncio.wait_for(reader.read(100), 5) == b"one"
            writer.close()
            link.cut()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.wait_for(asyncio.open_connection("127.0.0.1", link.port), 5)
            await link.restore()
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            writer.write(b"two")
            assert await asyncio.wait_for(reader.read(100), 5) == b"two"
            writer.close()
            assert link.cuts == 1
    finally:
        server.close()
        await server.wait_closed()


def test_the_config_names_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="more processes than buses"):
        FleetConfig(buses=2, processes=3)
    with pytest.raises(ValidationError, match="low is above high"):
        MinutesRange(low=5, high=1)
    with pytest.raises(ValidationError, match="extra"):
        FleetConfig.model_validate({"busses": 3})
    assert FleetConfig(buses=5, processes=2).share(1) == [1, 3]


def test_the_fleet_reconnects_as_a_bus_does_by_default() -> None:
    """The simulated buses take the uplink's own back-off unless a run says otherwise: the
    office benchmark measures the broker's restart as the real fleet would live through it."""
    from busd.config.uplink import MqttConfig

    fleet = FleetConfig()
    assert (fleet.reconnect_initial_s, fleet.reconnect_max_s) == (
        MqttConfig().reconnect_initial_s, MqttConfig().reconnect_max_s)
