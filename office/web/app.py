"""The office web application: the factory, its context, and how pages plug in.

``create_app(ctx)`` builds the aiohttp application. Each page is a module with
``setup(app, ctx)`` that adds its routes (and, if it wants a link in the navigation bar,
appends a :class:`NavItem` to ``ctx.nav``); :data:`PAGES` lists them. A page module renders with
:func:`render` (the base template gives it the user, the CSRF token, ``t()`` for text in the
user's language and ``local()`` for times in a municipality's zone).

Every request passes, in order:

1. the login check: only ``/login`` and ``/static/`` answer without a session; a page asked
   for without one redirects to the login, anything else gets 401;
2. the CSRF check: a POST must carry its session's token (:mod:`office.web.auth`);
3. the security headers, on every response (static files and errors included).

Request bodies are limited to :data:`MAX_BODY` bytes (413 beyond).

A new page, e.g. ``office/web/pages/day.py``, listed in :data:`PAGES`::

    def setup(app: web.Application, ctx: WebContext) -> None:
        ctx.nav.append(NavItem("/day", "nav.day"))          # a key of messages/*.json
        app.router.add_get("/day/{bus}/{day}", day_page)
        app.router.add_post("/day/{bus}/note", dispatcher_only(add_note))  # CSRF-checked

    async def day_page(request: web.Request) -> web.Response:
        ctx = context(request)
        municipality = ctx.config.municipality_of(request.match_info["bus"])
        return render(request, "day.html", municipality=municipality, ...)

with ``templates/day.html`` extending ``base.html`` (blocks ``title``, ``head``, ``main``,
``scripts``) and its texts in ``messages/{lv,lt,en}.json``. Tests: ``web_under_test`` and
``log_in`` in tests/support/office_web.py.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jinja2
import structlog
from aiohttp import web
from argon2 import PasswordHasher
from multidict import CIMultiDict

from busd.clock import Clock
from office.archive import Archive, ArchiveError
from office.config import Language, Municipality, OfficeConfig
from office.users import Role, Users
from office.web import i18n
from office.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    tokens_equal,
)
from office.web.login_limit import LoginLimiter
from office.web.sessions import Session, Sessions
from telemetry.mqtt import BrokerSettings

log = structlog.get_logger("office.web")

HERE = Path(__file__).parent
STATIC = HERE / "static"
MAX_BODY = 64 * 1024
# A bus id in a path or a form, checked before it reaches a query or a topic.
BUS_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")

# The pages, in navigation order. Another page: a module with setup(app, ctx), listed here.
PAGES: list[str] = [
    "office.web.pages.login",
    "office.web.pages.fleet",
    "office.web.pages.reports",
    "office.web.pages.day",
    "office.web.pages.commands",
    "office.web.pages.schedule",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PageModule(Protocol):
    def setup(self, app: web.Application, ctx: WebContext) -> None: ...


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str  # a message key


class FleetSource(Protocol):
    """What the fleet page reads live (office.web.fleet.FleetFeed)."""

    def snapshot_json(self) -> str: ...

    def version(self) -> int: ...

    async def changed(self, after: int, timeout: float) -> int: ...

    @property
    def closing(self) -> bool: ...

    def close(self) -> None:
        """Wake every waiting stream, which then ends (the web is shutting down)."""


@dataclass
class WebContext:
    config: OfficeConfig
    archive: Archive
    clock: Clock
    fleet: FleetSource
    users: Users = field(init=False)
    sessions: Sessions = field(init=False)
    limiter: LoginLimiter = field(init=False)
    templates: jinja2.Environment = field(init=False)
    nav: list[NavItem] = field(default_factory=list)
    hasher: PasswordHasher | None = None  # tests pass a cheap one
    # The broker commands go out through (None: the config's [mqtt]); how long a send waits
    # for the bus's answer before the page shows it pending.
    broker: BrokerSettings | None = None
    dispatch_wait_s: float = 5.0

    def __post_init__(self) -> None:
        web_cfg = self.config.web
        self.users = Users(self.archive, self.clock, self.hasher)
        self.sessions = Sessions(self.archive, self.clock,
                                 lifetime_s=web_cfg.session_minutes * 60,
                                 idle_s=web_cfg.idle_minutes * 60)
        self.limiter = LoginLimiter(self.archive, self.clock,
                                    attempts=web_cfg.login_attempts,
                                    window_s=web_cfg.login_window_s)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)

    def default_language(self) -> Language:
        return self.config.municipalities[0].language


CTX = web.AppKey("office_web_context", WebContext)
_SESSION = web.RequestKey("office_session", Session)


def context(request: web.Request) -> WebContext:
    return request.app[CTX]


def session_of(request: web.Request) -> Session:
    """The request's session (every handler but the login's runs with one)."""
    session = request.get(_SESSION)
    if not isinstance(session, Session):
        raise web.HTTPUnauthorized()
    return session


def dispatcher_only(handler: Handler) -> Handler:
    """A handler only a dispatcher may call (403 for a viewer)."""

    async def checked(request: web.Request) -> web.StreamResponse:
        if session_of(request).user.role is not Role.DISPATCHER:
            log.warning("web_forbidden", path=request.path, role="viewer")
            raise web.HTTPForbidden(text="dispatchers only\n")
        return await handler(request)

    return checked


def session_language(request: web.Request) -> Language:
    session = request.get(_SESSION)
    lang = getattr(session, "lang", None) or request.cookies.get("busd_office_lang")
    return i18n.language(lang, context(request).default_language())


def local(ts: float | datetime | None, municipality: Municipality,
          fmt: str = "%H:%M:%S") -> str:
    """A UTC instant (epoch seconds or aware datetime) as the municipality's local time."""
    if ts is None:
        return "-"
    when = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return when.astimezone(municipality.tz).strftime(fmt)


