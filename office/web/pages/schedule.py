"""The schedule page: make-up proposals to confirm, and the month's coverage per place.

``GET /schedule`` (query ``m``: a municipality's id, the first with a schedule by default;
``month``: ``YYYY-MM``, this month in its zone by default) shows, for a municipality whose
config names its schedule file (``municipalities.N.schedule``):

- the make-up proposals (:mod:`office.schedule.proposals`) missed since the month before,
  by reserve day. Dispatchers get a Confirm button on each open one (``POST
  /schedule/confirm``, CSRF-checked) and a button that looks for new misses over the last
  14 days (``POST /schedule/scan``), as ``busd office plan proposals`` does; viewers see the
  list only;
- the coverage report (:func:`office.schedule.coverage.coverage`): per place, due, served,
  missed, made up; ``GET /schedule/coverage.csv`` and ``.xlsx`` are the same table (the CSV
  in UTF-8 with a BOM, as the reports' CSV).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web
from openpyxl import Workbook

from busd.errors import ConfigError
from office.config import Municipality
from office.reports.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE
from office.schedule.coverage import CoverageReport, coverage
from office.schedule.model import Schedule, load_schedule
from office.schedule.proposals import confirm, find_missed, list_proposals, scan_window
from office.web.app import (
    NavItem,
    WebContext,
    context,
    dispatcher_only,
    render,
    session_language,
    session_of,
)
from office.web.i18n import translate

log = structlog.get_logger("office.web.schedule")

_MONTH = re.compile(r"^\d{4}-\d{2}$")
SCAN_DAYS = 14  # as busd office plan proposals' default


def setup(app: web.Application, ctx: WebContext) -> None:
    ctx.nav.append(NavItem("/schedule", "nav.schedule"))
    app.router.add_get("/schedule", schedule_page)
    app.router.add_get("/schedule/coverage.csv", coverage_csv)
    app.router.add_get("/schedule/coverage.xlsx", coverage_xlsx)
    app.router.add_post("/schedule/confirm", dispatcher_only(confirm_form))
    app.router.add_post("/schedule/scan", dispatcher_only(scan_form))


def _municipality(ctx: WebContext, m_id: str | None) -> Municipality | None:
    """The one asked for (404 if unknown), or the first with a schedule (None: no schedule
    anywhere)."""
    if m_id:
        found = ctx.config.municipality(m_id)
        if found is None:
            raise web.HTTPNotFound(text="no such municipality\n")
        return found
    return next((m for m in ctx.config.municipalities if m.schedule is not None), None)


def _schedule(municipality: Municipality) -> Schedule | None:
    if municipality.schedule is None:
        return None
    try:
        return load_schedule(municipality.schedule)
    except ConfigError as err:  # changed on disk since the config was loaded
        log.error("schedule_unreadable", municipality=municipality.id,
                  problems=len(err.problems))
        raise web.HTTPServiceUnavailable(text="the schedule file cannot be read: " + "; ".join(
            f"{k}: {r}" for k, r in err.problems) + "\n") from None


def _today(ctx: WebContext, municipality: Municipality) -> date:
    return datetime.fromtimestamp(ctx.clock.now(), UTC).astimezone(municipality.tz).date()


def _month(value: str | None, today: date) -> date:
    if not value:
        return today.replace(day=1)
    if _MONTH.match(value):
        try:
            return date(int(value[:4]), int(value[5:]), 1)
        except ValueError:
            pass
    raise web.HTTPBadRequest(text="month: YYYY-MM\n")


def _url(path: str, municipality: Municipality, month: date, **extra: str) -> str:
    return f"{path}?" + urlencode({"m": municipality.id, "month": month.strftime("%Y-%m"),
                                   **extra})


async def schedule_page(request: web.Request) -> web.Response:
    ctx = context(request)
    municipality = _municipality(ctx, request.query.get("m"))
    values: dict[str, Any] = {"municipality": municipality, "schedule": None,
                              "proposals": [], "report": None, "flash": None}
    if municipality is not None:
        month = _month(request.query.get("month"), _today(ctx, municipality))
        schedule = _schedule(municipality)
        values.update(month=month.strftime("%Y-%m"), schedule=schedule,
                      csv_url=_url("/schedule/coverage.csv", municipality, month),
                      xlsx_url=_url("/schedule/coverage.xlsx", municipality, month))
        if schedule is not None:
            since = (month - timedelta(days=1)).replace(day=1)
            values["proposals"] = await list_proposals(ctx.archive, schedule, since=since)
            values["report"] = await coverage(ctx.archive, schedule, month)
        flash = request.query.get("flash")
        if flash in ("confirmed", "unknown", "scanned"):
            values["flash"] = {"key": f"schedule.flash_{flash}",
                               "id": request.query.get("id", ""),
                               "n": request.query.get("n", "0")}
    return render(request, "schedule.html", **values)


async def _target(request: web.Request) -> tuple[Municipality, Schedule, date, dict[str, str]]:
    ctx = context(request)
    form = await request.post()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    municipality = _municipality(ctx, fields.get("m") or None)
    if municipality is None:
        raise web.HTTPNotFound(text="no municipality has a schedule\n")
    schedule = _schedule(municipality)
    if schedule is None:
        raise web.HTTPNotFound(text="this municipality has no schedule\n")
    month = _month(fields.get("month"), _today(ctx, municipality))
    return municipality, schedule, month, fields


async def confirm_form(request: web.Request) -> web.Response:
    ctx = context(request)
    municipality, schedule, month, fields = await _target(request)
    proposal = fields.get("id", "")
    known = {p.id for p in await list_proposals(ctx.archive, schedule)}
    made = await confirm(ctx.archive, proposal, clock=ctx.clock) if proposal in known else None
    role = session_of(request).user.role.value
    if made is None:
        log.warning("web_make_up_unknown", municipality=municipality.id, role=role)
        raise web.HTTPSeeOther(_url("/schedule", municipality, month, flash="unknown",
                                    id=proposal[:120]))
    log.info("web_make_up_confirmed", municipality=municipality.id,
             reserve_day=made.reserve_day.isoformat(), role=role)
    raise web.HTTPSeeOther(_url("/schedule", municipality, month, flash="confirmed",
                                id=made.id))


async def scan_form(request: web.Request) -> web.Response:
    ctx = context(request)
    municipality, schedule, month, _ = await _target(request)
    first, last = scan_window(_today(ctx, municipality), SCAN_DAYS)
    new = await find_missed(ctx.archive, schedule, first, last, clock=ctx.clock)
    log.info("web_missed_scanned", municipality=municipality.id, new=len(new),
             role=session_of(request).user.role.value)
    raise web.HTTPSeeOther(_url("/schedule", municipality, month, flash="scanned",
                                n=str(len(new))))


def coverage_rows(report: CoverageReport, lang: str) -> list[list[str | int]]:
    """The coverage table, headings in ``lang``; a total line last."""
    heads = ("place", "name", "bus", "cycle", "due", "served", "missed", "made_up")
    out: list[list[str | int]] = [[translate(lang, f"schedule.{h}") for h in heads]]
    out += [[p.point_id, p.name, p.bus, p.cycle, p.due, p.served, p.missed, p.made_up]
            for p in report.places]
    out.append([translate(lang, "schedule.total"), "", "", "", *report.totals])
    return out


def coverage_table(report: CoverageReport, lang: str) -> bytes:
    """The coverage report as CSV (UTF-8 with a BOM, as the reports' CSV)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(coverage_rows(report, lang))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def coverage_book(report: CoverageReport, lang: str) -> bytes:
    """The coverage report as XLSX: one sheet, numbers as numbers."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(translate(lang, "schedule.coverage",
                                        month=report.month.strftime("%Y-%m"))[:31])
    for row in coverage_rows(report, lang):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def coverage_csv(request: web.Request) -> web.Response:
    return await _export(request, "csv")


async def coverage_xlsx(request: web.Request) -> web.Response:
    return await _export(request, "xlsx")


async def _export(request: web.Request, kind: str) -> web.Response:
    ctx = context(request)
    municipality = _municipality(ctx, request.query.get("m"))
    schedule = None if municipality is None else _schedule(municipality)
    if municipality is None or schedule is None:
        raise web.HTTPNotFound(text="this municipality has no schedule\n")
    month = _month(request.query.get("month"), _today(ctx, municipality))
    report = await coverage(ctx.archive, schedule, month)
    name = f"coverage-{municipality.id}-{month.strftime('%Y-%m')}.{kind}"
    lang = session_language(request)
    log.info("coverage_exported", municipality=municipality.id, month=month.isoformat(),
             format=kind)
    body, media_type = ((coverage_table(report, lang), CSV_MEDIA_TYPE) if kind == "csv"
                        else (coverage_book(report, lang), XLSX_MEDIA_TYPE))
    return web.Response(body=body, headers={
        "Content-Type": media_type, "Content-Disposition": f'attachment; filename="{name}"'})
