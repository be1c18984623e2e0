"""The display's HTTP side without a browser: guarded writes, read-only reads, assets."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib import resources

import aiohttp
import pytest
from pydantic import ValidationError

from busd import signals as sig
from busd.clock import SystemClock
from busd.config import BusdConfig, DisplayConfig, ServicesConfig
from busd.display import security
from busd.display.i18n import catalogues
from busd.display.server import DisplayServer
from busd.display.snapshot import margin_band, minutes_to_target, solar_elevation_deg
from busd.state import VehicleState
from tests.support.display_browser import make_server, serving
from tests.support.display_fakes import FakeClientsCounter, FakePlanner, livani_day

STATIC = resources.files("busd.display").joinpath("static")


# The running display, with the fakes it shows.
Served = tuple[DisplayServer, FakePlanner, FakeClientsCounter]


async def _page_token(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        html = await response.text()
    boot = re.search(r'<script id="boot" type="application/json">(.*?)</script>', html)
    assert boot is not None
    return str(json.loads(boot.group(1))["token"])


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = SystemClock()
    state = VehicleState(clock)
    state.update(sig.BATTERY_SOC, 50.0, source="test")
    planner = FakePlanner(livani_day(clock.now()))
    counter = FakeClientsCounter()
    server = make_server(state, clock, plan=planner, clients=counter)
    async with serving(server, clock):
        yield server, planner, counter


async def test_writes_need_the_token_and_the_same_origin(served: Served) -> None:
    server, planner, counter = served
    url = server.url
    origin = url.rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        token = await _page_token(session, url)
        body = {"delta": 1, "service": "notary"}
        cases = [
            ({"Origin": origin}, "no token"),
            ({"Origin": origin, security.TOKEN_HEADER: "0" * 64}, "wrong token"),
            ({"Origin": "http://evil.example", security.TOKEN_HEADER: token}, "other origin"),
            ({"Referer": "http://evil.example/x", security.TOKEN_HEADER: token}, "other referer"),
            ({security.TOKEN_HEADER: token}, "neither Origin nor Referer"),
            ({"Origin": "null", security.TOKEN_HEADER: token}, "opaque origin"),
        ]
        for headers, why in cases:
            async with session.post(url + "api/clients", json=body, headers=headers) as r:
                assert r.status == 403, why
            async with session.post(url + "api/plan/ack", json={"proposal_id": "p-3"},
                                    headers=headers) as r:
                assert r.status == 403, why
        assert counter.counts == {} and planner.acknowledged == []

        good = {"Origin": origin, security.TOKEN_HEADER: token}
        async with session.post(url + "api/clients", json=body, headers=good) as r:
            assert r.status == 200 and (await r.json())["count"] == 1
        form = {**good, "Content-Type": "application/x-www-form-urlencoded"}
        async with session.post(url + "api/clients", data="delta=1", headers=form) as r:
            assert r.status == 415  # a form post never counts
        async with session.post(url + "api/clients", json={"delta": 5, "service": "notary"},
                                headers=good) as r:
            assert r.status == 400
        for bad in ({"delta": 1}, {"delta": 1, "service": "haircut"}, {"delta": 1, "service": 7}):
            async with session.post(url + "api/clients", json=bad, headers=good) as r:
                assert r.status == 400, bad
        for bad_activity in ({"activity": "nap"}, {"activity": 3}):
            async with session.post(url + "api/activity", json=bad_activity, headers=good) as r:
                assert r.status == 400, bad_activity
        async with session.post(url + "api/activity", json={"activity": "waiting"},
                                headers=headers) as r:
            assert r.status == 403  # the last refused case's headers: no write
        async with session.post(url + "api/activity", json={"activity": "consultation"},
                                headers=good) as r:
            assert r.status == 200 and (await r.json())["activity"] == "consultation"
        async with session.post(url + "api/plan/ack", json={"proposal_id": "old"},
                                headers=good) as r:
            assert r.status == 409
        async with session.post(url + "api/plan/ack", json={"proposal_id": "p-3"},
                                headers={"Referer": url, security.TOKEN_HEADER: token}) as r:
            assert r.status == 200
        assert counter.counts == {"rudzati-1": 1} and planner.acknowledged == ["p-3"]
        assert counter.by_type == {"notary": 1} and counter.activity == "consultation"

    # Another browser session's token is not this one's.
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other,
        other.post(url + "api/clients", json=body,
                   headers={"Origin": origin, security.TOKEN_HEADER: token}) as r,
    ):
        assert r.status == 403


async def test_no_visit_is_a_conflict_not_an_error(served: Served) -> None:
    server, _, counter = served
    counter.visit_id = None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        token = await _page_token(session, server.url)
        headers = {"Origin": server.url.rstrip("/"), security.TOKEN_HEADER: token}
        async with session.post(server.url + "api/clients",
                                json={"delta": 1, "service": "notary"}, headers=headers) as r:
            assert r.status == 409 and (await r.json())["reason"] == "no_visit"
        async with session.post(server.url + "api/activity", json={"activity": "waiting"},
                                headers=headers) as r:
            assert r.status == 409 and (await r.json())["reason"] == "no_visit"


async def test_nothing_else_changes_state_and_foreign_hosts_are_refused(served: Served) -> None:
    server, planner, counter = served
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for method, path in (("PUT", "api/clients"), ("DELETE", "api/plan/ack"),
                             ("POST", "api/snapshot"), ("POST", ""), ("POST", "events")):
            async with session.request(method, server.url + path) as r:
                assert r.status == 405, (method, path)
        async with session.get(server.url + "api/plan/ack") as r:
            assert r.status == 405
        # DNS rebinding: our address under someone else's name.
        async with session.get(server.url, headers={"Host": "evil.example:8080"}) as r:
            assert r.status == 421
        async with session.get(server.url) as r:
            assert r.status == 200
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY"
    assert counter.counts == {} and planner.acknowledged == []


def test_assets_are_all_local_and_markup_holds_no_text() -> None:
    for name in ("index.html", "common.js", "app.js", "app.css", "staff.html", "staff.js",
                 "staff.css"):
        text = STATIC.joinpath(name).read_text("utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text), name

    class Texts(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.texts: list[str] = []
            self.keys: list[str] = []
            self._in_script = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self._in_script = tag == "script"
            self.keys += [v for k, v in attrs if k == "data-i18n" and v]

        def handle_data(self, data: str) -> None:
            if not self._in_script and data.strip():
                self.texts.append(data.strip())

    for page, js in (("index.html", "app.js"), ("staff.html", "staff.js")):
        parser = Texts()
        parser.feed(STATIC.joinpath(page).read_text("utf-8"))
        assert parser.texts == [], page
        assert parser.keys and set(parser.keys) <= set(catalogues()["lv"]), page
        script = STATIC.joinpath(js).read_text("utf-8")
        for key in re.findall(r'\bt\("([a-z_.]*[a-z_])"', script):
            assert key in catalogues()["lv"], (js, key)


def test_catalogues_agree() -> None:
    cats = catalogues()
    assert set(cats) == {"lv", "lt", "en"}
    assert cats["lv"]["fmt.decimal"] == "," and cats["lt"]["fmt.decimal"] == ","
    assert len({cats[lang]["proposal.accept"] for lang in cats}) == 3


def test_display_config() -> None:
    config = DisplayConfig()
    assert (config.host, config.port, config.language, config.night_mode) == (
        "127.0.0.1", 8080, "lv", "auto")
    with pytest.raises(ValidationError, match="allow_remote"):
        DisplayConfig(host="192.168.1.20")
    with pytest.raises(ValidationError, match="allowed_hosts"):
        DisplayConfig(host="0.0.0.0", allow_remote=True)
    DisplayConfig(host="0.0.0.0", allow_remote=True, allowed_hosts=["bus-7.local"])
    with pytest.raises(ValidationError, match="extra"):
        DisplayConfig(colour="pink")  # type: ignore[call-arg]


def test_display_port_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSD_DISPLAY__PORT", "8181")
    assert BusdConfig(bus_id="bus-1").display.port == 8181


def test_margin_band_and_charge_estimate() -> None:
    assert margin_band(None, amber_below=5) is None
    assert margin_band(-0.1, amber_below=5) == "red"
    assert margin_band(0.0, amber_below=5) == "amber"
    assert margin_band(5.0, amber_below=5) == "green"
    assert minutes_to_target(50, 22, target=90, capacity_kwh=110) == pytest.approx(120)
    assert minutes_to_target(95, 22, target=90, capacity_kwh=110) == 0
    assert minutes_to_target(50, 0, target=90, capacity_kwh=110) is None
    assert minutes_to_target(None, 22, target=90, capacity_kwh=110) is None


def test_night_follows_the_sun_in_livani() -> None:
    winter_noon = 1_766_138_400  # 2025-12-19 10:00 UTC = 12:00 in Riga
    winter_evening = winter_noon + 6 * 3600  # 18:00 in Riga, dark
    summer_evening = 1_781_967_600  # 2026-06-20 15:00 UTC = 18:00 in Riga, light
    assert solar_elevation_deg(winter_noon, 56.35, 26.18) == pytest.approx(10.3, abs=1.0)
    assert solar_elevation_deg(winter_evening, 56.35, 26.18) < -10
    assert solar_elevation_deg(summer_evening, 56.35, 26.18) > 15


def test_session_tokens() -> None:
    secret = security.new_secret()
    sid = security.new_session_id()
    token = security.session_token(secret, sid)
    assert security.token_matches(secret, sid, token)
    assert not security.token_matches(security.new_secret(), sid, token)
    assert not security.token_matches(secret, security.new_session_id(), token)
    assert not security.token_matches(secret, "../../etc", token)
    assert not security.token_matches(secret, sid, None)
    allowed = security.allowed_host_names("127.0.0.1", ["bus-7.local"])
    assert security.host_allowed("localhost:8080", allowed)
    assert security.host_allowed("[::1]:8080", allowed)
    assert security.host_allowed("bus-7.local", allowed)
    assert not security.host_allowed("evil.example:8080", allowed)
    assert not security.host_allowed(None, allowed)


async def test_the_staff_page_is_served_with_the_configured_types_and_labels() -> None:
    clock = SystemClock()
    services = ServicesConfig(types=["passports", "other"], activities=[],
                              labels={"passports": {"lv": "Pases", "lt": "Pasai",
                                                    "en": "Passports"}})
    server = make_server(VehicleState(clock), clock, clients=FakeClientsCounter(),
                         services=services)
    async with (serving(server, clock),
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session,
                session.get(server.url + "staff?lang=lt") as r):
        assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
        html = await r.text()
    boot_text = re.search(r'<script id="boot" type="application/json">(.*?)</script>', html)
    assert boot_text is not None and '<html lang="lt">' in html
    boot = json.loads(boot_text.group(1))
    assert boot["services"] == {
        "types": [{"id": "passports", "labels": {"lv": "Pases", "lt": "Pasai", "en": "Passports"}},
                  {"id": "other", "labels": {"lv": "Citi", "lt": "Kita", "en": "Other"}}],
        "activities": []}  # no activity toggle
    assert boot["token"] and '<script src="/static/staff.js"' in html