def render(request: web.Request, template: str, *, status: int = 200,
           **values: Any) -> web.Response:
    ctx = context(request)
    lang = session_language(request)
    session = request.get(_SESSION)

    def t(key: str, **kw: object) -> str:
        return i18n.translate(lang, key, **kw)

    page = ctx.templates.get_template(template).render(
        t=t, lang=lang, languages=i18n.LANGUAGES, session=session, nav=ctx.nav,
        path=request.path, csrf=getattr(session, "csrf", ""), local=local,
        municipalities=ctx.config.municipalities, **values)
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def _public(path: str) -> bool:
    return path in ("/login", "/favicon.ico") or path.startswith("/static/")


def _wants_page(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


@web.middleware
async def _archive_out_of_reach(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An archive out of reach answers 503, not a bare 500: the sessions, the login limit and
    most pages are in it (a page that can do without it catches ArchiveError itself)."""
    try:
        return await handler(request)
    except ArchiveError as err:
        log.error("web_archive_unreachable", path=request.path, error=str(err))
        raise web.HTTPServiceUnavailable(
            text="the office archive is out of reach; try again in a moment\n",
            headers={"Retry-After": "5"}) from None


@web.middleware
async def _login_required(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/static/"):
        # Files need no session: no archive read for each of a page's scripts and styles,
        # and they still load while the archive is out of reach.
        return await handler(request)
    ctx = context(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    # Over, or its account changed (removed, a new password): None, and the session ends.
    session = await ctx.sessions.get(cookie)
    if session is not None:
        request[_SESSION] = session
    elif not _public(request.path):
        if _wants_page(request):
            # A cookie without a live session: it expired, or its account changed.
            raise web.HTTPSeeOther("/login?expired=1" if cookie else "/login")
        raise web.HTTPUnauthorized(text="log in first\n")
    return await handler(request)


@web.middleware
async def _csrf_required(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.path != "/login":
        session = session_of(request)
        token = request.headers.get(CSRF_HEADER)
        if token is None and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            token = str((await request.post()).get(CSRF_FIELD, "")) or None
        if not tokens_equal(token, session.csrf):
            log.warning("web_csrf_rejected", path=request.path)
            raise web.HTTPForbidden(text="bad or missing CSRF token\n")
    return await handler(request)


def security_headers(config: OfficeConfig) -> CIMultiDict[str]:
    """The headers every response carries. The tile server is the one foreign origin, and
    only for images."""
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; "
           f"img-src 'self' data: {config.map.tile_origin}; connect-src 'self'; "
           "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return CIMultiDict({
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
    })


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)  # browsers ask; a 401 would only clutter the console


def create_app(ctx: WebContext, pages: Sequence[str] | None = None) -> web.Application:
    app = web.Application(middlewares=[_archive_out_of_reach, _login_required,
                                        _csrf_required],
                          client_max_size=MAX_BODY)
    app[CTX] = ctx
    headers = security_headers(ctx.config)
    cache_private = "no-store"

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.extend(headers)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", cache_private)

    app.on_response_prepare.append(add_headers)

    async def end_streams(app: web.Application) -> None:
        # Before the connections are closed: the event streams end by themselves, instead
        # of being cancelled mid-write.
        ctx.fleet.close()

    app.on_shutdown.append(end_streams)
    for name in pages if pages is not None else PAGES:
        module: PageModule = importlib.import_module(name)
        module.setup(app, ctx)
    # Never a directory listing, never a symlink out of the folder.
    app.router.add_get("/favicon.ico", _no_icon)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, show_index=False)
    return app
