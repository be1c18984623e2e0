"""The office web in headless Chromium: the fleet page live with 50 simulated buses, the map
with no tile server, and login, roles, CSRF, logout and session expiry as a user meets them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from busd.clock import ManualClock, utc_iso
from office.archive import ArchivedRecord, open_archive
from office.config import OfficeConfig, parse_config
from office.web.i18n import translate
from office.web.pages import fleet as fleet_page
from office.web.server import RunningWeb, serving
from simulators.fleet.config import DayConfig, FleetConfig, MinutesRange, OutageConfig, RatesConfig
from telemetry.mqtt import BrokerSettings
from tests.support.display_browser import screenshot
from tests.support.mosquitto import REPO, Mosquitto, free_port
from tests.support.office_web import DISPATCHER, FAST_HASHER, VIEWER, add_users
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.slow
BUSES = 50


def closed_port_tiles() -> str:
    return f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png"


def config(*, broker_port: int | None, **web: Any) -> OfficeConfig:
    return parse_config({
        "web": {"port": 0, **web},
        "map": {"tile_url": closed_port_tiles()},
        "mqtt": {"host": "127.0.0.1", "port": broker_port or 1883,
                 "enabled": broker_port is not None}})


@contextlib.asynccontextmanager
async def web_over(tmp_path: Path, cfg: OfficeConfig, *,
                   session_clock: ManualClock | None = None,
                   records: list[ArchivedRecord] | None = None) -> AsyncIterator[RunningWeb]:
    async with open_archive(f"sqlite:///{tmp_path / 'office.db'}") as archive:
        await add_users(archive)
        if records:
            await archive.insert_batch(records)
        settings = BrokerSettings(host="127.0.0.1", port=cfg.mqtt.port)
        async with serving(cfg, archive=archive, session_clock=session_clock,
                           settings=settings, archive_poll_s=1.0,
                           hasher=FAST_HASHER) as running:
            yield running


CSP_ERRORS: list[str] = []


async def log_in(browser: Browser, url: str, user: tuple[str, str]) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    # Anything the page's own code does that the CSP blocks shows up as a console error.
    page.on("console", lambda m: CSP_ERRORS.append(m.text)
            if "Content Security Policy" in m.text else None)
    await page.goto(url)
    assert page.url.endswith("/login")
    await page.fill("input[name=name]", user[0])
    await page.fill("input[name=password]", user[1])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#fleet-map")
    return page


async def marker_positions(page: Page) -> str:
    return str(await page.evaluate(
        "Array.from(window.fleetMarkers.entries()).map(([k, m]) => "
        "k + '@' + m.getLatLng().lat.toFixed(5) + ',' + m.getLatLng().lng.toFixed(5))"
        ".sort().join(';')"))


def fleet_config(port: int, data_dir: Path) -> FleetConfig:
    # 60x: a simulated minute a second; one state message a simulated minute while moving
    # (one a second per bus), so the page has something new every second or so.
    return FleetConfig(
        buses=BUSES, processes=2, broker_port=port, speed=60, duration_s=4 * 3600, seed=7,
        data_dir=data_dir, backlog_min=0,
        day=DayConfig(stops=3, depot_min=MinutesRange(low=0, high=1),
                      visit_min=MinutesRange(low=5, high=10)),
        outages=OutageConfig(count=0),
        rates=RatesConfig(telemetry_moving_s=60, telemetry_parked_s=120, state_moving_s=60,
                          state_parked_s=120, commit_interval_s=10, tick_s=10),
        drain_timeout_s=10, log_level="error")


@contextlib.asynccontextmanager
async def fleet_running(cfg: FleetConfig, tmp_path: Path) -> AsyncIterator[None]:
    config_file = tmp_path / "fleet.json"
    config_file.write_text(cfg.model_dump_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.fleet", "--config", str(config_file), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL)
    try:
        yield
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # the children stop and drain (10 s at most)
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_fleet_page_shows_fifty_simulated_buses_live(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = config(broker_port=mosquitto.port)
    async with web_over(tmp_path, cfg) as web, \
            fleet_running(fleet_config(mosquitto.port, tmp_path / "fleet"), tmp_path):
        page = await log_in(browser, web.url, VIEWER)
        await page.wait_for_function(f"() => document.body.dataset.buses === '{BUSES}'",
                                     timeout=30_000)
        await page.wait_for_function(
            f"() => window.fleetMarkers.size === {BUSES}", timeout=30_000)
        await page.wait_for_selector("#stream-state[data-state=live]")
        rows = await page.locator("#fleet-table tbody tr[data-online=yes]").count()
        assert rows == BUSES
        before = await marker_positions(page)
        updated = await page.evaluate("document.body.dataset.updated")
        # Buses drive: markers move without a reload, over the event stream.
        await page.wait_for_function(
            "(before) => Array.from(window.fleetMarkers.entries()).map(([k, m]) => "
            "k + '@' + m.getLatLng().lat.toFixed(5) + ',' + m.getLatLng().lng.toFixed(5))"
            ".sort().join(';') !== before", arg=before, timeout=30_000)
        assert await page.evaluate("document.body.dataset.updated") != updated
        assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
        await screenshot(page, "office-fleet.png")  # docs/office-fleet.png
        assert CSP_ERRORS == []
        await page.close()


def _plan_document() -> dict[str, Any]:
    depot = {"id": "depot", "name": "Līvāni depo", "lat": 56.354, "lon": 26.175}
    stops = [{"id": "rozupe", "name": "Rožupe", "lat": 56.395, "lon": 26.255},
             {"id": "jersika", "name": "Jersika", "lat": 56.331, "lon": 26.221},
             {"id": "turki", "name": "Turki", "lat": 56.432, "lon": 26.105},
             {"id": "sutri", "name": "Sutri", "lat": 56.300, "lon": 26.090}]
    return {"bus": "lv-01", "ts": utc_iso(datetime.now(UTC).timestamp()),
            "schema": "busd.plan/1",
            "plan": {"date": "2026-12-05", "version": 2, "depot": depot, "stops": stops},
            "itinerary": [{"kind": "stop", "id": s, "minutes": 60}
                          for s in ("rozupe", "jersika", "turki")],
            "done": ["rozupe"], "at": "jersika",
            "projection": {"depot_soc": 41.0, "reserve_pct": 20.0, "depot_margin_pct": 16.0},
            "pending": None}


async def publish_bus(port: int, bus: str, *, lat: float, lon: float, soc: float,
                      plan: dict[str, Any] | None = None,
                      alerts: dict[str, str] | None = None,
                      outbox: dict[str, Any] | None = None) -> None:
    now = utc_iso(datetime.now(UTC).timestamp())
    async with aiomqtt.Client("127.0.0.1", port) as client:
        base = f"multimobile/v1/{bus}"
        await client.publish(f"{base}/status", json.dumps(
            {"bus": bus, "ts": now, "schema": "busd.status/1", "online": True,
             "version": "test", "boot": now}), qos=1, retain=True)
        state: dict[str, Any] = {"bus": bus, "ts": now, "schema": "busd.state/1",
                                 "moving": False, "values": {
                                     "battery.soc": soc, "gps.lat": lat, "gps.lon": lon,
                                     "gps.heading": 135.0}}
        if alerts:
            state["alerts"] = alerts
        if outbox:
            state["outbox"] = outbox
        await client.publish(f"{base}/state", json.dumps(state), qos=1, retain=True)
        if plan is not None:
            await client.publish(f"{base}/plan", json.dumps(plan), qos=1, retain=True)


async def test_map_shows_route_stops_and_buses_with_no_tile_server(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = config(broker_port=mosquitto.port)
    await publish_bus(mosquitto.port, "lv-01", lat=56.331, lon=26.221, soc=63.5,
                      plan=_plan_document(), alerts={"lift_door": "lift door open"},
                      outbox={"unsent": 1234, "oldest_age_s": 95.4})
    await publish_bus(mosquitto.port, "lt-02", lat=56.312, lon=22.341, soc=17.0)
    async with web_over(tmp_path, cfg) as web:
        page = await log_in(browser, web.url, DISPATCHER)
        await page.wait_for_function("() => window.fleetMarkers.size === 2",
                                     timeout=15_000)
        for status in ("depot", "done", "now", "next", "skipped"):
            assert await page.locator(f"path.stop-{status}").count() == 1, status
        assert await page.locator("path.route").count() == 1
        # Every tile failed (nothing listens there), and the vectors are drawn all the same.
        await page.wait_for_function("() => document.body.dataset.tiles === 'unreachable'")
        assert await page.locator(".leaflet-tile-loaded").count() == 0
        row = page.locator("#fleet-table tr[data-bus=lv-01]")
        text = await row.inner_text()
        assert "Jersika" in text and "Turki" in text and "41 / 20" in text
        assert "lift_door" in text
        assert await row.locator("td.backlog").inner_text() == "1234 · 95 s"  # the bus's own
        assert await row.locator("a.day-link").get_attribute("href") == "/buses/lv-01/day"
        # The marker's popup links to the same day page.
        await page.evaluate("() => window.fleetMarkers.get('lv-01').openPopup()")
        popup_link = page.locator(".leaflet-popup a.day-link")
        assert await popup_link.get_attribute("href") == "/buses/lv-01/day"
        await popup_link.click()
        await page.wait_for_url("**/buses/lv-01/day/**")
        await page.go_back()
        await page.wait_for_function("() => window.fleetMarkers.size === 2",
                                     timeout=15_000)
        low = page.locator("#fleet-table tr[data-bus=lt-02] td.soc")
        assert await low.inner_text() == "17.0"
        # A broken stream (a proxy's timeout, a network blip): the page reconnects by itself.
        await page.wait_for_function("() => window.fleetStreamOpens === 1")
        server = web.runner.server
        assert server is not None
        for connection in server.connections:
            connection.force_close()
        await page.wait_for_function("() => window.fleetStreamOpens === 2", timeout=10_000)
        await page.wait_for_selector("#stream-state[data-state=live]")
        await page.click("header .lang button[value=en]")
        await page.wait_for_selector("html[lang=en]")
        await page.wait_for_function("() => window.fleetMarkers.size === 2",
                                     timeout=15_000)
        await screenshot(page, "office-fleet-route.png")  # docs/office-fleet-route.png
        await page.close()


async def test_the_fleet_table_names_where_a_held_change_of_plan_comes(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    """On the road, the bus's planner holds a change until the place ahead: the table's
    depot figure says where it comes, so staff see a plan in hand, not a silent shortfall."""
    document = _plan_document()
    document.update({"done": ["rozupe"], "at": None, "proposal_at": "jersika",
                     "projection": {"depot_soc": 17.0, "reserve_pct": 20.0,
                                    "depot_margin_pct": -3.0}})
    await publish_bus(mosquitto.port, "lv-01", lat=56.36, lon=26.24, soc=48.0, plan=document)
    async with web_over(tmp_path, config(broker_port=mosquitto.port)) as web:
        page = await log_in(browser, web.url, VIEWER)
        depot = page.locator("#fleet-table tr[data-bus=lv-01] td").nth(3)
        await page.wait_for_function(
            "() => document.querySelector('#fleet-table tr[data-bus=lv-01]') !== null",
            timeout=15_000)
        assert await depot.inner_text() == "17 / 20 · " + translate(
            "lv", "fleet.change_at", place="Jersika")
        assert "low" in (await depot.get_attribute("class") or "")
        await page.close()


def _gap_records(now: datetime) -> list[ArchivedRecord]:
    """lv-01's records 1-3 and 7-8 today: 4-6 lost."""
    return [ArchivedRecord(bus="lv-01", seq=s, ts=now, schema="busd.telemetry/1", kind="sample",
                           topic="multimobile/v1/lv-01/telemetry", received=now,
                           data={"full": True, "values": {}, "stale": []})
            for s in (1, 2, 3, 7, 8)]


