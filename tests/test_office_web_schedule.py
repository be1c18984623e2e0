"""The schedule page (office/web/pages/schedule.py) with aiohttp's test client, on SQLite and
a private PostgreSQL: a dispatcher looks for missed visits and confirms a make-up (CSRF
checked; a viewer sees the proposals read-only and is refused), and the month's coverage per
place is shown and exported as CSV with the numbers office.schedule.coverage counts."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pytest

from busd.clock import ManualClock
from office.archive import Archive, open_archive
from office.config import OfficeConfigError, load_config, parse_config
from office.schedule.model import load_schedule
from office.schedule.proposals import list_proposals
from tests.support.bus_events import visit_ended
from tests.support.office_web import DISPATCHER, VIEWER, add_users, log_in, web_under_test
from tests.test_schedule_archive import (
    LIVANI,
    NOW,
    RESERVE,
    records,
    tuesday_with_a_skip,
    z,
)

HTML = {"Accept": "text/html"}
TURKI = "līvāni/turki/2026-12-08"


def config_with_schedule(schedule: Path = LIVANI) -> dict[str, object]:
    return {"web": {"port": 0}, "mqtt": {"enabled": False},
            "municipalities": [{"id": "livani", "name": "Līvāni", "buses": ["sim-*"],
                                "language": "en", "schedule": str(schedule)}]}


@pytest.fixture(params=["sqlite", "postgresql"])
async def archive(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Archive]:
    url = (f"sqlite:///{tmp_path}/archive.db" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    async with open_archive(url, clock=ManualClock(NOW.timestamp())) as opened:
        await add_users(opened)
        yield opened


async def test_dispatchers_confirm_make_ups_viewers_read_and_coverage_is_shown(
        archive: Archive, tmp_path: Path) -> None:
    await archive.insert_batch(tuesday_with_a_skip())
    # The reserve day: Turki served for 80 minutes (its minimum is 45).
    await archive.insert_batch(records([
        (visit_ended("visit-9", z(RESERVE, 7, 0), z(RESERVE, 8, 20), "turki"),
         z(RESERVE, 8, 20))], first_seq=100))
    schedule = load_schedule(LIVANI)
    config = parse_config(config_with_schedule())
    async with web_under_test(tmp_path, config=config, archive=archive) as w:
        await w.clock.advance(NOW.timestamp() - w.clock.now())
        csrf = await log_in(w.client, *DISPATCHER)
        page = await w.client.get("/schedule", headers=HTML)  # this month, the first municipality
        html = await page.text()
        assert page.status == 200 and 'href="/schedule"' in html
        assert "No make-up proposals." in html and 'value="2026-12"' in html

        # Looking for misses over the last 14 days finds them (nothing twice on a second look).
        form = {"csrf": csrf, "m": "livani", "month": "2026-12"}
        scanned = await w.client.post("/schedule/scan", data=form, allow_redirects=False)
        proposals = await list_proposals(archive, schedule)
        assert scanned.status == 303 and f"n={len(proposals)}" in scanned.headers["Location"]
        assert TURKI in {p.id for p in proposals}
        html = await (await w.client.get("/schedule?m=livani&month=2026-12",
                                         headers=HTML)).text()
        assert html.count('action="/schedule/confirm"') == len(proposals)

        # A confirm without the session's CSRF token is refused; with it, it confirms.
        refused = await w.client.post("/schedule/confirm", data={**form, "csrf": "x",
                                                                 "id": TURKI},
                                      allow_redirects=False)
        assert refused.status == 403
        done = await w.client.post("/schedule/confirm", data={**form, "id": TURKI},
                                   allow_redirects=False)
        assert done.status == 303 and "flash=confirmed" in done.headers["Location"]
        status = {p.id: p.status for p in await list_proposals(archive, schedule)}
        assert status[TURKI] == "confirmed"
        unknown = await w.client.post("/schedule/confirm", data={**form, "id": "no/such/one"},
                                      allow_redirects=False)
        assert "flash=unknown" in unknown.headers["Location"]

        page = await w.client.get(done.headers["Location"], headers=HTML)
        html = await page.text()
        assert html.count('action="/schedule/confirm"') == len(proposals) - 1
        assert f'<tr data-id="{TURKI}" data-status="confirmed">' in html
        # The coverage section: December 2026 as tests/test_schedule_archive.py counts it,
        # Turki's make-up served on the reserve day.
        assert ('<tr data-place="turki"><td>Turki</td><td>sim-01</td><td>weekly tue</td>'
                '<td class="num due">5</td><td class="num served">0</td>'
                '<td class="num missed">5</td><td class="num made-up">1</td></tr>') in html
        exported = await w.client.get("/schedule/coverage.csv?m=livani&month=2026-12")
        assert exported.status == 200 and exported.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO((await exported.read()).decode("utf-8-sig"))))
        assert rows[0] == ["Place", "Name", "Bus", "Cycle", "Due", "Served", "Missed",
                           "Made up"]
        table = {r[0]: r[4:] for r in rows[1:]}
        assert table["turki"] == ["5", "0", "5", "1"] and table["rozupe"] == ["5", "1", "4", "0"]
        assert table["Total"] == ["26", "1", "25", "1"]
        book_file = await w.client.get("/schedule/coverage.xlsx?m=livani&month=2026-12")
        assert book_file.status == 200
        book = openpyxl.load_workbook(io.BytesIO(await book_file.read()), read_only=True)
        [sheet] = book.worksheets
        cells = {r[0]: r[4:] for r in sheet.iter_rows(values_only=True)}
        book.close()
        assert cells["turki"] == (5, 0, 5, 1) and cells["Total"] == (26, 1, 25, 1)
        await w.client.post("/logout", data={"csrf": csrf})

        # A viewer sees the proposals and the coverage, but no button, and is refused.
        csrf = await log_in(w.client, *VIEWER)
        html = await (await w.client.get("/schedule?month=2026-12", headers=HTML)).text()
        assert TURKI in html and 'data-place="turki"' in html
        assert 'action="/schedule/confirm"' not in html and 'action="/schedule/scan"' not in html
        forbidden = await w.client.post("/schedule/confirm",
                                        data={**form, "csrf": csrf, "id": TURKI},
                                        allow_redirects=False)
        assert forbidden.status == 403
        assert (await w.client.get("/schedule?month=2026-13", headers=HTML)).status == 400


async def test_a_municipality_without_a_schedule_says_so(tmp_path: Path) -> None:
    config = parse_config({"web": {"port": 0}, "mqtt": {"enabled": False}})
    async with web_under_test(tmp_path, config=config) as w:
        await log_in(w.client, *VIEWER)
        page = await w.client.get("/schedule", headers=HTML)
        assert page.status == 200 and 'id="no-schedule"' in await page.text()
        assert (await w.client.get("/schedule/coverage.csv")).status == 404


def test_the_schedule_key_is_relative_to_the_config_and_checked(tmp_path: Path) -> None:
    (tmp_path / "livani.toml").write_text(LIVANI.read_text(encoding="utf-8"), encoding="utf-8")
    good = tmp_path / "office.toml"
    good.write_text('[[municipalities]]\nid = "livani"\nname = "Līvāni"\nbuses = ["sim-*"]\n'
                    'schedule = "livani.toml"\n', encoding="utf-8")
    assert load_config(good).municipalities[0].schedule == tmp_path / "livani.toml"
    with pytest.raises(OfficeConfigError, match=r"municipalities\.0\.schedule: .*not found"):
        parse_config(config_with_schedule(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text(LIVANI.read_text(encoding="utf-8").replace(
        'weekday = "tue"', 'weekday = "someday"', 1), encoding="utf-8")
    with pytest.raises(OfficeConfigError,
                       match=r"municipalities\.0\.schedule: points\.\d+\.cycles\.0"):
        parse_config(config_with_schedule(broken))
