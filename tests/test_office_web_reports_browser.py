"""The bus's day and the monthly report in headless Chromium: a day page shows a shortened
stop with its reason (and draws the SOC chart), and a monthly XLSX downloads and, opened with
openpyxl, holds the right numbers. Screenshots go to docs/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import openpyxl
import pytest

from tests.support.display_browser import browser  # noqa: F401  (the fixture)
from tests.support.mosquitto import REPO
from tests.support.office_day import DaySpec, day_records
from tests.support.office_web import VIEWER, WebUnderTest, web_under_test

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.slow
DOCS = REPO / "docs"


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebUnderTest]:
    async with web_under_test(tmp_path) as w:
        await w.ctx.archive.insert_batch(day_records(DaySpec()))
        await w.ctx.archive.insert_batch(day_records(DaySpec(bus="lv-02", clients=10,
                                                             telemetry=False)))
        yield w


async def logged_in(browser: Browser, web: WebUnderTest) -> tuple[Page, list[str]]:  # noqa: F811
    page = await browser.new_page(viewport={"width": 1280, "height": 1000},
                                  accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and
            "Content Security Policy" in m.text else None)
    await page.goto(str(web.client.make_url("/login")))
    await page.fill("input[name=name]", VIEWER[0])
    await page.fill("input[name=password]", VIEWER[1])
    await page.click("button[type=submit]")
    await page.wait_for_url("**/")
    # Only this test's pages count (the fleet page, where the login lands, is tested apart).
    await page.goto("about:blank")
    errors.clear()
    return page, errors


async def test_a_day_page_shows_a_shortened_stop_with_its_reason(
        browser: Browser, web: WebUnderTest) -> None:  # noqa: F811
    page, errors = await logged_in(browser, web)
    await page.goto(str(web.client.make_url("/buses/lv-01/day/2026-03-09")))
    row = page.locator("tr.stop.shortened")
    await row.wait_for()
    assert await row.get_attribute("data-stop") == "sutri"
    assert await row.locator("td.status").inner_text() == "saīsināta"
    reasons = await row.locator(".reason-text").all_inner_texts()
    assert reasons[-1] == "Saīsināt apmeklējumu Sutri: 90 → 45 min."
    assert reasons[0].startswith("Prognoze: depo sasniegsim ar 11 %")
    # The SOC chart is drawn (uPlot, from the vendored file: the CSP allows nothing else),
    # with the SOC, the two reserve lines and the accepted plan's projection.
    await page.locator("#soc-chart[data-ready=yes] canvas").wait_for()
    legend = await page.locator("#soc-chart .u-legend .u-label").all_inner_texts()
    assert legend[1:] == ["SOC", "Rezerve", "Rezerve + drošības rezerve",
                          "Plāns pieņemts 09:42"]
    assert errors == []  # no script error, nothing the CSP blocked
    DOCS.mkdir(exist_ok=True)
    await page.screenshot(path=str(DOCS / "office-day.png"), full_page=True)


async def test_a_monthly_xlsx_downloads_with_the_right_numbers(
        browser: Browser, web: WebUnderTest, tmp_path: Path) -> None:  # noqa: F811
    page, errors = await logged_in(browser, web)
    await page.goto(str(web.client.make_url("/reports?m=livani&period=2026-03")))
    await page.locator("#summary").wait_for()
    async with page.expect_download() as info:
        await page.click("#download-xlsx")
    download = await info.value
    assert download.suggested_filename == "report-Līvāni-2026-03.xlsx"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    book = openpyxl.load_workbook(saved, read_only=True)
    summary = {r[0]: r[1] for r in book["Kopsavilkums"].iter_rows(values_only=True) if r}
    assert (summary["Darba dienas"], summary["Apkalpotie klienti"]) == (2, 24)
    assert (summary["Nobraukums, km"], summary["Enerģija, kWh"]) == (85.0, 21.0)
    assert (summary["Teritoriālais pārklājums"], summary["Izlaistas"]) == (0.667, 2)
    by_bus = list(book["Pa autobusiem"].iter_rows(values_only=True))
    clients = list(by_bus[0]).index("Apkalpotie klienti")
    assert [(r[0], r[clients]) for r in by_bus[1:]] == [("lv-01", 14), ("lv-02", 10),
                                                       ("Kopā", 24)]
    book.close()
    assert errors == []  # no script error, nothing the CSP blocked
    await page.screenshot(path=str(DOCS / "office-report.png"), full_page=False)
