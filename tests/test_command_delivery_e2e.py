"""Commands to a bus that is offline: kept by the broker in the bus's persistent session,
delivered once when it connects, dropped when they expire; the office follows each one.

Real mosquitto, the real uplink in process (``running_bus``), the office's live subscriber
archiving what the buses publish, and :func:`office.dispatch.send_plan` as the dispatcher
calls it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from busd.clock import ManualClock
from busd.plan import Plan, parse_plan
from busd.ports import CommandOutcome, JsonObject
from office.archive import Archive
from office.dispatch import command_statuses, plan_expiry, send_plan
from office.dispatch.channel import CommandChannel
from office.live import Office
from office.records import DEFAULT_PREFIX
from office.resend import ResendAsk, ask_resends
from telemetry.models import CmdPing
from telemetry.mqtt import BrokerSettings
from tests.support.mosquitto import Mosquitto
from tests.support.uplink_env import bus_config, running_bus, running_office
from tests.support.wait import wait_until

BUS = "bus-01"


def riga_today(days: int = 0) -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Riga")).date() + dt.timedelta(days=days)


def day_plan(version: int, day: dt.date) -> Plan:
    return parse_plan({"date": day.isoformat(), "version": version, "stops": [],
                       "depot": {"id": "livani", "name": "Līvāni", "lat": 56.3543,
                                 "lon": 26.1758}})


class Planner:
    """The bus's plan handler: what it was given."""

    def __init__(self) -> None:
        self.taken: list[int] = []

    async def __call__(self, body: JsonObject) -> CommandOutcome:
        self.taken.append(int(body["version"]))
        return CommandOutcome.accept()


async def state_of(archive: Archive, command_id: str) -> str | None:
    for status, state in await command_statuses(archive):
        if status.sent.id == command_id:
            return state
    return None


async def answers_for(archive: Archive, command_id: str) -> list[str]:
    """The kinds of the bus's records about one command, as archived (receipt, answer)."""
    return [r.kind for r in await archive.records(BUS)
            if r.kind in ("cmd_received", "cmd_result") and isinstance(r.data, dict)
            and r.data.get("id") == command_id]


async def connect_once(config: Any, office: Office, planner: Planner) -> None:
    """The bus connects (its session, with its subscriptions, is made) and stops cleanly."""
    async with running_bus(config, handlers={"plan": planner}):
        await office.wait_until(lambda: office.fleet.get(BUS) and office.fleet[BUS].online,
                                timeout=10)
    await office.wait_until(lambda: not office.fleet[BUS].online, timeout=10)


