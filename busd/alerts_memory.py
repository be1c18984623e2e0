"""Component: the active alerts, kept on disk so that a restart can close them.

The daemon may be killed (power cut, watchdog) while an alert is active. The
office then holds an ``alert_raised`` that no ``alert_cleared`` will ever
follow, unless the next run knows of it. This component writes the active
alerts to ``<data_dir>/alerts.json`` after every change (off the loop,
atomically), and at start hands the previous run's alerts to the board as
inherited. Rules confirm the ones whose cause persists by raising them again;
after ``grace_s`` of the injected clock the rest are cleared, with the reason.
A disk that refuses the file is the one storage policy's (busd/storage.py): the
component degrades, reports to the storage alert and retries with back-off; the
board itself is what it keeps (the latest alerts, so the memory is bounded).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import structlog

from busd.alerts import Alert, AlertBoard, alert_details
from busd.clock import Clock, utc_iso
from busd.files import write_atomic
from busd.storage import Report, StoragePolicy
from busd.supervisor import Backoff, ComponentContext

log = structlog.get_logger("busd.alerts_memory")


def _encode(active: dict[str, Alert]) -> str:
    # The details as the alert events carry them (scalars, finite): never NaN in the file.
    return json.dumps({kind: {"message": a.message, "raised_at": utc_iso(a.raised_at),
                              "details": alert_details(a.details)}
                       for kind, a in active.items()},
                      ensure_ascii=False, allow_nan=False)


def _decode(text: str) -> dict[str, Alert]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return {kind: Alert(kind, str(a["message"]),
                        datetime.fromisoformat(a["raised_at"].replace("Z", "+00:00")).timestamp(),
                        dict(a.get("details") or {}))
            for kind, a in data.items()}


class AlertMemory:
    name = "alerts.memory"
    critical = False

    def __init__(
        self, *, board: AlertBoard, path: Path, clock: Clock, grace_s: float = 300.0,
        on_storage: Report | None = None,
    ) -> None:
        self._board = board
        self._path = path
        self._clock = clock
        self._grace_s = grace_s
        self._storage = StoragePolicy("alerts", clock=clock, report=on_storage,
                                      backoff=Backoff(initial_s=5.0, max_s=60.0))
        self._changed = asyncio.Event()
        self._loaded = False
        board.on_change(self._changed.set)

    def _load(self) -> dict[str, Alert]:
        try:
            return _decode(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("alerts_memory_unreadable", path=str(self._path), error=str(err))
            return {}

    async def run(self, ctx: ComponentContext) -> None:
        if not self._loaded:  # once per process: a component restart keeps the board
            self._board.inherit(await asyncio.to_thread(self._load))
            self._loaded = True
            self._changed.set()
        ctx.ready()
        expire = asyncio.create_task(self._expire_after_grace(), name="alerts-memory-expire")
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                await self._save(ctx)
        finally:
            expire.cancel()

    async def _expire_after_grace(self) -> None:
        if self._board.inherited:
            await self._clock.sleep(self._grace_s)
            self._board.expire_inherited()

    async def _save(self, ctx: ComponentContext) -> None:
        text = _encode(self._board.active)
        if not await self._storage.attempt(
            lambda: asyncio.to_thread(write_atomic, self._path, text, durable=True), ctx
        ):
            await self._storage.wait(ctx)
            self._changed.set()  # try again, with the alerts as they are then
