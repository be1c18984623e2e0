"""The dispatcher's page: send a day's plan to a bus, and what became of every command sent.

``GET /commands`` lists the commands the archive holds (newest first, ``?bus=`` for one bus),
each with its state as of now: pending, delivered, accepted, rejected (with the bus's reason)
or expired; everyone logged in sees it. Dispatchers also get the form: a plan pasted or
uploaded as JSON (a plan as ``busd office plan send`` takes it, or an object holding one under
``plan``, as ``cmd/plan`` carries it), validated with the bus's own :class:`busd.plan.Plan`
before anything is sent. ``POST /commands/plan`` (dispatchers, CSRF-checked) sends it with
:func:`office.dispatch.send_plan`, which records the command as pending, publishes it
(expiring at the end of the plan's day) and waits a few seconds for the bus's answer; the page
then shows the outcome. A bus that is offline gets the plan when it connects: its answer
reaches the archive through the ingest, and this list shows it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from aiomqtt import MqttError
from pydantic import ValidationError
from yarl import URL

from busd.errors import ConfigError
from busd.plan import Plan, parse_plan
from office.archive import ArchiveError
from office.dispatch import DispatchError, command_statuses, send_plan
from office.schedule.day import GeneratedPlan, ready_plans
from office.users import Role
from office.web.app import (
    BUS_ID,
    NavItem,
    WebContext,
    context,
    dispatcher_only,
    render,
    session_of,
)

log = structlog.get_logger("office.web.commands")

LIST_LIMIT = 200


def setup(app: web.Application, ctx: WebContext) -> None:
    ctx.nav.append(NavItem("/commands", "nav.commands"))
    app.router.add_get("/commands", commands_page)
    app.router.add_post("/commands/plan", dispatcher_only(send_plan_form))
    app.router.add_post("/commands/generated", dispatcher_only(send_generated_form))


async def _page(request: web.Request, *, status: int = 200, problems: list[str] | None = None,
                form: dict[str, str] | None = None, outcome: dict[str, str] | None = None,
                ) -> web.Response:
    ctx = context(request)
    bus = request.query.get("bus") or None
    if bus is not None and not BUS_ID.match(bus):
        raise web.HTTPNotFound(text="no such bus\n")
    rows = await command_statuses(ctx.archive, bus=bus, limit=LIST_LIMIT, clock=ctx.clock)
    generated = _generated(ctx) if session_of(request).user.role is Role.DISPATCHER else []
    return render(request, "commands.html", status=status, rows=rows, bus=bus,
                  generated=generated,
                  problems=problems or [], form=form or {"bus": bus or "", "plan": ""},
                  outcome=outcome, can_send=ctx.config.mqtt.enabled,
                  config_municipality=ctx.config.municipality_of)


async def commands_page(request: web.Request) -> web.Response:
    flash = request.query.get("state")
    outcome = None
    if flash in ("accepted", "rejected", "delivered", "pending", "expired"):
        outcome = {"state": flash, "id": request.query.get("id", ""),
                   "bus": request.query.get("to", ""), "reason": request.query.get("reason", "")}
    return await _page(request, outcome=outcome)


def plan_from_text(text: str) -> Plan:
    """The plan in ``text`` (JSON): a plan, or an object holding one under ``plan``.
    Raises ConfigError naming each problem."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ConfigError([("file", f"not JSON: {err}")]) from None
    if isinstance(data, dict) and "depot" not in data and isinstance(data.get("plan"), dict):
        data = data["plan"]
    return parse_plan(data)


async def _plan_text(request: web.Request) -> tuple[str, str]:
    """(bus, the plan's text) from the form: an uploaded file wins over the pasted text."""
    form = await request.post()
    bus = str(form.get("bus", "")).strip()
    upload = form.get("file")
    text = ""
    if isinstance(upload, web.FileField):
        text = upload.file.read().decode("utf-8", errors="replace")
    if not text.strip():
        text = str(form.get("plan", ""))
    return bus, text


def _generated(ctx: WebContext) -> list[tuple[str, GeneratedPlan]]:
    """(municipality id, plan) for each plan ready to send in a municipality's
    ``plans_dir``, from its today on."""
    out: list[tuple[str, GeneratedPlan]] = []
    for m in ctx.config.municipalities:
        if m.plans_dir is None or not m.plans_dir.is_dir():
            continue
        today = datetime.fromtimestamp(ctx.clock.now(), UTC).astimezone(m.tz).date()
        out += [(m.id, g) for g in ready_plans(m.plans_dir, since=today)]
    return out


async def send_generated_form(request: web.Request) -> web.Response:
    """Send a plan ``busd office plan generate`` wrote (form ``pick``: ``municipality:name``),
    to the bus it was made for, only if it is one the page offers (ready, not flagged)."""
    ctx = context(request)
    form = await request.post()
    pick = str(form.get("pick", ""))
    offered = {f"{m}:{g.name}": g for m, g in _generated(ctx)}
    generated = offered.get(pick)
    if generated is None or generated.plan.bus is None:
        return await _page(request, status=400, problems=[
            "plan: not a generated plan ready to send (gone, for a past day, or flagged "
            "unsafe by busd office plan generate)"])
    return await _send(request, generated.plan.bus, generated.plan,
                       {"bus": generated.plan.bus, "plan": ""})


async def send_plan_form(request: web.Request) -> web.Response:
    bus, text = await _plan_text(request)
    form = {"bus": bus, "plan": text}
    role = session_of(request).user.role.value
    if not BUS_ID.match(bus):
        return await _page(request, status=400, form=form,
                           problems=["bus: not a bus id (a-z, 0-9, -)"])
    try:
        plan = plan_from_text(text)
    except ConfigError as err:
        log.warning("web_plan_invalid", bus=bus, problems=len(err.problems), role=role)
        return await _page(request, status=400, form=form,
                           problems=[f"{key}: {reason}" for key, reason in err.problems])
    return await _send(request, bus, plan, form)


async def _send(request: web.Request, bus: str, plan: Plan,
                form: dict[str, str]) -> web.Response:
    ctx = context(request)
    role = session_of(request).user.role.value
    if not ctx.config.mqtt.enabled:
        return await _page(request, status=503, form=form,
                           problems=["mqtt: this office has no broker (mqtt.enabled = false)"])
    from office.web.server import broker_settings

    try:
        outcome = await send_plan(
            plan, bus=bus, settings=ctx.broker or broker_settings(ctx.config),
            archive=ctx.archive, prefix=ctx.config.mqtt.prefix,
            timeout_s=ctx.dispatch_wait_s, clock=ctx.clock)
    except (DispatchError, ValidationError) as err:
        log.warning("web_plan_refused", bus=bus, reason=str(err), role=role)
        return await _page(request, status=400, form=form, problems=[str(err)])
    except (MqttError, OSError, ArchiveError) as err:
        log.error("web_plan_send_failed", bus=bus, reason=str(err), role=role)
        return await _page(request, status=503, form=form,
                           problems=[f"broker: cannot send now ({err})"])
    log.info("web_plan_sent", bus=bus, id=outcome.sent.id, state=outcome.state, role=role,
             version=plan.version, day=plan.date.isoformat())
    query: dict[str, Any] = {"state": outcome.state, "id": outcome.sent.id, "to": bus}
    if outcome.reason:
        query["reason"] = outcome.reason[:300]
    raise web.HTTPSeeOther(URL("/commands").with_query(query))
