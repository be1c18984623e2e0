"""The one reconnecting runner, driven by a manual clock: no sleeps, no real devices."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from busd.clock import ManualClock
from busd.errors import DeviceError
from busd.reconnect import Link, Reconnector, describe
from busd.supervisor import Backoff, ComponentContext, ComponentHealth, Phase
from busd.watchdog import stalled_parts

Step = Callable[[Link, ManualClock], Awaitable[None]]


def refuse(link: Link, clock: ManualClock) -> Awaitable[None]:
    async def step() -> None:
        raise ConnectionRefusedError(111, "Connection refused")
    return step()


def up_for(seconds: float, *, working: bool = True) -> Step:
    """Connects, does its job every second (or not), stays up ``seconds``, then drops."""
    async def step(link: Link, clock: ManualClock) -> None:
        link.connected()
        until = clock.monotonic() + seconds
        while (left := until - clock.monotonic()) > 0:
            if working:
                link.working()
            await clock.sleep(min(1.0, left))
        raise ConnectionResetError(104, "Connection reset by peer")
    return step


@dataclass
class Device:
    """A scripted far end: each session runs the next step (refusing once the script ends)."""

    clock: ManualClock
    script: deque[Step]

    def __post_init__(self) -> None:
        self.attempts: list[float] = []

    async def session(self, link: Link) -> None:
        self.attempts.append(self.clock.monotonic())
        step = self.script.popleft() if self.script else refuse
        await step(link, self.clock)

    def delays(self) -> list[float]:
        """Time between the end of each failed session and the next attempt, for
        sessions that failed at once (refused): the waits the runner chose."""
        return [b - a for a, b in itertools.pairwise(self.attempts)]


@dataclass
class Harness:
    clock: ManualClock
    health: ComponentHealth
    runner: Reconnector
    device: Device
    task: asyncio.Task[None]

    async def settle(self) -> None:
        """Let the runner run until it waits on the clock (or has ended)."""
        for _ in range(200):
            if self.clock.sleepers or self.task.done():
                return
            await asyncio.sleep(0)
        raise AssertionError("the runner never came to wait on the clock")


@contextlib.asynccontextmanager
async def harness(
    *steps: Step, initial_s: float = 1.0, max_s: float = 64.0, reset_after_s: float = 30.0,
    beat_every_s: float = 1.0, critical: bool = True,
) -> AsyncIterator[Harness]:
    clock = ManualClock()
    health = ComponentHealth("dev", critical)
    ctx = ComponentContext(health, clock)
    runner = Reconnector(ctx=ctx, clock=clock, target="dev 127.0.0.1:1",
                         backoff=Backoff(initial_s=initial_s, max_s=max_s,
                                         reset_after_s=reset_after_s),
                         rng=random.Random(3), beat_every_s=beat_every_s)
    device = Device(clock, deque(steps))
    task = asyncio.create_task(runner.run(device.session))
    h = Harness(clock, health, runner, device, task)
    try:
        await h.settle()
        yield h
    finally:
        if not task.done():  # a test that expects the runner to raise has read its result
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _phase(h: Harness) -> Phase:
    return h.health.phase  # read afresh: the runner changes it between the test's steps


def within_jitter(delay: float, base: float) -> bool:
    return 0.5 * base - 1e-9 <= delay <= base + 1e-9


async def test_back_off_grows_on_repeated_failures_up_to_its_cap_with_jitter() -> None:
    async with harness(initial_s=1.0, max_s=8.0) as h:
        await h.clock.advance(120)
        delays = h.device.delays()
        bases = [min(8.0, 2.0 ** i) for i in range(len(delays))]
        assert len(delays) >= 8
        assert all(within_jitter(d, b) for d, b in zip(delays, bases, strict=True)), delays
        assert max(delays) <= 8.0
        assert any(d < 0.95 * b for d, b in zip(delays, bases, strict=True))  # jittered
        assert h.runner.stats.consecutive_failures == len(h.device.attempts)


async def test_back_off_resets_after_a_healthy_period() -> None:
    async with harness(refuse, refuse, refuse, refuse, up_for(40)) as h:
        await h.clock.advance(500)
        # Waits after attempts 1-4 grow (1, 2, 4, 8); attempt 5 stays up 40 s doing its job.
        first_five = h.device.attempts[:6]
        waits = [b - a for a, b in itertools.pairwise(first_five)]
        assert within_jitter(waits[3], 8.0)
        after_healthy = waits[4] - 40.0  # the 5th session lasted 40 s of the gap
        assert within_jitter(after_healthy, 1.0), after_healthy
        # ...and grows again from there.
        assert within_jitter(h.device.attempts[6] - h.device.attempts[5], 2.0)


@pytest.mark.parametrize(("length", "working"), [(5.0, True), (40.0, False)],
                         ids=["short-session", "connected-but-never-working"])
async def test_no_reset_after_a_session_that_was_not_healthy(length: float, working: bool) -> None:
    async with harness(refuse, refuse, refuse, refuse, up_for(length, working=working)) as h:
        await h.clock.advance(500)
        wait_after = h.device.attempts[5] - h.device.attempts[4] - length
        # The 5th consecutive failure: 16 s base, not the initial 1 s.
        assert within_jitter(wait_after, 16.0), wait_after
        assert h.runner.stats.consecutive_failures >= 5


async def test_exception_groups_become_readable_reasons() -> None:
    async def in_a_task_group(link: Link, clock: ManualClock) -> None:
        async def fails() -> None:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")

        async with asyncio.TaskGroup() as tg:  # nested, as aiomqtt's inside our own
            tg.create_task(fails())

    async with harness(in_a_task_group) as h:
        want = "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 1)"
        assert h.health.phase is Phase.DEGRADED
        assert h.health.reason == f"cannot connect to dev 127.0.0.1:1: {want}"
        assert h.health.last_error == want
        assert "sub-exception" not in h.health.reason


def test_describe_flattens_nested_groups_and_names_empty_errors() -> None:
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [TimeoutError()]),
                                     DeviceError("port gone"), DeviceError("port gone")])
    assert describe(group) == "TimeoutError; DeviceError: port gone"


async def test_a_failure_that_is_not_the_links_is_raised_to_the_supervisor() -> None:
    async def bug(link: Link, clock: ManualClock) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.sleep(0))

            async def broken() -> None:
                raise KeyError("not a link failure")

            tg.create_task(broken())

    async def plain_bug(link: Link, clock: ManualClock) -> None:
        raise TypeError("bug")

    for step, kind in ((bug, KeyError), (plain_bug, TypeError)):
        async with harness(step) as h:
            assert h.task.done()
            with pytest.raises(kind):
                h.task.result()


async def test_counters_and_health_follow_the_connection() -> None:
    async with harness(refuse, refuse, up_for(10)) as h:
        counters = h.health.counters
        assert counters["connect_failures"] == 1 and counters["connects"] == 0
        assert h.health.phase is Phase.DEGRADED
        assert h.health.reason.startswith("cannot connect to dev 127.0.0.1:1: ConnectionRefused")
        await h.clock.advance(1.0)  # second refusal (first wait is at most 1 s)
        await h.clock.advance(2.0)  # connected (second wait is at most 2 s)
        assert _phase(h) is Phase.RUNNING
        assert counters["connects"] == 1 and counters["connect_failures"] == 2
        await h.clock.advance(10.0)  # dropped after 10 s
        assert _phase(h) is Phase.DEGRADED
        assert h.health.reason.startswith("dev 127.0.0.1:1 lost: ConnectionResetError")
        assert counters["disconnects"] == 1 and counters["failures"] == 3
        assert counters["consecutive_failures"] == 3
        assert h.health.last_error == "ConnectionResetError: [Errno 104] Connection reset by peer"
        assert 2.0 <= counters["backoff_s"] <= 4.0


async def test_ready_false_leaves_health_to_the_session() -> None:
    async def quiet(link: Link, clock: ManualClock) -> None:
        link.connected(ready=False)
        await clock.sleep(100)

    async with harness(quiet) as h:
        assert h.health.counters["connects"] == 1
        assert h.health.phase is Phase.DEGRADED  # "connecting to ...", until the session says


async def test_it_keeps_beating_the_watchdog_while_it_waits() -> None:
    async with harness(initial_s=20.0, max_s=20.0, beat_every_s=1.0) as h:
        for _ in range(40):
            await h.clock.advance(0.5)
            assert h.health.last_beat is not None
            assert h.clock.monotonic() - h.health.last_beat <= 1.0
            assert stalled_parts({"dev": h.health}, h.clock.monotonic(), 2.0) == []
        assert len(h.device.attempts) <= 3  # it spent those 20 s waiting (10-20 s a time)


async def test_cancellation_passes_through_while_connected_and_while_waiting() -> None:
    cleaned: list[str] = []

    async def held(link: Link, clock: ManualClock) -> None:
        link.connected()
        try:
            await clock.sleep(1000)
        finally:
            cleaned.append("closed")

    async with harness(held) as h:
        h.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await h.task
        assert cleaned == ["closed"]
        assert h.runner.stats.failures == 0  # a shutdown is not a failure

    async with harness() as h:  # waiting in back-off
        h.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await h.task
        assert h.runner.stats.failures == 1
