"""The staff page (``/staff``) in a real headless Chromium, against a real DisplayServer and
the real ServiceCounter on a real SQLite monitoring store.

The specialists count per service type and switch the activity with gloved fingers; what
they press is stored, published as valid events, and the driver's page shows the day's
total.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from busd.clock import SystemClock, utc_iso
from busd.config import ServicesConfig
from busd.services.counter import ServiceCounter
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import CaptureSink, visit_ended
from tests.support.components import running
from tests.support.display_browser import browser, make_server, screenshot, serving
from tests.support.wait import wait_until
from tests.test_display_browser import fed_state, open_page, text_of
from tests.test_services import RIGA, schema_valid, visit_started

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = ["browser"]  # the fixture, imported to be used here

GLOVED_PX = 64  # about 17 mm on a 10" tablet: a gloved fingertip


async def count_of(page: Page, service: str) -> str:
    return await text_of(page, f"li[data-type={service}] .n")


async def test_specialists_count_per_type_and_switch_the_activity(
    browser: Browser, tmp_path: Path,
) -> None:
    clock = SystemClock()
    sink = CaptureSink()
    store = MonitoringStore(tmp_path / "m.sqlite")
    config = ServicesConfig(start_activity="setup")
    counter = ServiceCounter(config=config, store=store, clock=clock, sink=sink,
                             timezone="Europe/Riga")
    state = fed_state(clock)
    server = make_server(state, clock, clients=counter, services=config)
    async with running(counter, clock), serving(server, clock) as srv:
        staff = await open_page(browser, srv.url + "staff?lang=en", width=1024, height=768)
        driver = await open_page(browser, srv.url)
        # Not on a visit: nothing can be pressed, and the page says why.
        await staff.wait_for_selector("body:not(.unreachable)")
        assert await text_of(staff, "#place") == "No visit now"
        assert await staff.locator("li[data-type=notary] .plus[disabled]").count() == 1

        now = time.time()
        counter.on_event(visit_started("visit-1", now))
        await staff.wait_for_selector("li[data-type=notary] .plus:not([disabled])")
        assert await text_of(staff, "#place") == "Place: Rudzāti"
        names = await staff.locator("#services .name").all_inner_texts()
        assert names == ["Municipal", "Social", "Notary", "Orphans' court", "Library", "Other"]
        for selector in ("li .plus", "li .minus", ".abtn"):
            for box in [await b.bounding_box() for b in await staff.locator(selector).all()]:
                assert box is not None and min(box["width"], box["height"]) >= GLOVED_PX, box

        for service, delta in (("notary", "plus"), ("notary", "plus"), ("social", "plus"),
                               ("notary", "minus")):
            await staff.click(f"li[data-type={service}] .{delta}")
            await staff.wait_for_selector(f"li[data-type={service}] .{delta}:not([disabled])")
        await staff.wait_for_function(
            "() => document.querySelector('li[data-type=notary] .n').textContent === '1'")
        assert await count_of(staff, "social") == "1" and await count_of(staff, "library") == "0"
        assert await text_of(staff, "#total") == "Total: 2"
        assert await staff.locator(".abtn.on").get_attribute("data-activity") == "setup"
        await staff.click(".abtn[data-activity=serving]")
        await staff.wait_for_selector(".abtn.on[data-activity=serving]")
        await screenshot(staff, "staff-en-1024x768.png")

        # The driver's page keeps the day's total.
        await driver.wait_for_function(
            "() => document.getElementById('clients-count').textContent === '2'")
        # Latvian labels on the same page.
        await staff.click("#langs button[data-lang=lv]")
        assert await text_of(staff, "li[data-type=orphans_court] .name") == "Bāriņtiesa"

        # The bus leaves: the counts belong to that visit, and the counters are off.
        day = datetime.fromtimestamp(now, RIGA).date().isoformat()
        counter.on_event(visit_ended(id="visit-1", day=day, start=utc_iso(now),
                                     end=utc_iso(time.time()), place_id="rudzati",
                                     place_kind="stop"))
        await staff.wait_for_selector("li[data-type=notary] .plus[disabled]")
        assert await text_of(staff, "#place") == "Nav apmeklējuma"
        await driver.wait_for_function(
            "() => document.getElementById('clients-count').textContent === '2'")
        await wait_until(lambda: not counter._unsaved, timeout=5, what="the visit's end stored")

    tallies = store.tallies("2026-01-01")  # every visit since
    assert [(t.visit_id, dict(t.counts), t.activity) for t in tallies] == [
        ("visit-1", {"notary": 1, "social": 1}, None)]
    assert set(tallies[0].activity_s) == {"setup", "serving"}
    store.close()
    assert sink.kinds() == [*["service_counted"] * 4, "activity_changed", "activity_changed"]
    for kind, data in sink.events:
        schema_valid(kind, data)
