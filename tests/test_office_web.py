"""The office web's core with aiohttp's test client: login, sessions, roles, CSRF, headers,
hostile requests. The browser tests are in test_office_web_browser.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from office.archive import Archive, ArchiveError, open_archive
from office.web import sessions as sessions_module
from office.web.auth import LOGIN_COOKIE, SESSION_COOKIE
from office.web.pages import fleet as fleet_page
from tests.support.office_web import (
    DISPATCHER,
    VIEWER,
    WebUnderTest,
    add_users,
    csrf_of,
    log_in,
    web_config,
    web_under_test,
)

HTML = {"Accept": "text/html"}


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebUnderTest]:
    async with web_under_test(tmp_path) as w:
        yield w


async def test_nothing_answers_without_login_but_the_login_page_and_static(
        web: WebUnderTest) -> None:
    c = web.client
    page = await c.get("/", headers=HTML, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login"
    for path in ("/fleet.json", "/fleet/events", "/no/such/page"):
        assert (await c.get(path)).status == 401, path
    assert (await c.post("/buses/lv-01/resend", data={"csrf": "x"})).status == 401
    assert (await c.get("/login")).status == 200
    assert (await c.get("/static/vendor/leaflet/leaflet.js")).status == 200


async def test_login_logout(web: WebUnderTest) -> None:
    c = web.client
    csrf = await log_in(c, *VIEWER)
    assert (await c.get("/fleet.json")).status == 200
    out = await c.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    assert (await c.get("/fleet.json")).status == 401
    assert await web.ctx.sessions.count() == 0


async def test_session_cookie_flags(tmp_path: Path) -> None:
    async with web_under_test(tmp_path, config=web_config(secure_cookies=True)) as w:
        # A Secure cookie is not sent back over plain HTTP: the login's own cookie is read,
        # and the session's is made by the same function (checked without Secure below).
        page = await w.client.get("/login")
        cookie = page.headers["Set-Cookie"].lower()
        assert LOGIN_COOKIE in cookie
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    async with web_under_test(tmp_path / "plain") as w:
        token = csrf_of(await (await w.client.get("/login")).text())
        response = await w.client.post("/login", data={"csrf": token, "name": VIEWER[0],
                                                       "password": VIEWER[1]},
                                       allow_redirects=False)
        cookie = next(v for v in response.headers.getall("Set-Cookie")
                      if v.startswith(SESSION_COOKIE)).lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


async def test_wrong_password_is_refused_and_logged_without_it(web: WebUnderTest) -> None:
    c = web.client
    token = csrf_of(await (await c.get("/login")).text())
    with structlog.testing.capture_logs() as logs:
        r = await c.post("/login", data={"csrf": token, "name": VIEWER[0],
                                         "password": "guess-guess-1"})
    assert r.status == 401
    failed = [e for e in logs if e["event"] == "login_failed"]
    assert failed and failed[0]["reason"] == "bad_credentials"
    assert "guess-guess-1" not in repr(logs) and VIEWER[0] not in repr(logs)


async def test_login_is_rate_limited(web: WebUnderTest) -> None:
    c = web.client
    limit = web.ctx.config.web.login_attempts
    for _ in range(limit):
        token = csrf_of(await (await c.get("/login")).text())
        r = await c.post("/login", data={"csrf": token, "name": VIEWER[0], "password": "x"})
        assert r.status == 401
    token = csrf_of(await (await c.get("/login")).text())
    # Even the right password is refused now, without being checked.
    r = await c.post("/login", data={"csrf": token, "name": VIEWER[0],
                                     "password": VIEWER[1]})
    assert r.status == 429
    await web.clock.advance(web.ctx.config.web.login_window_s + 1)
    await log_in(c, *VIEWER)


async def test_login_needs_its_csrf_token(web: WebUnderTest) -> None:
    c = web.client
    await c.get("/login")
    r = await c.post("/login", data={"csrf": "forged", "name": VIEWER[0],
                                     "password": VIEWER[1]})
    assert r.status == 403
    assert await web.ctx.sessions.count() == 0


async def test_session_expires_when_idle_and_after_its_lifetime(web: WebUnderTest) -> None:
    c = web.client
    cfg = web.ctx.config.web
    await log_in(c, *VIEWER)
    await web.clock.advance(cfg.idle_minutes * 60 - 5)
    assert (await c.get("/fleet.json")).status == 200  # still within: and seen again now
    await web.clock.advance(cfg.idle_minutes * 60 + 1)
    assert (await c.get("/fleet.json")).status == 401
    page = await c.get("/", headers=HTML, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login?expired=1"
    # The lifetime ends a session however busy it is.
    await log_in(c, *VIEWER)
    step = cfg.idle_minutes * 60 / 2
    for _ in range(int(cfg.session_minutes * 60 / step) + 1):
        await web.clock.advance(step)
        if (await c.get("/fleet.json")).status == 401:
            break
    else:
        pytest.fail("the session outlived its lifetime")


async def test_a_removed_user_or_a_new_password_ends_the_session(web: WebUnderTest) -> None:
    c = web.client
    await log_in(c, *VIEWER)
    # Changed by another process (busd office user): the next request sees it.
    await web.ctx.users.set_password(VIEWER[0], "a brand new pass 9")
    assert (await c.get("/fleet.json")).status == 401
    await log_in(c, DISPATCHER[0], DISPATCHER[1])
    assert (await c.get("/fleet.json")).status == 200
    await web.ctx.users.remove(DISPATCHER[0])
    assert (await c.get("/fleet.json")).status == 401
    assert await web.ctx.sessions.count() == 0  # both ended, not merely refused


async def test_post_without_or_with_a_wrong_csrf_token_is_refused(web: WebUnderTest) -> None:
    c = web.client
    csrf = await log_in(c, *DISPATCHER)
    for data in ({}, {"csrf": "0" * 43}, {"csrf": csrf[:-1]}):
        r = await c.post("/logout", data=data)
        assert r.status == 403, data
    r = await c.post("/logout", headers={"X-CSRF-Token": "nope"})
    assert r.status == 403
    assert (await c.get("/fleet.json")).status == 200  # still logged in
    r = await c.post("/logout", headers={"X-CSRF-Token": csrf}, allow_redirects=False)
    assert r.status == 303


async def test_a_viewer_cannot_ask_for_a_resend(web: WebUnderTest) -> None:
    c = web.client
    csrf = await log_in(c, *VIEWER)
    r = await c.post("/buses/lv-01/resend", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 403


async def test_a_dispatcher_may_ask_but_not_without_a_broker(web: WebUnderTest) -> None:
    c = web.client
    csrf = await log_in(c, *DISPATCHER)
    r = await c.post("/buses/lv-01/resend", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303 and "resend_offline" in r.headers["Location"]
    page = await c.get("/", headers=HTML)
    assert "Pieprasīt trūkstošo" in await page.text()  # the dispatcher's button, in Latvian


async def test_security_headers_on_pages_static_and_errors(web: WebUnderTest) -> None:
    c = web.client
    for path in ("/login", "/static/office.css", "/nowhere"):
        r = await c.get(path)
        h = r.headers
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "img-src 'self' data: https://tile.openstreetmap.org" in csp
        assert "unsafe-inline" not in csp
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"


async def test_the_tile_host_is_the_one_foreign_origin(tmp_path: Path) -> None:
    config = web_config()
    config = config.model_copy(update={"map": config.map.model_copy(
        update={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png"})})
    async with web_under_test(tmp_path, config=config) as w:
        csp = (await w.client.get("/login")).headers["Content-Security-Policy"]
        assert "img-src 'self' data: http://127.0.0.1:9;" in csp
        assert "openstreetmap" not in csp


async def test_oversized_bodies_are_refused(web: WebUnderTest) -> None:
    c = web.client
    csrf = csrf_of(await (await c.get("/login")).text())
    r = await c.post("/login", data={"csrf": csrf, "name": "x" * 200_000, "password": "y"})
    assert r.status == 413


async def test_static_refuses_path_traversal(web: WebUnderTest) -> None:
    c = web.client
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                 "/static/vendor/../../app.py", "/static/", "/static/vendor/"):
        r = await c.get(path)
        # 401: a path the client or server normalised out of /static/ (not public).
        assert r.status in (401, 403, 404), path
        assert "create_app" not in await r.text()


async def test_the_language_switch_keeps_to_this_site(web: WebUnderTest) -> None:
    c = web.client
    csrf = await log_in(c, *VIEWER)
    r = await c.post("/lang", data={"csrf": csrf, "lang": "en", "next": "//evil.example/"},
                     allow_redirects=False)
    assert r.headers["Location"] == "/"
    page = await (await c.get("/", headers=HTML)).text()
    assert '<html lang="en">' in page and "Fleet" in page
    r = await c.post("/lang", data={"csrf": csrf, "lang": "lt", "next": "/"})
    assert '<html lang="lt">' in await r.text()


async def test_pages_escape_what_they_show(web: WebUnderTest) -> None:
    c = web.client
    await log_in(c, *VIEWER)
    r = await c.get("/?flash=fleet.resend_none&bus=<script>x</script>", headers=HTML)
    text = await r.text()
    assert "<script>x</script>" not in text and "&lt;script&gt;" in text


@contextlib.asynccontextmanager
async def fleet_stream(web: WebUnderTest, monkeypatch: pytest.MonkeyPatch
                       ) -> AsyncIterator[aiohttp.StreamReader]:
    """A viewer's live fleet stream (keepalives every 0.05 s), past its first fleet event."""
    monkeypatch.setattr(fleet_page, "KEEPALIVE_S", 0.05)
    await log_in(web.client, *VIEWER)
    web.feed.rebuild()
    async with web.client.get("/fleet/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.headers["Content-Security-Policy"]
        assert await stream.content.readuntil(b"\n\n") == b"retry: 2000\n\n"
        event = await stream.content.readuntil(b"\n\n")
        assert event.startswith(b"event: fleet\nid: 1\ndata: {")
        yield stream.content


async def test_the_event_stream_sends_the_fleet_and_ends_with_the_session(
        web: WebUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    async with fleet_stream(web, monkeypatch) as stream:
        await web.clock.advance(web.ctx.config.web.session_minutes * 60 + 1)
        async with asyncio.timeout(5):
            while (chunk := await stream.readuntil(b"\n\n")) == b": keepalive\n\n":
                pass
        assert chunk == b"event: expired\ndata: {}\n\n"
        assert await stream.read() == b""  # and the stream ends


async def test_an_archive_out_of_reach_answers_503_and_an_open_stream_goes_on(
        web: WebUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    # The sessions are in the archive. While it is out of reach a request gets a clear 503,
    # not a bare 500; a fleet page already following the live stream (the broker's, not the
    # archive's) keeps it, and the session holds once the archive is back.
    async def unreachable(query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise ArchiveError("archive query failed: connection refused")

    c = web.client
    async with fleet_stream(web, monkeypatch) as stream:
        with monkeypatch.context() as outage, structlog.testing.capture_logs() as logs:
            outage.setattr(web.ctx.archive, "fetch", unreachable)
            r = await c.get("/fleet.json")
            assert r.status == 503 and r.headers["Retry-After"] == "5"
            assert "out of reach" in await r.text()
            static = await c.get("/static/vendor/leaflet/leaflet.js")  # needs no session
            assert static.status == 200
            async with asyncio.timeout(5):
                for _ in range(3):
                    assert await stream.readuntil(b"\n\n") == b": keepalive\n\n"
        events = [e["event"] for e in logs]
        assert "web_archive_unreachable" in events and "session_unchecked" in events
        assert (await c.get("/fleet.json")).status == 200


def _cookie(web: WebUnderTest, name: str) -> str:
    jar = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))
    return jar[name].value


@contextlib.asynccontextmanager
async def two_webs(tmp_path: Path, archive_url: str
                   ) -> AsyncIterator[tuple[Archive, WebUnderTest, WebUnderTest]]:
    """Two web processes on one archive (with the test users), as behind a load balancer."""
    async with open_archive(archive_url) as archive:
        await add_users(archive)
        async with web_under_test(tmp_path, archive=archive) as one, \
                web_under_test(tmp_path, archive=archive) as other:
            yield archive, one, other


async def _login_status(web: WebUnderTest, name: str, forwarded_for: str | None = None, *,
                      password: str = "guess-guess-1") -> int:
    """A login with a wrong password (unless told another); its status."""
    token = csrf_of(await (await web.client.get("/login")).text())
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    r = await web.client.post("/login", data={"csrf": token, "name": name,
                                              "password": password},
                              headers=headers, allow_redirects=False)
    return r.status


async def test_a_login_holds_on_every_web_process_and_across_a_restart(
        tmp_path: Path, archive_url: str) -> None:
    # Two web processes behind one address share the archive, and so the sessions: a login
    # on one is honoured by the other, and by a web started after both stopped.
    async with two_webs(tmp_path, archive_url) as (archive, one, other):
        csrf = await log_in(one.client, *DISPATCHER)
        cookie = _cookie(one, SESSION_COOKIE)
        other.client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
        assert (await other.client.get("/fleet.json")).status == 200
        switched = await other.client.post("/lang", data={"csrf": csrf, "lang": "en"})
        assert '<html lang="en">' in await switched.text()
        page = await one.client.get("/", headers=HTML)  # the choice holds on the first
        assert '<html lang="en">' in await page.text()
        # The cookie's value is nowhere in the archive, only its hash.
        rows = await archive.fetch("SELECT id_hash FROM web_sessions", {})
        assert rows == [(hashlib.sha256(cookie.encode()).hexdigest(),)]
    async with open_archive(archive_url) as archive, \
            web_under_test(tmp_path, archive=archive) as restarted:
        restarted.client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
        assert (await restarted.client.get("/fleet.json")).status == 200
        out = await restarted.client.post("/logout", data={"csrf": csrf},
                                          allow_redirects=False)
        assert out.status == 303
        assert (await restarted.client.get("/fleet.json")).status == 401
        assert await restarted.ctx.sessions.count() == 0


async def test_failed_logins_count_on_every_web_process(
        tmp_path: Path, archive_url: str) -> None:
    # Behind one address, N web processes allow a guesser no more tries than one does; the
    # table names neither the user tried nor the address.
    async with two_webs(tmp_path, archive_url) as (archive, one, other):
        limit = one.ctx.config.web.login_attempts
        tries = [await _login_status((one, other)[i % 2], VIEWER[0]) for i in range(limit)]
        assert tries == [401] * limit
        for web in (one, other):
            assert await _login_status(web, VIEWER[0], password=VIEWER[1]) == 429
        stored = repr(await archive.fetch("SELECT * FROM web_login_failures", {}))
        assert VIEWER[0] not in stored and "127.0.0.1" not in stored
        await other.clock.advance(other.ctx.config.web.login_window_s + 1)
        await log_in(other.client, *VIEWER)  # the window passed: a good login again


async def test_the_sessions_table_is_bounded(web: WebUnderTest,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_module, "MAX_SESSIONS", 3)
    users = web.ctx.users
    viewer = await users.get(VIEWER[0])
    assert viewer is not None
    started = []
    for _ in range(5):
        started.append(await web.ctx.sessions.start(viewer, await users.stamp(viewer.name)))
        await web.clock.advance(1)
    assert await web.ctx.sessions.count() == 3
    # The oldest went first.
    assert [await web.ctx.sessions.get(s.id) is not None for s in started] == \
        [False, False, True, True, True]


async def test_behind_a_trusted_proxy_the_limit_counts_each_client_apart(
        tmp_path: Path) -> None:
    # The test client is the proxy (127.0.0.1). One client guessing under many names is
    # stopped; another client behind the same proxy still logs in.
    config = web_config(trusted_proxies=["127.0.0.1/32"])
    async with web_under_test(tmp_path, config=config) as web:
        limit = config.web.login_attempts
        statuses = [await _login_status(web, f"guess{i}", "10.0.0.7") for i in range(limit + 1)]
        assert statuses == [401] * limit + [429]
        assert await _login_status(web, VIEWER[0], "10.0.0.8", password=VIEWER[1]) == 303


async def test_a_forwarded_for_header_from_an_untrusted_peer_changes_nothing(
        web: WebUnderTest) -> None:
    # No trusted proxy: a guesser cannot dodge the limit by naming another address each time.
    limit = web.ctx.config.web.login_attempts
    statuses = [await _login_status(web, f"guess{i}", f"10.0.0.{i}") for i in range(limit + 1)]
    assert statuses == [401] * limit + [429]
