"""The bus's day page and the report pages (office/web/pages/day.py, reports.py) with aiohttp's
test client over a SQLite archive holding tests/support/office_day.py's days. The browser tests
(Chromium) are in test_office_web_reports_browser.py."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from office.dayview.planned import planned_points
from tests.support.office_day import DaySpec, day_plan, day_records
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


async def test_the_day_pages_visits_show_the_clients_counted_at_each(
        web: tuple[WebUnderTest, str]) -> None:
    w, csrf = web
    await w.client.post("/lang", data={"csrf": csrf, "lang": "en", "next": DAY})
    html = await (await w.client.get(DAY, headers=HTML)).text()
    visits = html.split('id="visits"')[1].split("</section>")[0]
    # Rožupe: 3 notary + 4 social; Sutri: 3 + 4 (tests/support/office_day.py's 14 clients).
    assert '<th class="num service" data-service="notary">Notary</th>' in visits
    rozupe = visits.split('data-visit="visit-1@2026-03-09"')[1].split("</tr>")[0]
    assert '<td class="num clients">7</td>' in rozupe
    assert '<td class="num service" data-service="notary">3</td>' in rozupe
    assert '<td class="num service" data-service="social">4</td>' in rozupe
    assert "Set-up 10, Serving clients 50" in rozupe
    assert "only as the day total" not in visits
    # A day whose visits were not counted says so.
    await w.ctx.archive.insert_batch(day_records(DaySpec(bus="lv-03", counted=False)))
    plain = await (await w.client.get("/buses/lv-03/day/2026-03-09", headers=HTML)).text()
    assert "only as the day total" in plain and 'class="num clients">\u2013</td>' in plain


async def test_the_day_page_plans_a_day_without_a_proposal_from_the_plan_sent(
        web: tuple[WebUnderTest, str]) -> None:
    w, _ = web
    spec = DaySpec(bus="lv-04", loaded=True, proposed=False)
    await w.ctx.archive.insert_batch(day_records(spec))
    html = await (await w.client.get("/buses/lv-04/day/2026-03-09", headers=HTML)).text()
    assert 'id="plan-source"' in html and "v3" in html
    points = planned_points(day_plan(spec))
    for stop in ("rozupe", "sutri", "kalupe"):
        row = html.split(f'data-stop="{stop}">')[1].split("</tr>")[0]
        arrive, leave = (datetime.fromisoformat(points[stop].eta),
                         datetime.fromisoformat(points[stop].etd))
        riga = ZoneInfo("Europe/Riga")
        assert (f"<td>{arrive.astimezone(riga):%H:%M}\u2013{leave.astimezone(riga):%H:%M}</td>"
                in row), stop


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


async def test_reports_count_clients_per_service_and_time_per_activity(
        web: tuple[WebUnderTest, str]) -> None:
    """From the buses' daily reports (tests/support/office_day.py: lv-01's 14 clients on two
    days, lv-02's 10 on one, split between notary and social; 15 min set-up and 90 serving a
    day), per bus and in total, on the page and in both exports."""
    w, csrf = web
    xlsx = await w.client.get("/reports/export.xlsx?m=livani&period=2026-03")
    book = openpyxl.load_workbook(io.BytesIO(await xlsx.read()), read_only=True)
    services = [list(r) for r in book["Klienti pa pakalpojumiem"].iter_rows(values_only=True)]
    assert services == [["Pakalpojums", "lv-01", "lv-02", "Kopā"],
                        ["Sociālie", 16, 6, 22], ["Notārs", 12, 4, 16]]
    activities = [list(r) for r in book["Laiks pa darbībām, min"].iter_rows(values_only=True)]
    assert activities == [["Darbība", "lv-01", "lv-02", "Kopā"],
                          ["Klientu apkalpošana", 180, 90, 270], ["Sagatavošana", 30, 15, 45]]
    summary = {r[0]: r[1] for r in book.worksheets[0].iter_rows(values_only=True) if r}
    assert summary["Klienti pa pakalpojumiem: Notārs"] == 16
    assert summary["Laiks pa darbībām, min: Sagatavošana"] == 45
    book.close()
    await w.client.post("/lang", data={"csrf": csrf, "lang": "en", "next": "/reports"})
    day = await w.client.get(
        "/reports/export.csv?m=livani&period=2026-03-09&bus=lv-02&table=services")
    rows = list(csv.reader(io.StringIO((await day.text()).removeprefix("\ufeff"))))
    assert rows == [["Service", "lv-02", "Total"], ["Social", "6", "6"], ["Notary", "4", "4"]]
    html = await (await w.client.get("/reports?m=livani&period=2026-03", headers=HTML)).text()
    notary = html.split('data-service="notary">')[1].split("</tr>")[0]
    assert notary == ('<td>Notary</td><td class="num">12</td><td class="num">4</td>'
                      '<td class="num total">16</td>')
    assert '<tr data-activity="setup"><td>Set-up</td>' in html


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
