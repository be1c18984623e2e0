"""The office web inside ``busd demo``: over the day's archive and broker, with a demo login.

The fleet's time is the scenario's accelerated clock (so the bus is "online" and "today" is
the simulated day); sessions keep real time, so a login lasts as long as it would.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from busd.clock import Clock, SystemClock
from office.archive import Archive
from office.config import parse_config
from office.records import DEFAULT_PREFIX
from office.users import Role, Users
from office.web.server import RunningWeb, serving
from telemetry.mqtt import BrokerSettings

DEMO_USER = "demo"


def demo_password() -> str:
    return secrets.token_urlsafe(12)


@asynccontextmanager
async def demo_web(archive: Archive, *, broker_port: int, port: int, clock: Clock,
                   password: str, prefix: str = DEFAULT_PREFIX) -> AsyncIterator[RunningWeb]:
    """Serve the office web on ``port`` until the block ends; the user ``demo`` (a
    dispatcher) logs in with ``password``."""
    config = parse_config({"web": {"host": "127.0.0.1", "port": port},
                           "mqtt": {"host": "127.0.0.1", "port": broker_port,
                                    "prefix": prefix}})
    users = Users(archive)
    if await users.get(DEMO_USER) is None:
        await users.add(DEMO_USER, password, Role.DISPATCHER)
    else:
        await users.set_password(DEMO_USER, password)
    async with serving(config, archive=archive, clock=clock, session_clock=SystemClock(),
                       settings=BrokerSettings(host="127.0.0.1", port=broker_port),
                       archive_poll_s=5.0) as running:
        yield running
