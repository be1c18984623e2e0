"""The wheelchair lift through its RS-485 digital-input module (Modbus RTU, pymodbus).

Polls the discrete inputs (one request covering all of them) and the cycle
counter a few times a second and writes lift.* signals. A unit that stops
answering is not an exception: polls fail, the signals go stale on their
own (nothing refreshes them), health turns degraded after a few failures,
and the line is reopened by :class:`busd.reconnect.Reconnector` with back-off
until the unit answers again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from pymodbus import ModbusException
from pymodbus.client import AsyncModbusSerialClient

from busd import signals as sig
from busd.clock import Clock
from busd.config import LiftConfig, LiftRegisterMap
from busd.errors import DeviceError
from busd.reconnect import Link, Reconnector
from busd.state import VehicleState
from busd.supervisor import Backoff, ComponentContext
from drivers.lift.mapping import LiftInputs, cycles_from_registers, input_span, lift_state


def _bump(counters: dict[str, int | float], key: str, by: int = 1) -> None:
    counters[key] = counters.get(key, 0) + by


ClientFactory = Callable[..., AsyncModbusSerialClient]


class LiftModbusSource:
    """A supervisor component feeding lift.* signals from a Modbus RTU unit."""

    critical = False

    def __init__(
        self,
        *,
        state: VehicleState,
        clock: Clock,
        port: str,
        baudrate: int = 19200,
        parity: str = "N",
        stopbits: int = 1,
        unit_id: int = 1,
        registers: LiftRegisterMap | None = None,
        poll_interval_s: float = 0.25,
        timeout_s: float = 0.5,
        failures_before_degraded: int = 3,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        name: str = "lift",
        client_factory: ClientFactory = AsyncModbusSerialClient,
        rng: random.Random | None = None,
    ) -> None:
        if poll_interval_s <= 0 or timeout_s <= 0:
            raise ValueError("poll_interval_s and timeout_s must be positive")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.name = name
        self._state = state
        self._clock = clock
        self._port = port
        self._serial = dict(baudrate=baudrate, parity=parity, stopbits=stopbits)
        self._unit = unit_id
        self._registers = registers or LiftRegisterMap()
        self._poll_s = poll_interval_s
        self._timeout_s = timeout_s
        self._degrade_after = failures_before_degraded
        self._backoff = Backoff(initial_s=backoff_initial_s, max_s=backoff_max_s)
        self._client_factory = client_factory
        self._rng = rng or random.Random()
        self._last_state: str | None = None

    @classmethod
    def from_config(cls, config: LiftConfig, *, state: VehicleState, clock: Clock,
                    name: str = "lift") -> LiftModbusSource:
        return cls(
            state=state, clock=clock, port=str(config.port), baudrate=config.baudrate,
            parity=config.parity, stopbits=config.stopbits, unit_id=config.unit_id,
            registers=config.registers, poll_interval_s=config.poll_interval_s,
            timeout_s=config.timeout_s, failures_before_degraded=config.failures_before_degraded,
            backoff_initial_s=config.backoff_initial_s, backoff_max_s=config.backoff_max_s,
            name=name,
        )

    async def run(self, ctx: ComponentContext) -> None:
        async def session(link: Link) -> None:
            client = self._client_factory(
                self._port, timeout=self._timeout_s, retries=0,
                reconnect_delay=0,  # the runner reopens, with its back-off and health
                **self._serial,
            )
            try:
                async with asyncio.timeout(self._timeout_s * 4):
                    opened = await client.connect()
                if not opened:
                    raise DeviceError(f"cannot open {self._port}")
                link.connected(ready=False)  # ready once the unit answers
                ctx.log.info("lift_port_opened", port=self._port, unit=self._unit)
                await self._poll_until_lost(client, ctx, link)
            finally:
                client.close()

        runner = Reconnector(ctx=ctx, clock=self._clock, target=f"lift line {self._port}",
                             backoff=self._backoff, rng=self._rng)
        await runner.run(session)

    async def _poll_until_lost(
        self, client: AsyncModbusSerialClient, ctx: ComponentContext, link: Link
    ) -> None:
        """Poll until the line looks dead, then raise :class:`DeviceError`."""
        failures = 0
        next_poll = self._clock.monotonic()
        while True:
            try:
                async with asyncio.timeout(self._timeout_s * 3):
                    await self._poll_once(client)
            except (ModbusException, DeviceError, TimeoutError, OSError) as err:
                failures += 1
                _bump(ctx.counters, "poll_failures")
                if failures >= self._degrade_after:
                    ctx.degraded(f"lift unit {self._unit} not answering: {err}")
                if failures >= 2 * self._degrade_after or not client.connected:
                    # Reopening clears a wedged adapter or a replugged USB-RS485 stick.
                    _bump(ctx.counters, "reopens")
                    raise DeviceError(f"lift unit {self._unit} not answering: {err}") from err
            else:
                if failures >= self._degrade_after:
                    ctx.log.info("lift_unit_answering", after_failures=failures)
                failures = 0
                _bump(ctx.counters, "polls")
                ctx.ready()
                link.working()
            next_poll += self._poll_s
            now = self._clock.monotonic()
            if next_poll < now:
                # Overran: skip the missed ticks rather than firing a burst.
                skipped = int((now - next_poll) // self._poll_s) + 1
                _bump(ctx.counters, "skipped_polls", skipped)
                next_poll += skipped * self._poll_s
            await self._clock.sleep(next_poll - now)

    async def _poll_once(self, client: AsyncModbusSerialClient) -> None:
        start, count = input_span(self._registers)
        inputs_reply = await client.read_discrete_inputs(start, count=count, device_id=self._unit)
        if inputs_reply.isError():
            raise DeviceError(f"unit answered an exception to inputs: {inputs_reply}")
        regs_reply = await client.read_input_registers(
            self._registers.cycles, count=self._registers.cycles_words, device_id=self._unit
        )
        if regs_reply.isError():
            raise DeviceError(f"unit answered an exception to registers: {regs_reply}")
        inputs = LiftInputs.from_bits(list(inputs_reply.bits), start=start,
                                      registers=self._registers)
        cycles = cycles_from_registers(list(regs_reply.registers), self._registers.cycles_words)
        state = lift_state(inputs, self._last_state)
        self._last_state = state
        update = self._state.update
        update(sig.LIFT_STATE, state, source=self.name)
        update(sig.LIFT_INTERLOCK, inputs.interlock, source=self.name)
        update(sig.LIFT_DOOR_OPEN, inputs.door_open, source=self.name)
        update(sig.LIFT_CYCLES, cycles, source=self.name)