async def test_a_plan_sent_while_the_bus_is_offline_lands_once_through_a_broker_restart(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    planner = Planner()
    async with running_office(mosquitto.port) as office:
        await connect_once(config, office, planner)

        plan = day_plan(3, riga_today())
        sent = await send_plan(plan, bus=BUS, settings=settings, archive=office.archive,
                               prefix=DEFAULT_PREFIX, timeout_s=0.3, command_id="plan-3")
        assert sent.state == "pending" and sent.result is None
        assert sent.sent.expires == plan_expiry(plan)
        assert await state_of(office.archive, "plan-3") == "pending"

        mosquitto.restart()  # the broker keeps the bus's session and the plan on disk

        async with running_bus(config, handlers={"plan": planner}):
            await office.wait_until(lambda: state_of(office.archive, "plan-3"), timeout=15)
            await office.wait_until(
                lambda: _is(state_of(office.archive, "plan-3"), "accepted"), timeout=15)
            assert planner.taken == [3]
            assert await answers_for(office.archive, "plan-3") == ["cmd_received", "cmd_result"]

            # The same plan version again (the dispatcher pressed twice): the same answer,
            # and the bus does not take it a second time.
            again = await send_plan(plan, bus=BUS, settings=settings, archive=office.archive,
                                    prefix=DEFAULT_PREFIX, timeout_s=10, command_id="plan-3b")
            assert again.state == "accepted" and again.result is not None
            assert again.result.detail.version == 3
            assert planner.taken == [3]

        # Connected again later: nothing is delivered a second time.
        async with running_bus(config, handlers={"plan": planner}) as (parts, _):
            await office.wait_until(lambda: office.fleet[BUS].online, timeout=10)
            await ping(settings, "after-restart")
            assert parts.commands.counters["accepted"] == 1  # the ping only
        assert planner.taken == [3]
        assert await answers_for(office.archive, "plan-3") == ["cmd_received", "cmd_result"]


async def _is(state: Any, wanted: str) -> bool:
    return bool(await state == wanted)


async def ping(settings: BrokerSettings, command_id: str) -> None:
    """A ping, answered: every command sent before it has been through the bus (the broker
    delivers a session's messages in order)."""
    async with CommandChannel(settings, buses=[BUS], prefix=DEFAULT_PREFIX) as channel:
        now = dt.datetime.now(dt.UTC)
        await channel.send(BUS, "ping", CmdPing(bus=BUS, ts=now.isoformat(), id=command_id))
        answers = await channel.wait({(BUS, command_id)}, timeout_s=10)
    assert answers[(BUS, command_id)].accepted


async def test_a_plan_that_expires_before_the_bus_connects_never_lands(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    planner = Planner()
    async with running_office(mosquitto.port) as office:
        await connect_once(config, office, planner)

        # Yesterday's plan is not even sent.
        old = await send_plan(day_plan(4, riga_today(-1)), bus=BUS, settings=settings,
                              archive=office.archive, prefix=DEFAULT_PREFIX, timeout_s=1)
        assert old.state == "expired" and "before it was sent" in old.reason

        # Today's plan, sent (by the office's clock) one second before the day ends: the
        # broker drops it after that second, as it would at midnight.
        plan = day_plan(5, riga_today())
        late = ManualClock(plan_expiry(plan).timestamp() - 1)
        sent = await send_plan(plan, bus=BUS, settings=settings, archive=office.archive,
                               prefix=DEFAULT_PREFIX, timeout_s=0.1, clock=late,
                               command_id="late")
        assert sent.state == "pending"
        # The broker's own clock must pass the expiry: there is no event to wait on.
        await asyncio.sleep(2.0)

        async with running_bus(config, handlers={"plan": planner}):
            await office.wait_until(lambda: office.fleet[BUS].online, timeout=10)
            await ping(settings, "after-expiry")
        assert planner.taken == []
        assert await answers_for(office.archive, "late") == []
        assert await state_of(office.archive, "late") == "pending"  # its day has not ended
        statuses = await command_statuses(
            office.archive, clock=ManualClock(plan_expiry(plan).timestamp()))
        assert {s.sent.id: state for s, state in statuses} == {"late": "expired"}


async def test_every_command_expires_a_resend_that_outlives_its_expiry_never_lands(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    """Not only plans: a resend carries a message expiry (24 h by default, ``expiry_s`` when
    asked), the broker drops it for a bus that stays offline past it, and the office reads
    it expired instead of pending for the bus's whole session."""
    config = bus_config(tmp_path, mosquitto.port)
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    async with running_office(mosquitto.port) as office:
        await connect_once(config, office, Planner())

        short = await ask_resends(settings, [ResendAsk(BUS, 1, 5, "resend-short")],
                                  prefix=DEFAULT_PREFIX, timeout_s=0.1, archive=office.archive,
                                  expiry_s=1)
        day = await ask_resends(settings, [ResendAsk(BUS, 1, 5, "resend-day")],
                                prefix=DEFAULT_PREFIX, timeout_s=0.1, archive=office.archive)
        assert short[0].result is None and day[0].result is None
        sent = {s.sent.id: s.sent for s, _ in await command_statuses(office.archive)}
        assert sent["resend-short"].expires == sent["resend-short"].sent + dt.timedelta(seconds=1)
        assert sent["resend-day"].expires == sent["resend-day"].sent + dt.timedelta(hours=24)
        # The broker's own clock must pass the expiry: there is no event to wait on.
        await asyncio.sleep(2.0)

        async with running_bus(config):
            await office.wait_until(lambda: _is(state_of(office.archive, "resend-day"),
                                                "accepted"), timeout=15)
            await ping(settings, "after-resend-expiry")
        assert await answers_for(office.archive, "resend-short") == []
        assert await answers_for(office.archive, "resend-day") == ["cmd_received", "cmd_result"]
        assert await state_of(office.archive, "resend-short") == "expired"


async def test_a_command_the_bus_had_not_answered_when_it_stopped_comes_again(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    """Acknowledged only once answered: a bus stopped while a plan was in its hands gets the
    plan again on the next connection, and the office saw it delivered in between."""
    config = bus_config(tmp_path, mosquitto.port)
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    planner = Planner()
    stuck = asyncio.Event()

    async def hangs(body: JsonObject) -> CommandOutcome:
        stuck.set()
        await asyncio.Event().wait()  # stopped before it answers
        raise AssertionError("unreachable")

    async with running_office(mosquitto.port) as office:
        async with running_bus(config, handlers={"plan": hangs}):
            await office.wait_until(lambda: office.fleet.get(BUS) and office.fleet[BUS].online,
                                    timeout=10)
            sent = await send_plan(day_plan(6, riga_today()), bus=BUS, settings=settings,
                                   archive=office.archive, prefix=DEFAULT_PREFIX, timeout_s=0.2,
                                   command_id="stuck")
            assert sent.state in ("pending", "delivered")
            await office.wait_until(lambda: _is(state_of(office.archive, "stuck"), "delivered"),
                                    timeout=10)
            assert stuck.is_set()

        async with running_bus(config, handlers={"plan": planner}):
            await office.wait_until(lambda: _is(state_of(office.archive, "stuck"), "accepted"),
                                    timeout=15)
        assert planner.taken == [6]
        assert await answers_for(office.archive, "stuck") == [
            "cmd_received", "cmd_received", "cmd_result"]


async def test_the_command_line_sends_shows_the_answer_and_lists_the_statuses(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from busd.cli import main as busd_main

    config = bus_config(tmp_path, mosquitto.port)
    url = f"sqlite:///{tmp_path}/office.db"
    broker = ["--host", "127.0.0.1", "--port", str(mosquitto.port)]

    def plan_file(name: str, version: int, day: dt.date, **extra: Any) -> str:
        path = tmp_path / name
        path.write_text(day_plan(version, day).model_copy(update=extra).model_dump_json())
        return str(path)

    async def send(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = await asyncio.to_thread(busd_main, ["office", "plan", "send", *broker,
                                                     "--archive", url, *args])
        return status, capsys.readouterr().out

    planner = Planner()
    async with running_bus(config, handlers={"plan": planner}) as (parts, _):
        await wait_until(lambda: parts.uplink.connected_since is not None, timeout=10,
                         what="the bus connected")
        tomorrow = riga_today(1)
        status, out = await send("--bus", BUS, "--id", "cli-1", "--timeout", "10",
                                 plan_file("tomorrow.json", 1, tomorrow))
        assert status == 0, out
        # The test's handler accepts without scheduling; the planner's answer is shown as is.
        assert f"{BUS} plan cli-1: accepted" in out

        status, out = await send("--bus", BUS, "--timeout", "1",
                                 plan_file("yesterday.json", 1, riga_today(-1)))
        assert status == 4 and "not sent: expired at" in out

        status, out = await send("--bus", BUS, plan_file("other.json", 2, tomorrow,
                                                         bus="bus-02"))
        assert status == 2 and "the plan is for bus 'bus-02', not 'bus-01'" in out
        status, out = await send("--bus", BUS, "--id", "x" * 65,
                                 plan_file("long-id.json", 2, tomorrow))
        assert status == 2 and "id: String should have at most 64 characters" in out
        (tmp_path / "broken.json").write_text('{"date": "2026-13-01"}')
        status, out = await send("--bus", BUS, str(tmp_path / "broken.json"))
        assert status == 2 and "date: " in out

        # Version 1 of tomorrow again, under a new id: the bus gives the same answer.
        status, out = await send("--bus", BUS, "--id", "cli-2", "--timeout", "10", "--json",
                                 plan_file("again.json", 1, tomorrow))
        assert status == 0 and '"state":"accepted"' in out
        assert planner.taken == [1]

    capsys.readouterr()
    assert await asyncio.to_thread(busd_main, ["office", "command", "status",
                                               "--archive", url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in table[1:]] == ["cli-2", "cli-1"]
    assert all(" accepted " in line for line in table[1:])
