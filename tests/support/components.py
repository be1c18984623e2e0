"""Run one supervisor component in a test, with its health visible."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from busd.clock import Clock
from busd.supervisor import Component, ComponentContext, ComponentHealth


@dataclass
class Running:
    health: ComponentHealth
    ctx: ComponentContext
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running(component: Component, clock: Clock) -> AsyncIterator[Running]:
    """Start ``component.run`` as a task; cancel it and surface its error on exit."""
    health = ComponentHealth(component.name, component.critical)
    ctx = ComponentContext(health, clock)
    task = asyncio.create_task(component.run(ctx), name=f"test:{component.name}")
    try:
        yield Running(health, ctx, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
