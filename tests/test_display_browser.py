"""The driver's page in a real headless Chromium against a real DisplayServer.

The server is fed by a real VehicleState (written by the CAN simulator through
the CAN reader on a python-can ``virtual`` bus, or by the test), the real
lift alert rule and alert board, and in-memory fakes of the planner, uplink
and monitoring store ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import can
import pytest

from busd import signals as sig
from busd.alerts import AlertBoard
from busd.alerts_lift import LiftMovingAlert
from busd.clock import SystemClock
from busd.config import CanConfig, CanSimulatorConfig
from busd.display.i18n import catalogues
from busd.state import VehicleState
from drivers.can.decoder import FrameDecoder
from drivers.can.reader import CanReader
from simulators.can.simulator import CanSimulator
from tests.can_helpers import OWN_DBC, frame, own_db, sim_mapping
from tests.support.components import running
from tests.support.display_browser import browser, make_server, screenshot, serving
from tests.support.display_fakes import (
    FakeClientsCounter,
    FakePlanner,
    FakeUplink,
    livani_day,
)
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = ["browser"]  # the fixture, imported to be used here

_channels = itertools.count()
TIMEOUT_MS = 8000


def fed_state(clock: SystemClock, **freshness: float) -> VehicleState:
    state = VehicleState(clock, freshness_overrides=freshness or None)
    for name, value in ((sig.BATTERY_SOC, 72.4), (sig.VEHICLE_SPEED, 0.0),
                        (sig.LIFT_STATE, "stowed")):
        state.update(name, value, source="test")
    return state


class Feeder:
    """Keeps signals fresh, as a driver would, with values the test changes."""

    def __init__(self, state: VehicleState, **values: object) -> None:
        self.state = state
        self.values = dict(values)

    async def run(self) -> None:
        while True:
            for name, value in list(self.values.items()):
                self.state.update(name, value, source="test")
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Feeder]:
        task = asyncio.create_task(self.run(), name="test:feeder")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def fresh(state: VehicleState, **values: object) -> Feeder:
    """A feeder keeping SOC, speed and lift current (parked, lift stowed) plus ``values``."""
    base: dict[str, object] = {sig.BATTERY_SOC: 58.0, sig.VEHICLE_SPEED: 0.0,
                               sig.LIFT_STATE: "stowed"}
    base.update(values)
    return Feeder(state, **base)


async def open_page(browser: Browser, url: str, *, width: int = 800, height: int = 480) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    return page


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).strip()


async def test_can_simulator_values_appear_and_update_live(browser: Browser) -> None:
    clock = SystemClock()
    state = VehicleState(clock)
    channel = f"test-display-{next(_channels)}"
    can_config = CanConfig(interface="virtual", channel=channel, dbc=OWN_DBC,
                           mapping=sim_mapping())
    reader = CanReader(config=can_config, decoder=FrameDecoder(own_db(), can_config.mapping),
                       state=state, clock=clock)
    sim = CanSimulator(CanSimulatorConfig(interface="virtual", channel=channel, dbc=OWN_DBC,
                                          initial_soc=77.0), clock)
    async with running(reader, clock), running(sim, clock):
        await state.wait_for(lambda s: s.value(sig.BATTERY_SOC) is not None, timeout=5)
        async with serving(make_server(state, clock), clock) as server:
            page = await open_page(browser, server.url)
            await page.wait_for_selector("body:not(.unreachable)")
            await page.wait_for_function(
                "() => document.getElementById('soc').textContent.trim() === '77 %'"
            )
            first = await text_of(page, "#updated")
            assert re.fullmatch(r"Atjaunots \d\d:\d\d:\d\d", first), first
            # The simulator keeps sending: the page keeps being updated.
            await page.wait_for_function(
                "(t) => document.getElementById('updated').textContent !== t", arg=first
            )
            speed = await text_of(page, "#speed")
            assert re.fullmatch(r"\d+ km/h", speed), speed
            assert not await page.locator("body.stale").count()


async def test_values_written_to_the_state_update_the_page(browser: Browser) -> None:
    clock = SystemClock()
    state = fed_state(clock)
    server = make_server(state, clock, uplink=FakeUplink(False, 1234), night_mode="off")
    async with serving(server, clock) as srv:
        page = await open_page(browser, srv.url)
        await page.wait_for_function("() => document.getElementById('soc').textContent === '72 %'")
        state.update(sig.BATTERY_SOC, 64.6, source="test")
        await page.wait_for_function("() => document.getElementById('soc').textContent === '65 %'")
        assert await text_of(page, "#office-state") == "Nav savienojuma"
        assert await text_of(page, "#office-backlog") == "rindā 1234"
        # Charging, with the decimal comma.
        state.update(sig.CHARGER_PLUGGED, True, source="test")
        state.update(sig.CHARGER_STATE, "charging", source="test")
        state.update(sig.CHARGER_POWER, 11.25, source="test")
        state.update(sig.CHARGER_SESSION_ENERGY, 4.5, source="test")
        await page.wait_for_selector("#charging:not([hidden])")
        assert await text_of(page, "#charge-power") == "11,3 kW"
        assert await text_of(page, "#charge-energy") == "4,5 kWh"
        assert await text_of(page, "#charge-to") == "Līdz 90 %"
        # (90 - 64.6) % of 110 kWh at 11.25 kW = 149 min
        assert await text_of(page, "#charge-eta") == "~2 st 29 min"
        await screenshot(page, "display-charging-lv-800x480.png")


async def test_stale_signals_and_a_lost_daemon_look_stale(browser: Browser) -> None:
    clock = SystemClock()
    state = fed_state(clock, **{sig.BATTERY_SOC: 0.6})
    async with serving(make_server(state, clock, heartbeat_s=1.0), clock) as srv:
        page = await open_page(browser, srv.url)
        await page.wait_for_selector("body:not(.unreachable)")
        # No new SOC: within a second or two it reads stale, and the whole page says so.
        await page.wait_for_selector("#soc.is-stale")
        await page.wait_for_selector("body.stale")
        assert await text_of(page, "#stale-text") == "DATI NAV AKTUĀLI"
        state.update(sig.BATTERY_SOC, 70.0, source="test")
        await page.wait_for_selector("#soc:not(.is-stale)")


async def test_lift_warning_while_moving_with_the_lift_deployed(browser: Browser) -> None:
    clock = SystemClock()
    state = VehicleState(clock)
    alerts = AlertBoard(clock=clock)
    channel = f"test-display-{next(_channels)}"
    can_config = CanConfig(interface="virtual", channel=channel, dbc=OWN_DBC,
                           mapping=sim_mapping())
    reader = CanReader(config=can_config, decoder=FrameDecoder(own_db(), can_config.mapping),
                       state=state, clock=clock)
    rule = LiftMovingAlert(state=state, sink=alerts, speed_threshold_kmh=3.0)
    db = own_db()
    speed = {"kmh": 0.0}

    async def vehicle() -> None:  # the vehicle's CCVS1 at 10 Hz, with the speed we set
        with can.Bus(interface="virtual", channel=channel) as tx:
            while True:
                tx.send(frame(db, "CCVS1", WheelBasedVehicleSpeed=speed["kmh"]))
                tx.send(frame(db, "BMS_Status", StateOfCharge=60.0))
                await asyncio.sleep(0.1)

    feeder = Feeder(state, **{sig.LIFT_STATE: "deployed"})
    async with running(reader, clock), running(rule, clock), feeder.running():
        sender = asyncio.create_task(vehicle(), name="test:vehicle")
        try:
            await state.wait_for(lambda s: s.value(sig.VEHICLE_SPEED) == 0.0, timeout=5)
            server = make_server(state, clock, alerts=alerts, night_mode="off")
            async with serving(server, clock) as srv:
                page = await open_page(browser, srv.url)
                await page.wait_for_selector("body:not(.unreachable)")
                assert await text_of(page, "#lift-state") == "Izbīdīts"
                assert await page.locator("#liftwarn").is_hidden()
                speed["kmh"] = 12.0
                await page.wait_for_selector("#liftwarn:not([hidden])")
                assert await text_of(page, "#liftwarn") == catalogues()["lv"]["lift.warning"]
                await page.wait_for_function(
                    "() => document.getElementById('alerts').textContent.includes("
                    "'Brauciens ar nesalocītu pacēlāju')"
                )
                box = await page.locator("#liftwarn").bounding_box()
                assert box is not None and box["width"] == 800  # full width
                await screenshot(page, "display-lift-warning-lv-800x480.png")
                feeder.values[sig.LIFT_STATE] = "stowed"
                await page.wait_for_selector("#liftwarn[hidden]", state="attached")
                assert await text_of(page, "#lift-state") == "Salocīts"
                assert "lift_not_stowed_moving" not in alerts.active
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


async def test_proposal_appears_and_accept_acknowledges_it(browser: Browser) -> None:
    clock = SystemClock()
    state = fed_state(clock)
    planner = FakePlanner(livani_day(clock.now()))
    counter = FakeClientsCounter()
    async with fresh(state).running():
        server = make_server(state, clock, plan=planner, uplink=FakeUplink(True, 0),
                             clients=counter, night_mode="off")
        async with serving(server, clock) as srv:
            page = await open_page(browser, srv.url)
            await page.wait_for_selector("#proposal:not([hidden])")
            reasons = await page.locator("#proposal-reasons li").all_inner_texts()
            assert reasons == list(planner.plan.proposal.reasons["lv"])  # type: ignore[union-attr]
            assert await text_of(page, "#depot-band") == "Nepietiek"
            assert await page.locator("#depot.red").count() == 1
            assert await text_of(page, "#next-name") == "Turki"
            assert await text_of(page, "#next-planned") == "1 st 15 min"
            await screenshot(page, "display-lv-800x480-proposal.png")
            await page.click("#accept")
            await page.wait_for_selector("#proposal", state="hidden")
            assert planner.acknowledged == ["p-3"]
            await page.wait_for_function(
                "() => document.querySelector('#stops li.skipped b')?.textContent === 'Sutri'"
            )
            assert await text_of(page, "#depot-band") == "Pietiek"
            assert await text_of(page, "#next-planned") == "45 min"
            assert await text_of(page, "#depot-detail") == "rezerve 15 % · +6"
            await screenshot(page, "display-lv-800x480.png")


async def test_a_change_of_plan_held_for_the_arrival_is_named_beside_the_band(
    browser: Browser,
) -> None:
    """On the road the planner holds a change that leaves the place ahead as it is until
    the bus gets there: the band is red with no proposal, and the line under it says where
    the change comes."""
    clock = SystemClock()
    state = fed_state(clock)
    held = dataclasses.replace(livani_day(clock.now()), proposal=None, proposal_at="Turki")
    async with fresh(state).running():
        server = make_server(state, clock, plan=FakePlanner(held), uplink=FakeUplink(True, 0),
                             clients=FakeClientsCounter(), night_mode="off")
        async with serving(server, clock) as srv:
            page = await open_page(browser, srv.url)
            await page.wait_for_function(
                "() => document.querySelector('#depot-detail')?.textContent.includes('Turki')")
            assert await text_of(page, "#depot-detail") == "rezerve 15 % · −2 · plāna maiņa: Turki"
            assert await page.locator("#depot.red").count() == 1
            assert await page.locator("#proposal").is_hidden()


async def test_the_drivers_page_shows_the_days_total_and_no_counter(browser: Browser) -> None:
    clock = SystemClock()
    state = fed_state(clock)
    counter = FakeClientsCounter(counts={"turki-1": 5})
    async with serving(make_server(state, clock, clients=counter), clock) as srv:
        page = await open_page(browser, srv.url)
        await page.wait_for_function("() => document.getElementById('clients-count')"
                                     ".textContent === '5'")
        assert await page.locator("#clients-card button").count() == 0  # counting is on /staff
        await counter.increment(1, "notary")
        await counter.increment(1, "social")
        await page.wait_for_function("() => document.getElementById('clients-count')"
                                     ".textContent === '7'")
        assert await text_of(page, "#clients-note") == "Šajā apmeklējumā: 2"
        counter.visit_id = None  # the bus left: the day's total stays
        await page.wait_for_function("() => document.getElementById('clients-note')"
                                     ".textContent === 'Nav apmeklējuma'")
        assert await text_of(page, "#clients-count") == "7"


async def test_page_recovers_after_the_daemon_restarts(browser: Browser) -> None:
    clock = SystemClock()
    state = fed_state(clock)
    counter = FakeClientsCounter()
    server = make_server(state, clock, clients=counter)
    async with serving(server, clock):
        port = server.port
        assert port is not None
        driver = await open_page(browser, server.url)
        page = await open_page(browser, server.url + "staff")
        await page.wait_for_selector("body:not(.unreachable)")
        await page.click("li[data-type=notary] .plus")
        await wait_until(lambda: counter.counts.get("rudzati-1") == 1, timeout=5, what="count")
    # Daemon down: the page says so plainly.
    for shown in (driver, page):
        await shown.wait_for_selector("body.unreachable")
        assert await text_of(shown, "#stale-text") == catalogues()["lv"]["stale.unreachable"]
    state.update(sig.BATTERY_SOC, 41.0, source="test")
    restarted = make_server(state, clock, clients=counter, port=port)  # a new process: new secret
    async with serving(restarted, clock):
        await page.wait_for_selector("body:not(.unreachable)", timeout=15000)
        await driver.wait_for_function(
            "() => document.getElementById('soc').textContent === '41 %'", timeout=15000)
        # The page took the new session token from the stream: writes still work.
        await page.click("li[data-type=notary] .plus")
        await wait_until(lambda: counter.counts.get("rudzati-1") == 2, timeout=5,
                         what="count after restart")


def _distinct_lv_texts(other: str) -> list[str]:
    """Latvian catalogue texts (their fixed parts) that differ from ``other``'s."""
    lv, them = catalogues()["lv"], catalogues()[other]
    parts: set[str] = set()
    for key, text in lv.items():
        if text == them[key]:
            continue
        for part in re.split(r"\{\w+\}", text):
            part = part.strip(" :·…—")
            if len(part) >= 4 and part not in them[key]:
                parts.add(part)
    return sorted(parts)


