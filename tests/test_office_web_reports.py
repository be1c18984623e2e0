"""The bus's day page and the report pages (office/web/pages/day.py, reports.py) with aiohttp's
test client over a SQLite archive holding tests/support/office_day.py's days. The browser tests
(Chromium) are in test_office_web_reports_browser.py."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from tests.support.office_day import DaySpec, day_records
from tests.support.office_web import VIEWER, WebUnderTest, log_in, web_under_test

HTML = {"Accept": "text/html"}
DAY = "/buses/lv-01/day/2026-03-09"


async def fill(web: WebUnderTest) -> None:
    await web.ctx.archive.insert_batch(day_records(DaySpec()))
    await web.ctx.archive.insert_batch(day_records(DaySpec(bus="lv-02", clients=10,
                                                           telemetry=False)))
    await web.ctx.archive.insert_batch(day_records(DaySpec(day=date(2026, 3, 10),
                                                           first_seq=100, temp_c=5.0)))


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[tuple[WebUnderTest, str]]:
    async with web_under_test(tmp_path) as w:
        await fill(w)
        csrf = await log_in(w.client, *VIEWER)
        yield w, csrf


async def test_the_day_page_shows_a_shortened_stop_with_its_reason_in_each_language(
        web: tuple[WebUnderTest, str]) -> None:
    w, csrf = web
    page = await w.client.get(DAY, headers=HTML)
    assert page.status == 200
    html = await page.text()
    # Līvāni's staff read Latvian by default.
    assert 'class="stop shortened" data-stop="sutri"' in html
    assert "Saīsināt apmeklējumu Sutri: 90 → 45 min." in html
    assert "saīsināta" in html and "izlaista" in html
    assert 'id="soc-chart"' in html and "/static/vendor/uplot/uPlot.iife.min.js" in html
    await w.client.post("/lang", data={"csrf": csrf, "lang": "lt", "next": DAY})
    html = await (await w.client.get(DAY, headers=HTML)).text()
    assert "Sutrumpinti apsilankymą Sutri: 90 → 45 min." in html
    assert "Stotelė neaplankyta" in html  # Kalupe: the office's own reason
    await w.client.post("/lang", data={"csrf": csrf, "lang": "en", "next": DAY})
    html = await (await w.client.get(DAY, headers=HTML)).text()
    assert "Shorten the visit to Sutri: 90 → 45 min." in html
    # Times are Riga's: the bus left Rožupe at 09:31 local.
    assert "08:31\u201309:31" in html  # an en dash between


async def test_the_day_pages_refuse_what_is_not_a_bus_or_a_day(
        web: tuple[WebUnderTest, str]) -> None:
    w, _ = web
    assert (await w.client.get("/buses/lv-01/day/2026-13-40", headers=HTML)).status == 404
    assert (await w.client.get("/buses/LV_01!/day/2026-03-09", headers=HTML)).status == 404
    today = await w.client.get("/buses/lv-01/day", headers=HTML, allow_redirects=False)
    assert today.status == 303 and today.headers["Location"].startswith("/buses/lv-01/day/")
    picked = await w.client.get("/day?bus=lv-02&day=2026-03-09", allow_redirects=False)
    assert picked.headers["Location"] == "/buses/lv-02/day/2026-03-09"
    empty = await w.client.get("/buses/lv-09/day/2026-03-09", headers=HTML)
    assert empty.status == 200


async def test_the_report_page_and_its_downloads(web: tuple[WebUnderTest, str]) -> None:
    w, _ = web
    page = await w.client.get("/reports?m=livani&period=2026-03", headers=HTML)
    assert page.status == 200
    html = await page.text()
    assert "Līvāni" in html and 'href="/static/print.css" media="print"' in html
    assert '<tr data-indicator="clients_served"><th>Apkalpotie klienti</th>' \
           '<td class="num">38</td></tr>' in html
    xlsx = await w.client.get("/reports/export.xlsx?m=livani&period=2026-03")
    assert xlsx.status == 200
    assert xlsx.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''report-L%C4%ABv%C4%81ni-2026-03.xlsx" in xlsx.headers[
        "Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(await xlsx.read()), read_only=True)
    summary = {r[0]: r[1] for r in book.worksheets[0].iter_rows(values_only=True) if r}
    assert summary["Nobraukums, km"] == 3 * 42.5 and summary["Apkalpotie klienti"] == 38
    book.close()
    places = await w.client.get("/reports/export.csv?m=livani&period=2026-03&table=places")
    rows = list(csv.reader(io.StringIO((await places.text()).removeprefix("\ufeff"))))
    assert [r[0] for r in rows[1:]] == ["kalupe", "rozupe", "sutri"]
    one = await w.client.get("/reports?m=livani&period=2026-03-09&bus=lv-02", headers=HTML)
    assert one.status == 200 and "lv-02" in await one.text()


async def test_the_report_pages_refuse_bad_queries(web: tuple[WebUnderTest, str]) -> None:
    w, _ = web
    c = w.client
    assert (await c.get("/reports?period=March", headers=HTML)).status == 400
    assert (await c.get("/reports?period=2026-02-30", headers=HTML)).status == 400
    assert (await c.get("/reports?m=atlantis", headers=HTML)).status == 404
    assert (await c.get("/reports?m=livani&bus=lt-01", headers=HTML)).status == 404
    assert (await c.get("/reports/export.csv?m=livani&table=secrets")).status == 400
    # Mažeikiai has no bus in this archive: a page that says so, and no file.
    nobody = await c.get("/reports?m=mazeikiai", headers=HTML)
    assert nobody.status == 200 and "Arhīvā nav neviena" in await nobody.text()
    assert (await c.get("/reports/export.xlsx?m=mazeikiai")).status == 404


async def test_the_pages_need_a_login(tmp_path: Path) -> None:
    async with web_under_test(tmp_path) as w:
        for path in (DAY, "/reports", "/reports/export.xlsx", "/reports/export.csv"):
            assert (await w.client.get(path)).status == 401, path
