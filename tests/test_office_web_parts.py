"""The office web's parts without a browser: the config, the accounts on both back ends and
their command, the fleet snapshot (route, stops, time zones, completeness at local midnight),
the catalogues."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from busd.cli import main
from busd.clock import ManualClock
from office.archive import Archive, ArchivedRecord, open_archive
from office.config import OfficeConfigError, load_config, parse_config
from office.live import BusView
from office.users import Role, UserError, Users
from office.web import i18n
from office.web.client_address import client_address
from office.web.demo import DEMO_USER, demo_password, demo_web
from office.web.fleet import archive_days, bus_row, route_of
from tests.support.mosquitto import REPO, Mosquitto
from tests.support.office_web import FAST_HASHER, csrf_of

# --- config --------------------------------------------------------------------------------


def test_the_example_config_loads() -> None:
    config = load_config(REPO / "config" / "office.example.toml")
    assert config.municipality_of("lv-07").timezone == "Europe/Riga"
    assert config.municipality_of("lt-02").timezone == "Europe/Vilnius"
    assert config.municipality_of("lt-02").language == "lt"
    assert config.map.tile_origin == "https://tile.openstreetmap.org"


@pytest.mark.parametrize(("data", "key"), [
    ({"web": {"port": 70000}}, "web.port"),
    ({"web": {"sesion_minutes": 5}}, "web.sesion_minutes"),
    ({"map": {"tile_url": "https://tiles.example/{z}/{x}.png"}}, "map.tile_url"),
    ({"map": {"tile_url": "javascript:alert(1)/{z}/{x}/{y}"}}, "map.tile_url"),
    ({"archive": "mysql://x"}, "archive"),
    ({"web": {"trusted_proxies": ["10.0.0.1", "proxy.example"]}}, "web.trusted_proxies.1"),
    ({"municipalities": [{"id": "x", "name": "X", "timezone": "Mars/Base", "buses": ["x-*"]}]},
     "municipalities.0.timezone"),
    ({"municipalities": [{"id": "x", "name": "X", "language": "de", "buses": ["x-*"]}]},
     "municipalities.0.language"),
])
def test_config_errors_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(OfficeConfigError, match=rf"^{key}: "):
        parse_config(data)


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("10.0.0.9", "192.0.2.7", "10.0.0.9"),  # not a proxy of ours: the header is its own word
    ("127.0.0.1", None, "127.0.0.1"),  # a trusted proxy that names nobody
    ("127.0.0.1", "192.0.2.7", "192.0.2.7"),
    ("127.0.0.1", "198.51.100.1, 192.0.2.7", "192.0.2.7"),  # the left one is the client's word
    ("127.0.0.1", "192.0.2.7, 10.1.2.3", "192.0.2.7"),  # through two proxies of ours
    ("127.0.0.1", "10.1.2.3, 10.1.2.4", "10.1.2.3"),  # only proxies: the farthest
    ("127.0.0.1", "192.0.2.7, garbage", "127.0.0.1"),  # no address: trust goes no further
    ("::1", "2001:db8::5", "::1"),  # IPv6, not listed
    (None, "192.0.2.7", "unknown"),
])
def test_the_client_address_trusts_only_the_configured_proxies(
        peer: str | None, forwarded: str | None, client: str) -> None:
    trusted = parse_config({"web": {"trusted_proxies": ["127.0.0.1", "10.1.0.0/16"]}})
    assert client_address(peer, forwarded, trusted.web.trusted_proxies) == client


def test_a_config_file_that_is_not_toml(tmp_path: Path) -> None:
    bad = tmp_path / "office.toml"
    bad.write_text("[web\nport = 1")
    with pytest.raises(OfficeConfigError, match="not TOML"):
        load_config(bad)


def test_subdomain_tile_templates_allow_their_subdomains() -> None:
    config = parse_config({"map": {"tile_url": "https://{s}.tiles.example/{z}/{x}/{y}.png"}})
    assert config.map.tile_origin == "https://*.tiles.example"


# --- accounts ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def archive(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Archive]:
    url = (f"sqlite:///{tmp_path / 'a.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    async with open_archive(url) as opened:
        yield opened


async def test_users_on_both_back_ends(archive: Archive) -> None:
    users = Users(archive, hasher=FAST_HASHER)
    await users.add("anna", "correct horse 1", Role.DISPATCHER)
    with pytest.raises(UserError, match="exists"):
        await users.add("anna", "another pass 2", Role.VIEWER)
    assert (await users.verify("anna", "correct horse 1")) is not None
    assert await users.verify("anna", "wrong horse 1") is None
    assert await users.verify("nobody", "correct horse 1") is None
    assert await users.set_password("anna", "battery staple 3")
    assert await users.verify("anna", "correct horse 1") is None
    user = await users.verify("anna", "battery staple 3")
    assert user is not None and user.role is Role.DISPATCHER
    rows = await archive.fetch("SELECT password_hash FROM users", {})
    assert rows[0][0].startswith("$argon2id$") and "battery" not in rows[0][0]
    assert await users.remove("anna") and not await users.remove("anna")
    assert await users.all() == []


async def test_bad_names_and_passwords_are_refused(tmp_path: Path) -> None:
    async with open_archive(f"sqlite:///{tmp_path / 'a.db'}") as archive:
        users = Users(archive, hasher=FAST_HASHER)
        with pytest.raises(UserError):
            await users.add("'; DROP TABLE users; --", "long enough 1", Role.VIEWER)
        with pytest.raises(UserError):
            await users.add("ok", "short", Role.VIEWER)


def _busd(*args: str, stdin: str = "") -> int:
    """``busd office user …`` in this process (the command as the CLI parses it)."""
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(["office", "user", *args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        sys.stdin = saved


def test_user_command_reads_passwords_from_stdin_or_a_file_never_argv(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "office.db")
    assert _busd("add", "anna", "--role", "dispatcher", "--password-file", "-",
                 "--archive", db, stdin="a secret pass 1\n") == 0
    secret = tmp_path / "pw"
    secret.write_text("a newer pass 22\n")
    assert _busd("passwd", "anna", "--password-file", str(secret), "--archive", db) == 0
    capsys.readouterr()
    assert _busd("list", "--archive", db) == 0
    assert capsys.readouterr().out.split() == ["anna", "dispatcher"]
    assert _busd("add", "bob", "--password", "x", "--archive", db) == 2  # no such option
    assert _busd("add", "bob", "--password-file", "-", "--archive", db, stdin="short\n") == 2
    assert _busd("remove", "nobody", "--archive", db) == 1
    assert _busd("remove", "anna", "--archive", db) == 0
    assert "secret" not in capsys.readouterr().out


def test_web_command_stops_at_a_bad_config(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "office.toml"
    bad.write_text("[web]\nport = 99999\n")
    assert main(["office", "web", "--config", str(bad)]) == 2
    assert "web.port:" in capsys.readouterr().err


# --- the fleet snapshot --------------------------------------------------------------------


def _plan() -> dict[str, Any]:
    return {
        "plan": {"depot": {"id": "depot", "name": "Depot", "lat": 56.35, "lon": 26.17},
                 "stops": [{"id": s, "name": s.title(), "lat": 56.3 + i / 100, "lon": 26.2}
                           for i, s in enumerate(("a", "b", "c", "d"))]},
        "itinerary": [{"kind": "stop", "id": s, "minutes": 30} for s in ("a", "c", "b")],
        "done": ["a"], "at": "c",
        "projection": {"depot_soc": 12.0, "reserve_pct": 15.0, "depot_margin_pct": -3.0}}


def test_route_marks_stops_done_now_next_and_skipped() -> None:
    marks, now, nxt = route_of(_plan())
    assert [(m.id, m.status) for m in marks] == [
        ("depot", "depot"), ("a", "done"), ("c", "now"), ("b", "next"), ("d", "skipped")]
    assert (now, nxt) == ("C", "B")
    assert route_of({}) == ([], None, None)
    assert route_of({"plan": "nonsense"}) == ([], None, None)


def test_bus_row_names_the_place_where_a_held_change_of_plan_comes() -> None:
    config = parse_config({"municipalities": [
        {"id": "lv", "name": "Līvāni", "timezone": "Europe/Riga", "buses": ["lv-*"]}]})
    held = {**_plan(), "at": None, "proposal_at": "b"}
    rows = [bus_row(BusView("lv-01", online=True, plan=doc), None,
                    config.municipality_of("lv-01"), now=0.0, offline_after_s=120)
            for doc in (held, _plan(), {**held, "proposal_at": "elsewhere"})]
    assert [row.change_at for row in rows] == ["B", None, "elsewhere"]


def test_bus_row_in_the_municipality_zone_and_its_depot_projection() -> None:
    config = parse_config({"municipalities": [
        {"id": "far", "name": "Far", "timezone": "America/New_York", "buses": ["us-*"]}]})
    seen = datetime(2026, 12, 5, 10, 0, tzinfo=UTC).timestamp()
    view = BusView("us-01", online=True, plan=_plan(),
                   state={"ts": "2026-12-05T10:00:00.000Z", "moving": True,
                          "values": {"battery.soc": 40.5, "gps.lat": 40.0, "gps.lon": -74.0,
                                     "gps.heading": 90}, "alerts": {"lift_door": "open"},
                          "outbox": {"unsent": 1200, "oldest_age_s": 3600.5}})
    row = bus_row(view, None, config.municipality_of("us-01"), now=seen + 5,
                  offline_after_s=120)
    assert row.online and row.soc == 40.5 and row.heading == 90
    assert row.last_seen_local == "05:00:00"  # New York, not UTC
    assert row.depot_ok is False and row.alerts == ["lift_door"]
    assert (row.outbox_unsent, row.outbox_oldest_s) == (1200, 3600.5)  # the bus's own count
    stale = bus_row(view, None, config.municipality_of("us-01"), now=seen + 600,
                    offline_after_s=120)
    assert not stale.online  # said online, but silent for ten minutes


def _record(bus: str, seq: int, ts: datetime) -> ArchivedRecord:
    return ArchivedRecord(bus=bus, seq=seq, ts=ts, schema="busd.telemetry/1", kind="sample",
                          topic=f"multimobile/v1/{bus}/telemetry", received=ts,
                          data={"full": True, "values": {}, "stale": []})


async def test_completeness_counts_the_local_day(archive: Archive) -> None:
    # Riga is UTC+2 in December: 21:30 UTC on the 4th is 23:30 local (the 4th), 22:30 UTC
    # is 00:30 on the 5th. Seqs 3-4 were lost on the 5th.
    records = [_record("lv-01", 1, datetime(2026, 12, 4, 21, 30, tzinfo=UTC)),
               _record("lv-01", 2, datetime(2026, 12, 4, 22, 30, tzinfo=UTC)),
               _record("lv-01", 5, datetime(2026, 12, 5, 8, 0, tzinfo=UTC)),
               _record("lv-01", 6, datetime(2026, 12, 5, 9, 0, tzinfo=UTC))]
    await archive.insert_batch(records)
    riga = parse_config({}).municipality_of("lv-01")
    days = await archive_days(archive, riga, datetime(2026, 12, 5).date())
    day = days["lv-01"]
    assert (day.records, day.missing) == (3, 2) and day.complete_pct == 60.0
    assert day.newest == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    before = await archive_days(archive, riga, datetime(2026, 12, 4).date())
    assert (before["lv-01"].records, before["lv-01"].missing) == (1, 0)


# --- languages -----------------------------------------------------------------------------


def test_every_language_has_every_message() -> None:
    loaded = i18n.catalogues()
    assert set(loaded) == {"lv", "lt", "en"}
    assert i18n.translate("lv", "fleet.title") == "Autoparks"
    assert i18n.translate("xx", "fleet.title") == "Autoparks"  # the default language
    templates = (REPO / "office" / "web" / "templates").glob("*.html")
    used = {k for t in templates for k in re.findall(r't\("([a-z_.]+)"[,)]', t.read_text())}
    assert used <= set(loaded["en"]), used - set(loaded["en"])


# --- the demo's web ------------------------------------------------------------------------


async def test_the_demo_web_lets_its_printed_login_in(tmp_path: Path,
                                                      mosquitto: Mosquitto) -> None:
    password = demo_password()
    async with open_archive(f"sqlite:///{tmp_path / 'office.sqlite'}") as archive, \
            demo_web(archive, broker_port=mosquitto.port, port=0, clock=ManualClock(),
                     password=password) as web, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        page = await (await client.get(web.url + "login")).text()
        response = await client.post(web.url + "login", data={
            "csrf": csrf_of(page), "name": DEMO_USER, "password": password})
        assert response.status == 200 and str(response.url) == web.url
        user = await Users(archive).get(DEMO_USER)
        assert user is not None and user.role is Role.DISPATCHER
