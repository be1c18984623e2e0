"""The display's HTTP server: one page, its assets, a live stream, two writes.

Runs as a supervised component inside the daemon's event loop, served by
:mod:`busd.display.http` (the standard library's streams). The page opens
one Server-Sent Events stream; the server pushes a full snapshot whenever
what the page shows changes (state changes wake it; the ports have no change
notifications, so they are looked at once a second), at most every
``push_interval_s``, and a ping when all is quiet so the page can tell a quiet
daemon from a lost one. Each stream holds
at most one unsent snapshot: a slow screen gets the latest, never a backlog
(dropped ones are counted).

Two pages share the stream: the driver's (``/``) and the service specialists'
staff page (``/staff``: a +/- counter per service type, the activity toggle).
Only three requests change anything (``POST /api/plan/ack``, ``POST
/api/clients``, ``POST /api/activity``); see :mod:`busd.display.security` for
how they are guarded.
Push timing runs on real time, not the injected clock: it paces a screen for
human eyes, and an accelerated simulation must not turn it into a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, TypeVar

import structlog

from busd.alerts import AlertBoard
from busd.clock import Clock
from busd.config import DisplayConfig, ServicesConfig
from busd.display import security
from busd.display.http import HttpError, HttpServer, Request, Response, Router, Stream
from busd.display.i18n import LANGUAGES, catalogues
from busd.display.ports import ClientsCounter, NoVisit, PlanPort, UnknownChoice, UplinkPort
from busd.display.snapshot import WATCHED, SnapshotSettings, build_snapshot
from busd.errors import BusdError
from busd.state import VehicleState
from busd.supervisor import ComponentContext, ComponentHealth

log = structlog.get_logger("busd.display")
T = TypeVar("T")

PORT_POLL_S = 1.0  # how often ports without change notifications are looked at
WRITE_TIMEOUT_S = 5.0  # a port's write (acknowledge, increment) must answer within this
_STATIC = {"common.js": "text/javascript", "app.js": "text/javascript", "app.css": "text/css",
           "staff.js": "text/javascript", "staff.css": "text/css"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class _Refused(Exception):
    """A write refused with a JSON answer the page reads (not on a visit)."""

    def __init__(self, body: dict[str, Any], status: int) -> None:
        super().__init__(body)
        self.body, self.status = body, status


class DisplayError(BusdError):
    """The display could not serve (e.g. its port is taken)."""


def _asset(name: str) -> bytes:
    return resources.files("busd.display").joinpath("static").joinpath(name).read_bytes()


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    # NaN and Infinity are not JSON: refused (ValueError) rather than sent to the page.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class _Stream:
    """One connected page: a one-slot mailbox, latest snapshot wins."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        self.dropped = 0

    def offer(self, message: bytes | None) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self.dropped += 1
        self.queue.put_nowait(message)


