"""Component: tells systemd the daemon is ready and alive (sd_notify).

READY=1 is sent once every critical part runs. WATCHDOG=1 is sent every half
watchdog period, but only while every critical part has shown a heartbeat
recently: a part whose loop hangs stops the feeding, and systemd restarts the
whole daemon, which is the only cure for a hung loop. STATUS= carries a short
summary for ``systemctl status``.

The protocol is one datagram on the unix socket named by $NOTIFY_SOCKET; it is
written here rather than taken from a package because the one package for it
(sdnotify) has been unmaintained since 2017 and the protocol is ten lines.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping

from busd.clock import Clock
from busd.supervisor import ComponentContext, ComponentHealth, Phase


class Notifier:
    """Sends sd_notify datagrams; does nothing when not run by systemd."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.enabled = bool(address)
        self._address = ("\0" + address[1:]) if address and address.startswith("@") else address

    def send(self, *fields: str) -> None:
        if not self.enabled or self._address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(fields).encode(), self._address)


def watchdog_period_s() -> float | None:
    """The WatchdogSec systemd gave this process, if any."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


def stalled_parts(
    health: Mapping[str, ComponentHealth], now_mono: float, stall_limit_s: float
) -> list[str]:
    """Critical parts that are not running, or whose last heartbeat is too old."""
    stalled = []
    for name, h in health.items():
        if not h.critical:
            continue
        if (
            h.phase not in (Phase.RUNNING, Phase.DEGRADED)
            or h.last_beat is None
            or now_mono - h.last_beat > stall_limit_s
        ):
            stalled.append(name)
    return stalled


def status_line(health: Mapping[str, ComponentHealth]) -> str:
    degraded = [f"{n}: {h.reason}" for n, h in health.items() if h.phase is Phase.DEGRADED]
    failing = [n for n, h in health.items() if h.phase is Phase.BACKOFF]
    if not degraded and not failing:
        return "all parts running"
    parts = [*(f"restarting {n}" for n in failing), *degraded]
    return "; ".join(parts)[:200]


class SystemdWatchdog:
    name = "systemd"
    critical = False

    def __init__(
        self,
        *,
        health: Callable[[], Mapping[str, ComponentHealth]],
        clock: Clock,
        notifier: Notifier | None = None,
        period_s: float | None = None,
        stall_limit_s: float = 10.0,
    ) -> None:
        self._health = health
        self._clock = clock
        self._notifier = notifier or Notifier()
        self._period_s = period_s if period_s is not None else watchdog_period_s()
        self._stall_limit_s = stall_limit_s
        self.feeds = 0
        self.withheld = 0

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        interval = (self._period_s / 2) if self._period_s else 1.0
        ready_sent = False
        try:
            while True:
                health = self._health()
                stalled = stalled_parts(health, self._clock.monotonic(), self._stall_limit_s)
                if not ready_sent and not stalled:
                    self._notifier.send("READY=1", f"STATUS={status_line(health)}")
                    ready_sent = True
                    ctx.log.info("systemd_ready")
                if ready_sent and self._period_s:
                    if stalled:
                        self.withheld += 1
                        ctx.log.error("watchdog_withheld", stalled=stalled)
                    else:
                        self._notifier.send("WATCHDOG=1", f"STATUS={status_line(health)}")
                        self.feeds += 1
                ctx.counters.update(feeds=self.feeds, withheld=self.withheld)
                ctx.beat()
                await self._clock.sleep(interval)
        finally:
            self._notifier.send("STOPPING=1")