@pytest.mark.parametrize("lang", ["en", "lt"])
async def test_language_switch_changes_every_visible_text(browser: Browser, lang: str) -> None:
    clock = SystemClock()
    state = fed_state(clock)
    state.update(sig.CHARGER_PLUGGED, True, source="test")
    state.update(sig.CHARGER_STATE, "charging", source="test")
    state.update(sig.CHARGER_POWER, 7.5, source="test")
    alerts = AlertBoard(clock=clock)
    alerts.raise_alert("lift_not_stowed_moving", message="x", details={})
    planner = FakePlanner(livani_day(clock.now()))
    async with fresh(state).running(), serving(
        make_server(state, clock, plan=planner, uplink=FakeUplink(True, 3),
                    clients=FakeClientsCounter(), alerts=alerts, night_mode="off"), clock,
    ) as srv:
        page = await open_page(browser, srv.url, width=1280, height=800)
        await page.wait_for_selector("#proposal:not([hidden])")
        # innerText is what is seen (headings are upper-cased by CSS): compare case-blind.
        lv_text = (await page.inner_text("body")).lower()
        assert "apstiprināt" in lv_text and "dienas pieturas" in lv_text
        await page.click(f"#langs button[data-lang={lang}]")
        await page.wait_for_function(f"() => document.documentElement.lang === '{lang}'")
        body = (await page.inner_text("body")).lower()
        title = await page.title()
        left = [t for t in _distinct_lv_texts(lang) if t.lower() in body or t in title]
        assert not left, f"Latvian left on the {lang} page: {left}"
        for key in ("proposal.accept", "stops.title", "clients.today", "alerts.title"):
            assert catalogues()[lang][key].lower() in body
        assert title == catalogues()[lang]["app.title"]
        if lang == "en":
            assert "heating uses more than planned" in body
            await screenshot(page, "display-en-1280x800.png")


async def test_night_mode(browser: Browser) -> None:
    clock = SystemClock()
    state = fed_state(clock)
    planner = FakePlanner(livani_day(clock.now()))
    planner.plan = planner.plan and type(planner.plan)(
        stops=planner.plan.stops, reserve_soc=15.0, depot_soc=18.0, proposal=None
    )
    alerts = AlertBoard(clock=clock)
    alerts.raise_alert("charger_fault", message="x", details={})
    async with fresh(state, **{sig.LIFT_STATE: "deployed"}).running(), serving(
        make_server(state, clock, night_mode="on", plan=planner, uplink=FakeUplink(False, 17),
                    clients=FakeClientsCounter(), alerts=alerts), clock,
    ) as srv:
        page = await open_page(browser, srv.url)
        await page.wait_for_selector("body.night")
        assert await page.locator("#depot.amber").count() == 1
        bg = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(0, 0, 0)"
        await screenshot(page, "display-night-lv-800x480.png")