class DisplayServer:
    """The driver's display as a supervised component."""

    critical = False

    def __init__(
        self,
        *,
        config: DisplayConfig,
        state: VehicleState,
        clock: Clock,
        alerts: AlertBoard,
        health: Callable[[], Mapping[str, ComponentHealth]] | None = None,
        plan: PlanPort | None = None,
        uplink: UplinkPort | None = None,
        clients: ClientsCounter | None = None,
        services: ServicesConfig | None = None,
        lift_speed_threshold_kmh: float = 3.0,
        name: str = "display",
    ) -> None:
        self.name = name
        self._config = config
        self._state = state
        self._clock = clock
        self._alerts = alerts
        self._health = health or dict
        self._plan = plan
        self._uplink = uplink
        self._clients = clients
        self._services = services or ServicesConfig()
        self._settings = SnapshotSettings(
            margin_amber_pct=config.margin_amber_pct,
            charge_target_soc=config.charge_target_soc,
            battery_capacity_kwh=config.battery_capacity_kwh,
            lift_speed_threshold_kmh=lift_speed_threshold_kmh,
            night_mode=config.night_mode,
            latitude=config.latitude,
            longitude=config.longitude,
        )
        self._messages = catalogues()  # fails at construction, not on the first page load
        self._page = _asset("index.html").decode("utf-8")
        self._staff_page = _asset("staff.html").decode("utf-8")
        self._assets = {name: _asset(name) for name in _STATIC}
        self._allowed_hosts = security.allowed_host_names(config.host, config.allowed_hosts)
        self._secret = security.new_secret()
        self._streams: set[_Stream] = set()
        self._poke = asyncio.Event()
        self._port: int | None = None
        self._counters: dict[str, int | float] = {}

    # --- what tests and the composition root see ------------------------------------

    @property
    def port(self) -> int | None:
        """The port actually listened on while running (useful with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        if self._port is None:
            raise DisplayError("the display is not running")
        host = self._config.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host in ("::", "::1"):
            host = "[::1]"
        return f"http://{host}:{self._port}/"

    def snapshot(self) -> dict[str, Any]:
        """What the page would be sent now."""
        return build_snapshot(
            now=self._clock.now(),
            views=self._state.snapshot(WATCHED),
            alerts=dict(self._alerts.active),
            health=self._health(),
            plan=self._plan.view() if self._plan is not None else None,
            uplink=self._uplink.status() if self._uplink is not None else None,
            clients=self._clients.current() if self._clients is not None else None,
            settings=self._settings,
            has_plan_port=self._plan is not None,
            has_clients_port=self._clients is not None,
            clients_today=self._clients.day_total() if self._clients is not None else None,
        )

    # --- the component -----------------------------------------------------------------

    async def run(self, ctx: ComponentContext) -> None:
        self._secret = security.new_secret()
        self._counters = ctx.counters
        for key in ("streams", "pushes", "dropped", "writes", "writes_refused"):
            ctx.counters.setdefault(key, 0)
        server = HttpServer(self._make_router(), admit=self._admit, finish=self._finish,
                            max_body=4096)
        try:
            try:
                self._port = await server.start(self._config.host, self._config.port)
            except OSError as err:
                raise DisplayError(
                    f"cannot listen on {self._config.host}:{self._config.port}: {err}"
                ) from err
            ctx.log.info("display_listening", host=self._config.host, port=self._port)
            ctx.ready()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._forward_state_changes(), name="display:watch")
                tg.create_task(self._publish(ctx), name="display:publish")
        finally:
            self._port = None
            for stream in list(self._streams):
                stream.offer(None)  # ends the stream's handler
            await server.close()

    async def _forward_state_changes(self) -> None:
        watcher = self._state.watch(WATCHED)
        while True:
            await watcher.changed()
            self._poke.set()

    async def _publish(self, ctx: ComponentContext) -> None:
        last_key: str | None = None
        while True:
            self._poke.clear()
            if self._streams:
                snap = self.snapshot()
                key = json.dumps({k: v for k, v in snap.items() if k != "ts"}, sort_keys=True)
                if key != last_key:
                    message = _sse("snapshot", snap)
                    for stream in list(self._streams):
                        stream.offer(message)
                    last_key = key
                    ctx.counters["pushes"] += 1
            else:
                last_key = None
            ctx.beat()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PORT_POLL_S):
                    await self._poke.wait()
            await asyncio.sleep(self._config.push_interval_s)

    # --- HTTP --------------------------------------------------------------------------

    def _make_router(self) -> Router:
        router = Router()
        router.add("GET", "/", self._index)
        router.add("GET", "/staff", self._staff)
        router.add("GET", "/static/{name}", self._static)
        router.add("GET", "/events", self._events)
        router.add("GET", "/api/snapshot", self._snapshot_json)
        router.add("POST", "/api/plan/ack", self._ack)
        router.add("POST", "/api/clients", self._count)
        router.add("POST", "/api/activity", self._activity)
        return router

    def _admit(self, request: Request) -> None:
        if not security.host_allowed(request.headers.get("host"), self._allowed_hosts):
            raise HttpError(421, "unknown host\n")

    @staticmethod
    def _finish(request: Request, response: Response | Stream) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cache-Control", "no-cache")

    def _session(self, request: Request) -> tuple[str, bool]:
        """The request's session id, and whether it is new (a cookie must be set)."""
        sid = request.cookies.get(security.SESSION_COOKIE)
        if security.valid_session_id(sid):
            assert sid is not None
            return sid, False
        return security.new_session_id(), True

    @staticmethod
    def _set_session(headers: dict[str, str], sid: str) -> None:
        # HttpOnly, SameSite=Strict, Path=/: the page's script never reads it.
        headers["Set-Cookie"] = (
            f"{security.SESSION_COOKIE}={sid}; HttpOnly; Path=/; SameSite=Strict")

    async def _index(self, request: Request) -> Response:
        return self._render(request, self._page)

    async def _staff(self, request: Request) -> Response:
        return self._render(request, self._staff_page)

    def _services_boot(self) -> dict[str, Any]:
        """The staff page's choices, each with its labels (lv, lt, en)."""
        def entries(ids: list[str]) -> list[dict[str, Any]]:
            return [{"id": i, "labels": self._services.label(i).model_dump()} for i in ids]

        return {"types": entries(self._services.types),
                "activities": entries(self._services.activities)}

    def _render(self, request: Request, page: str) -> Response:
        sid, new = self._session(request)
        lang = request.query.get("lang", self._config.language)
        boot = {
            "token": security.session_token(self._secret, sid),
            "lang": lang if lang in LANGUAGES else self._config.language,
            "languages": list(LANGUAGES),
            "messages": self._messages,
            "tz": self._config.timezone,
            "heartbeat_s": self._config.heartbeat_s,
            "services": self._services_boot(),
        }
        # "<" escaped so no value can close the script element.
        boot_json = json.dumps(boot, ensure_ascii=False).replace("<", "\\u003c")
        html = page.replace(
            "<!--BOOT-->", f'<script id="boot" type="application/json">{boot_json}</script>'
        ).replace('<html lang="lv">', f'<html lang="{boot["lang"]}">')
        response = Response(200, html.encode("utf-8"), "text/html; charset=utf-8",
                            {"Cache-Control": "no-store"})
        if new:
            self._set_session(response.headers, sid)
        return response

    async def _static(self, request: Request) -> Response:
        name = request.match["name"]
        if name not in self._assets:
            raise HttpError(404)
        return Response(200, self._assets[name], f"{_STATIC[name]}; charset=utf-8")

    async def _snapshot_json(self, request: Request) -> Response:
        return Response.json(self.snapshot())

    async def _events(self, request: Request) -> Stream:
        if len(self._streams) >= self._config.max_clients:
            raise HttpError(503, "too many display streams\n")
        sid, new = self._session(request)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        if new:
            self._set_session(headers, sid)
        return Stream(self._stream_chunks(sid), "text/event-stream; charset=utf-8", headers)

    async def _stream_chunks(self, sid: str) -> AsyncIterator[bytes]:
        """What one page's stream carries, until it goes away or the display stops."""
        stream = _Stream()
        self._streams.add(stream)
        self._counters["streams"] = len(self._streams)
        try:
            # The page reconnects 2 s after a lost stream (its own back-off beyond that).
            yield b"retry: 2000\n\n"
            yield _sse("hello", {"token": security.session_token(self._secret, sid)})
            yield _sse("snapshot", self.snapshot())
            while True:
                try:
                    async with asyncio.timeout(self._config.heartbeat_s):
                        message = await stream.queue.get()
                except TimeoutError:
                    message = _sse("ping", {"ts": self._clock.now()})
                if message is None:
                    break
                yield message
        finally:
            self._streams.discard(stream)
            self._counters["streams"] = len(self._streams)
            self._counters["dropped"] = self._counters.get("dropped", 0) + stream.dropped

    # --- the two writes ------------------------------------------------------------------

    async def _checked_body(self, request: Request) -> dict[str, Any]:
        """Refuse anything that is not our own page's request; return its JSON body."""
        origin_ok = security.same_origin(
            host_header=request.headers.get("host"),
            origin=request.headers.get("origin"),
            referer=request.headers.get("referer"),
            scheme=request.scheme,
        )
        token_ok = security.token_matches(
            self._secret,
            request.cookies.get(security.SESSION_COOKIE),
            request.headers.get(security.TOKEN_HEADER.lower()),
        )
        if not (origin_ok and token_ok):
            self._counters["writes_refused"] = self._counters.get("writes_refused", 0) + 1
            log.warning("display_write_refused", path=request.path, origin_ok=origin_ok,
                        token_ok=token_ok)
            raise HttpError(403, "cross-site request refused\n")
        if request.content_type != "application/json":
            raise HttpError(415, "JSON only\n")
        try:
            body = request.json()
        except ValueError:
            raise HttpError(400, "invalid JSON\n") from None
        if not isinstance(body, dict):
            raise HttpError(400, "expected a JSON object\n")
        return body

    async def _ack(self, request: Request) -> Response:
        body = await self._checked_body(request)
        proposal_id = body.get("proposal_id")
        if not isinstance(proposal_id, str) or not 0 < len(proposal_id) <= 128:
            raise HttpError(400, "proposal_id must be a short string\n")
        if self._plan is None:
            raise HttpError(404, "no planner\n")
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                accepted = await self._plan.acknowledge(proposal_id)
        except Exception as err:  # a planner failure is the driver's "try again", not a crash
            log.error("display_ack_failed", proposal=proposal_id, error=repr(err))
            raise HttpError(503, "the planner did not answer\n") from err
        self._counters["writes"] = self._counters.get("writes", 0) + 1
        self._poke.set()
        log.info("display_plan_acknowledged", proposal=proposal_id, accepted=accepted)
        if not accepted:
            return Response.json({"ok": False, "reason": "outdated"}, status=409)
        return Response.json({"ok": True})

    async def _count(self, request: Request) -> Response:
        body = await self._checked_body(request)
        delta, service = body.get("delta"), body.get("service")
        if isinstance(delta, bool) or delta not in (1, -1):
            raise HttpError(400, "delta must be 1 or -1\n")
        if not isinstance(service, str) or not 0 < len(service) <= 64:
            raise HttpError(400, "service must be a service type\n")
        if self._clients is None:
            raise HttpError(404, "no clients counter\n")
        clients = self._clients
        try:
            count = await self._write("count", lambda: clients.increment(int(delta), service))
        except _Refused as refused:
            return Response.json(refused.body, status=refused.status)
        return Response.json({"ok": True, "count": count})

    async def _activity(self, request: Request) -> Response:
        body = await self._checked_body(request)
        activity = body.get("activity")
        if activity is not None and (not isinstance(activity, str) or not 0 < len(activity) <= 64):
            raise HttpError(400, "activity must be an activity or null\n")
        if self._clients is None:
            raise HttpError(404, "no clients counter\n")
        clients = self._clients
        try:
            now = await self._write("activity", lambda: clients.switch(activity))
        except _Refused as refused:
            return Response.json(refused.body, status=refused.status)
        return Response.json({"ok": True, "activity": now})

    async def _write(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        """A counter write: refused outside a visit (409), unknown choice (400), a store
        that did not take it (503); each said plainly to the page."""
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                result = await write()
        except NoVisit:
            raise _Refused({"ok": False, "reason": "no_visit"}, 409) from None
        except UnknownChoice as err:
            raise HttpError(400, f"{err}\n") from None
        except Exception as err:
            log.error("display_write_failed", what=what, error=repr(err))
            raise HttpError(503, "not stored\n") from err
        self._counters["writes"] = self._counters.get("writes", 0) + 1
        self._poke.set()
        return result