async def test_login_roles_csrf_logout_and_expiry_in_the_browser(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_page, "KEEPALIVE_S", 0.2)  # the stream looks at its session often
    clock = ManualClock(datetime.now(UTC).timestamp())
    cfg = config(broker_port=mosquitto.port)
    async with web_over(tmp_path, cfg, session_clock=clock,
                        records=_gap_records(datetime.now(UTC))) as web:
        await web.feed.archive_polled.wait()
        # A viewer sees the fleet, has no resend button, and the endpoint refuses them.
        page = await log_in(browser, web.url, VIEWER)
        await page.wait_for_selector("#fleet-table tr[data-bus=lv-01]")
        assert await page.locator("form.resend").count() == 0
        complete = page.locator("#fleet-table tr[data-bus=lv-01] td.complete")
        assert await complete.inner_text() == "62.5 %"  # 5 of 8 records
        csrf = await page.input_value("header form.lang input[name=csrf]")
        status = await page.evaluate(
            "(csrf) => fetch('/buses/lv-01/resend', {method: 'POST', headers: "
            "{'X-CSRF-Token': csrf}}).then(r => r.status)", csrf)
        assert status == 403
        await page.click("#logout")
        # The login page; with ?expired=1 when the page's stream, which looks at its session
        # every 0.2 s here, saw the session end before the logout's own redirect came back.
        await page.wait_for_url(re.compile(r"/login(\?expired=1)?$"))
        assert (await page.context.request.get(web.url + "fleet.json")).status == 401
        await page.close()

        # A dispatcher asks lv-01 for its missing records: a real cmd/resend to the bus.
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as bus:
            await bus.subscribe("multimobile/v1/lv-01/cmd/resend", qos=1)
            page = await log_in(browser, web.url, DISPATCHER)
            # Without its CSRF token the same request is refused.
            status = await page.evaluate(
                "() => fetch('/buses/lv-01/resend', {method: 'POST'}).then(r => r.status)")
            assert status == 403
            await wait_until(lambda: web.feed.office is not None
                             and web.feed.office.connected.is_set(), timeout=10,
                             what="the web's broker connection")
            await page.click("#fleet-table tr[data-bus=lv-01] form.resend button")
            await page.wait_for_selector("p.flash")
            assert "lv-01" in await page.inner_text("p.flash")
            async with asyncio.timeout(10):
                message = await anext(aiter(bus.messages))
            command = json.loads(bytes(message.payload))
            assert (command["first_seq"], command["last_seq"]) == (4, 6)
            # Recorded, with the resend's expiry: the commands page follows it.
            [recorded] = await web.ctx.archive.commands(bus="lv-01")
            assert recorded.sent.id == command["id"] and recorded.sent.command == "resend"
            assert recorded.sent.expires == recorded.sent.sent + timedelta(hours=24)

        # The session's lifetime passes: the open page goes to the login by itself.
        await clock.advance(cfg.web.session_minutes * 60 + 1)
        await page.wait_for_url("**/login?expired=1", timeout=10_000)
        assert await page.locator("p.notice").count() == 1
        await page.close()
