from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from busd.clock import ManualClock
from busd.supervisor import Backoff, ComponentContext, ComponentHealth, Phase, Supervisor
from tests.support import wait


class Flaky:
    """Fails the first ``failures`` runs, then runs until cancelled."""

    critical = True

    def __init__(self, name: str, failures: int, log: list[str]) -> None:
        self.name = name
        self.failures = failures
        self.runs = 0
        self.log = log

    async def run(self, ctx: ComponentContext) -> None:
        self.runs += 1
        self.log.append(f"start {self.name}")
        if self.runs <= self.failures:
            raise RuntimeError(f"boom {self.runs}")
        ctx.ready()
        try:
            await asyncio.Event().wait()
        finally:
            self.log.append(f"stop {self.name}")


async def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    await wait.wait_until(predicate, timeout=timeout, interval=0.001)


def phase(health: ComponentHealth) -> Phase:
    return health.phase


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    backoff = Backoff(initial_s=1.0, max_s=30.0)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(30.0, 2 ** (n - 1))
        assert ceiling * 0.5 <= delay <= ceiling
    assert delays[-1] <= 30.0


async def test_failed_component_is_restarted_after_backoff() -> None:
    clock = ManualClock()
    log: list[str] = []
    flaky = Flaky("flaky", failures=2, log=log)
    sup = Supervisor([flaky], clock=clock, backoff=Backoff(initial_s=10, max_s=100),
                     rng=random.Random(0))
    runner = asyncio.create_task(sup.run())
    await wait_until(lambda: sup.health["flaky"].phase is Phase.BACKOFF)
    assert flaky.runs == 1
    assert sup.health["flaky"].last_error == "RuntimeError: boom 1"
    await clock.advance(4.9)  # below the smallest possible first delay (10 * 0.5)
    assert flaky.runs == 1
    await clock.advance(5.2)
    await wait_until(lambda: flaky.runs == 2)
    await clock.advance(20.1)  # second delay is at most 20 s
    await wait_until(lambda: sup.health["flaky"].phase is Phase.RUNNING)
    assert flaky.runs == 3 and sup.health["flaky"].restarts == 2
    sup.request_stop()
    await asyncio.wait_for(runner, 2)


async def test_stops_in_reverse_order_of_start() -> None:
    clock = ManualClock()
    log: list[str] = []
    parts = [Flaky(n, 0, log) for n in ("sink", "logic", "source")]
    sup = Supervisor(parts, clock=clock)
    runner = asyncio.create_task(sup.run())
    await wait_until(sup.all_critical_running)
    sup.request_stop()
    await asyncio.wait_for(runner, 2)
    assert log[3:] == ["stop source", "stop logic", "stop sink"]
    assert all(h.phase is Phase.STOPPED for h in sup.health.values())


async def test_a_slow_stopper_cannot_hold_shutdown_past_the_timeout() -> None:
    release = asyncio.Event()

    class SlowStopper:
        name = "slow"
        critical = False

        async def run(self, ctx: ComponentContext) -> None:
            ctx.ready()
            try:
                await asyncio.Event().wait()
            finally:
                # A flush that hangs: shielded, so cancellation cannot cut it short.
                await asyncio.shield(release.wait())

    sup = Supervisor([SlowStopper()], clock=ManualClock(), stop_timeout_s=0.2)
    runner = asyncio.create_task(sup.run())
    await wait_until(lambda: sup.health["slow"].phase is Phase.RUNNING)
    sup.request_stop()
    await asyncio.wait_for(runner, 2)  # returned although the part had not finished
    assert sup.health["slow"].phase is Phase.STOPPED
    release.set()
    straggler = [t for t in asyncio.all_tasks() if t.get_name() == "busd:slow"]
    await asyncio.gather(*straggler, return_exceptions=True)


async def test_degraded_and_counters_are_reported() -> None:
    class Reporter:
        name = "reporter"
        critical = True

        async def run(self, ctx: ComponentContext) -> None:
            ctx.counters["frames"] = 7
            ctx.degraded("no frames")
            await asyncio.Event().wait()

    sup = Supervisor([Reporter()], clock=ManualClock())
    runner = asyncio.create_task(sup.run())
    await wait_until(lambda: sup.health["reporter"].phase is Phase.DEGRADED)
    health = sup.health["reporter"].as_dict()
    assert health["reason"] == "no frames" and health["counters"] == {"frames": 7}
    assert sup.all_critical_running()  # degraded still runs
    sup.request_stop()
    await asyncio.wait_for(runner, 2)


def test_component_names_must_be_unique() -> None:
    with pytest.raises(ValueError):
        Supervisor([Flaky("a", 0, []), Flaky("a", 0, [])], clock=ManualClock())


class Gated:
    """Ready only when the test opens its gate (a device that takes a while to open)."""

    critical = False

    def __init__(self, name: str, log: list[str], gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.log = log
        self.gate = gate

    async def run(self, ctx: ComponentContext) -> None:
        self.log.append(f"start {self.name}")
        if self.gate is not None:
            await self.gate.wait()
        ctx.ready()
        self.log.append(f"ready {self.name}")
        await asyncio.Event().wait()


async def test_each_part_starts_only_once_the_one_before_it_is_ready() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    sup = Supervisor([Gated("outbox", log, gate), Gated("uplink", log)], clock=ManualClock())
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: log == ["start outbox"])
        uplink = sup.health["uplink"]
        assert uplink.phase is Phase.STARTING and "start uplink" not in log
        gate.set()
        # Through a call: mypy would keep the narrowing of the assert above.
        await wait_until(lambda: phase(uplink) is Phase.RUNNING)
        assert log == ["start outbox", "ready outbox", "start uplink", "ready uplink"]
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 2)


async def test_a_part_that_fails_or_never_gets_ready_does_not_hold_the_daemon() -> None:
    log: list[str] = []
    never = Gated("stuck", log, asyncio.Event())
    broken = Flaky("broken", failures=100, log=log)
    sup = Supervisor([broken, never, Gated("after", log)], clock=ManualClock(),
                     ready_timeout_s=0.2)
    runner = asyncio.create_task(sup.run())
    try:
        # A failing part is in back-off (its dependents start and cope); a stuck one is
        # given ready_timeout_s, marked, and the start goes on.
        await wait_until(lambda: sup.health["after"].phase is Phase.RUNNING)
        assert sup.health["broken"].phase is Phase.BACKOFF
        assert sup.health["stuck"].phase is Phase.STARTING
        assert sup.health["stuck"].reason == "not ready within 0.2 s of its start"
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 2)


async def test_a_stop_while_starting_stops_what_started() -> None:
    log: list[str] = []
    sup = Supervisor([Gated("first", log), Gated("stuck", log, asyncio.Event()),
                      Gated("never", log)], clock=ManualClock(), ready_timeout_s=30)
    runner = asyncio.create_task(sup.run())
    await wait_until(lambda: "start stuck" in log)
    sup.request_stop()
    await asyncio.wait_for(runner, 2)
    assert "start never" not in log
    assert sup.health["first"].phase is Phase.STOPPED
