"""Log in, log out, choose the language.

A failed login is logged with its reason and the failure count, never the password nor the
name tried (a name mistyped into the password field would be a password). Failures are
counted per name and per client address; past the limit the login is refused before the
password is looked at.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from office.users import MAX_PASSWORD
from office.web import i18n
from office.web.app import WebContext, context, render, session_of
from office.web.auth import CSRF_FIELD, LOGIN_COOKIE, SESSION_COOKIE, new_token, tokens_equal
from office.web.client_address import client_address

log = structlog.get_logger("office.web.login")


def setup(app: web.Application, ctx: WebContext) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/lang", choose_language)


def _cookie_args(ctx: WebContext) -> dict[str, object]:
    return {"httponly": True, "samesite": "Strict", "secure": ctx.config.web.secure_cookies,
            "path": "/"}


def _login_form(request: web.Request, *, error: str | None = None,
                status: int = 200) -> web.Response:
    ctx = context(request)
    token = new_token()
    response = render(request, "login.html", login_token=token, error=error, status=status,
                      expired=request.query.get("expired") == "1")
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, **_cookie_args(ctx))  # type: ignore[arg-type]
    return response


async def login_page(request: web.Request) -> web.Response:
    return _login_form(request)


async def login(request: web.Request) -> web.Response:
    ctx = context(request)
    form = await request.post()
    if not tokens_equal(str(form.get(CSRF_FIELD, "")), request.cookies.get(LOGIN_COOKIE)):
        log.warning("login_failed", reason="csrf")
        return _login_form(request, error="error.csrf", status=403)
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))[:MAX_PASSWORD + 1]
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                             ctx.config.web.trusted_proxies)
    keys = (f"user:{name.lower()}", f"addr:{address}")
    if await ctx.limiter.blocked(*keys):
        log.warning("login_failed", reason="rate_limited")
        return _login_form(request, error="login.limited", status=429)
    user = await ctx.users.verify(name, password)
    if user is None:
        failures = await ctx.limiter.failed(*keys)
        log.warning("login_failed", reason="bad_credentials", failures=failures)
        return _login_form(request, error="login.failed", status=401)
    await ctx.limiter.succeeded(*keys)
    session = await ctx.sessions.start(user, await ctx.users.stamp(user.name))
    log.info("login", role=user.role.value, sessions=await ctx.sessions.count())
    response = web.HTTPSeeOther("/")
    response.set_cookie(SESSION_COOKIE, session.id, **_cookie_args(ctx))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.Response:
    ctx = context(request)
    await ctx.sessions.end(session_of(request).id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def choose_language(request: web.Request) -> web.Response:
    form = await request.post()
    session = session_of(request)
    await context(request).sessions.set_lang(
        session, i18n.language(str(form.get("lang", "")), i18n.language(session.lang)))
    target = str(form.get("next", "/"))
    # Only a path of this site: never an open redirect.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    raise web.HTTPSeeOther(target)
