"""The fleet page: the map and the table, their live stream, and the dispatcher's resend.

``GET /`` renders the page with the current snapshot inside (a JSON block the script reads,
so the map is drawn before the stream's first event); ``GET /fleet.json`` is the snapshot;
``GET /fleet/events`` is the Server-Sent Events stream (``event: fleet`` with the snapshot,
``event: expired`` when the session ends); ``POST /buses/{bus}/resend`` (dispatchers) asks the
bus again for every seq range the archive lacks.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from datetime import UTC, datetime

import structlog
from aiohttp import web

from busd.clock import utc_iso
from office.archive import ArchiveError
from office.archive.commands import SentCommand
from office.dispatch.expiry import command_expiry
from office.resend import asks_for
from office.web import i18n
from office.web.app import (
    BUS_ID,
    NavItem,
    WebContext,
    context,
    dispatcher_only,
    render,
    session_language,
    session_of,
)
from telemetry.models import CmdResend

log = structlog.get_logger("office.web.fleet")

KEEPALIVE_S = 15.0


def setup(app: web.Application, ctx: WebContext) -> None:
    ctx.nav.append(NavItem("/", "nav.fleet"))
    app.router.add_get("/", fleet_page)
    app.router.add_get("/fleet.json", fleet_json)
    app.router.add_get("/fleet/events", fleet_events)
    app.router.add_post("/buses/{bus}/resend", dispatcher_only(resend))


async def fleet_page(request: web.Request) -> web.Response:
    ctx = context(request)
    lang = session_language(request)
    labels = {k.removeprefix("fleet.").removeprefix("stop."): i18n.translate(lang, k)
              for k in ("fleet.is_online", "fleet.is_offline", "fleet.reconnecting",
                        "fleet.live", "stop.done", "stop.now", "stop.next", "stop.skipped",
                        "stop.planned", "legend.depot", "fleet.resend", "fleet.no_buses",
                        "fleet.day_link", "fleet.change_at")}
    map_config = json.dumps({"tile_url": ctx.config.map.tile_url,
                             "attribution": ctx.config.map.attribution, "labels": labels})
    # Both JSON texts go into attributes, escaped by the template like any other text.
    return render(request, "fleet.html", snapshot=ctx.fleet.snapshot_json(),
                  map_config=map_config,
                  flash=request.query.get("flash"), flash_bus=request.query.get("bus", ""),
                  flash_n=request.query.get("n", "0"))


async def fleet_json(request: web.Request) -> web.Response:
    return web.Response(text=context(request).fleet.snapshot_json(),
                        content_type="application/json")


async def fleet_events(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    session = session_of(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    version = -1
    with contextlib.suppress(ConnectionResetError):
        # The browser reconnects by itself after this many ms when the stream breaks.
        await response.write(b"retry: 2000\n\n")
        while True:
            if ctx.fleet.closing:
                break
            if await _session_over(ctx, session.id):
                await response.write(b"event: expired\ndata: {}\n\n")
                break
            latest = await ctx.fleet.changed(version, KEEPALIVE_S)
            if latest == version:
                await response.write(b": keepalive\n\n")
                continue
            version = latest
            body = ctx.fleet.snapshot_json()
            await response.write(f"event: fleet\nid: {version}\ndata: {body}\n\n".encode())
    return response


async def _session_over(ctx: WebContext, session_id: str) -> bool:
    """Whether the stream's session ended. The live fleet comes from the broker, not the
    archive: a stream already open goes on while the archive (the sessions' store) is out of
    reach, and the session is checked again at the next push."""
    try:
        return await ctx.sessions.get(session_id) is None
    except ArchiveError as err:
        log.warning("session_unchecked", reason="archive_unreachable", error=str(err))
        return False


async def resend(request: web.Request) -> web.Response:
    ctx = context(request)
    bus = request.match_info["bus"]
    if not BUS_ID.match(bus):
        raise web.HTTPNotFound(text="no such bus\n")
    office = getattr(ctx.fleet, "office", None)
    if office is None or not office.connected.is_set():
        raise web.HTTPSeeOther("/?flash=fleet.resend_offline")
    gaps = await ctx.archive.gaps(bus=bus)
    asks = asks_for(gaps, token=secrets.token_hex(4))
    sent = datetime.fromtimestamp(ctx.clock.now(), UTC)
    expires = command_expiry("resend", sent)
    for ask in asks:
        command = CmdResend(bus=bus, ts=utc_iso(sent.timestamp()), id=ask.id,
                            first_seq=ask.first, last_seq=ask.last)
        # Recorded first, as busd office resend does: the commands page follows it, and reads
        # it expired if the bus stays offline past its expiry.
        await ctx.archive.add_command(SentCommand(bus=bus, id=ask.id, command="resend",
                                                  sent=sent, expires=expires))
        await office.send_command(bus, "resend", command.model_dump(mode="json", by_alias=True),
                                  expiry_s=(expires - sent).total_seconds())
    log.info("web_resend_asked", bus=bus, ranges=len(asks),
             role=session_of(request).user.role.value)
    flash = "fleet.resend_asked" if asks else "fleet.resend_none"
    raise web.HTTPSeeOther(f"/?flash={flash}&bus={bus}&n={len(asks)}")
