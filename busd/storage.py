"""What every writer does when the disk refuses a write: one policy, one alert.

A full SD card or a file system remounted read-only hits every writer at once
(the outbox, the event forwarder, the monitoring store's writers, the
planner's files, the alert memory), each noticing on its own schedule. Each
writer owns a :class:`StoragePolicy`, and they all behave the same way:

- **degrade**: the writer's component turns degraded with the reason, and is
  running again only once the disk takes a write;
- **keep**: what could not be written stays in memory with its owner, in a
  bounded buffer (:class:`Backlog`, or the writer's own bounded queue) whose
  overflow drops the oldest, counts it and logs it as an error, never silently;
- **retry**: after a capped, jittered exponential back-off on the injected
  clock; the wait beats the component's heartbeat, so a writer whose loop still
  turns never makes the systemd watchdog kill the daemon (bug: an outbox
  retrying a full disk for longer than the watchdog's 10 s stall limit stopped
  beating, and systemd restarted busd);
- **report**: to :class:`StorageStatus` by name. The crew and the office get one
  ``storage_unwritable`` alert (:class:`StorageAlert`), raised by the first
  failing writer and cleared only when the last one writes again.

A writer never fails because of the disk: nothing is raised out of the policy.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

import structlog

from busd.clock import Clock
from busd.errors import StorageError
from busd.supervisor import Backoff, ComponentContext

log = structlog.get_logger("busd.storage")

T = TypeVar("T")

# What "the disk refused the write" is: our own StorageError (SQLite writers translate
# theirs), and OSError from plain files (ENOSPC, EROFS, EIO).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (StorageError, OSError)

# A writer's report: the reason while it cannot write, None once it writes again.
Report = Callable[[str | None], None]
# on_change(reason): reason is None when every writer writes again.
OnChange = Callable[[str | None], None]

RETRY_BACKOFF = Backoff(initial_s=1.0, max_s=60.0)
BEAT_S = 1.0  # how often a waiting writer beats: well inside the watchdog's stall limit


def reason_of(err: BaseException) -> str:
    """A short reason for the alert and the health (an OSError's strerror, not its repr)."""
    if isinstance(err, OSError) and not isinstance(err, StorageError) and err.strerror:
        name = f"{err.filename}: " if err.filename else ""
        return f"{name}{err.strerror}"
    return str(err) or type(err).__name__


class StorageStatus:
    """Failing writers by name; tells ``on_change`` when the overall state changes."""

    def __init__(self, on_change: OnChange | None = None) -> None:
        self._failing: dict[str, str] = {}
        self._on_change: OnChange = on_change or (lambda _reason: None)
        self._changed = asyncio.Event()

    @property
    def failing(self) -> dict[str, str]:
        return dict(self._failing)

    def reporter(self, writer: str) -> Report:
        """A callback for one writer: ``report(reason)`` on failure, ``report(None)`` when
        it writes again."""
        return lambda reason: self.report(writer, reason)

    def report(self, writer: str, reason: str | None) -> None:
        was_failing = bool(self._failing)
        if reason is None:
            if self._failing.pop(writer, None) is None:
                return
            log.info("storage_writable_again", writer=writer, still_failing=sorted(self._failing))
        else:
            if self._failing.get(writer) == reason:
                return
            first = writer not in self._failing
            self._failing[writer] = reason
            if first:
                log.warning("storage_unwritable", writer=writer, reason=reason)
        if self._failing and not was_failing:
            self._on_change(self.summary())
            self._changed.set()
        elif was_failing and not self._failing:
            self._on_change(None)
            self._changed.set()

    async def changed(self) -> None:
        """Return once the overall state (some writer failing or none) has changed."""
        await self._changed.wait()
        self._changed.clear()

    def summary(self) -> str:
        """One line for the alert: what cannot be written, and why (the first reason)."""
        writers = sorted(self._failing)
        return f"cannot write {', '.join(writers)}: {self._failing[writers[0]]}"


class AlertSink(Protocol):
    def raise_alert(self, kind: str, *, message: str, details: dict[str, object]) -> None: ...

    def clear_alert(self, kind: str, *, details: dict[str, object]) -> None: ...


class StorageAlert:
    """Component: the one ``storage_unwritable`` alert, from the :class:`StorageStatus`.

    An alert rule like the others, so it starts after the previous run's alerts
    are inherited: a storage alert still active from before a restart is
    confirmed (or cleared after the grace period) rather than raised twice.
    """

    name = "alerts.storage"
    critical = False

    def __init__(self, *, status: StorageStatus, alerts: AlertSink) -> None:
        self._status = status
        self._alerts = alerts

    def sync(self) -> None:
        """Raise or clear the alert as the status says now."""
        if self._status.failing:
            self._alerts.raise_alert("storage_unwritable", message=self._status.summary(),
                                     details={})
        else:
            self._alerts.clear_alert("storage_unwritable", details={})

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        while True:
            self.sync()
            await self._status.changed()


class Backlog(Generic[T]):
    """What a writer could not write, in memory, oldest first, bounded.

    Overflow policy: the oldest item goes, counted in :attr:`dropped` and logged
    as an error (a disk that refuses writes for long enough to fill the backlog
    is a loss the office must hear of, so the owner reports :attr:`dropped`).
    """

    def __init__(self, writer: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a backlog holds at least one item")
        self._writer = writer
        self._items: deque[T] = deque()
        self.capacity = capacity
        self.dropped = 0

    def append(self, item: T) -> None:
        if len(self._items) >= self.capacity:
            self._items.popleft()
            self.dropped += 1
            log.error("storage_backlog_overflow", writer=self._writer, capacity=self.capacity,
                      dropped=self.dropped)
        self._items.append(item)

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def take(self) -> list[T]:
        """Everything kept, oldest first; the backlog is then empty."""
        items = list(self._items)
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)


class StoragePolicy:
    """One writer's handling of a disk that refuses its writes (see the module doc).

    ``writer`` names it in the alert and the log; ``report`` is its
    :meth:`StorageStatus.reporter`.
    """

    def __init__(
        self, writer: str, *, clock: Clock, report: Report | None = None,
        backoff: Backoff = RETRY_BACKOFF, rng: random.Random | None = None,
    ) -> None:
        self.writer = writer
        self._clock = clock
        self._report: Report = report or (lambda _reason: None)
        self._backoff = backoff
        self._rng = rng or random.Random()
        self.reason: str | None = None  # set while the disk refuses this writer
        self.failures = 0  # consecutive refused writes
        self.refusals = 0  # all refused writes, for the counters
        self._degraded_reason: str | None = None

    @property
    def failing(self) -> bool:
        return self.reason is not None

    def refused(self, err: BaseException | str, ctx: ComponentContext | None = None) -> None:
        """A write was refused (the error, or the reason in words): degrade, report, count."""
        reason = err if isinstance(err, str) else reason_of(err)
        self.failures += 1
        self.refusals += 1
        if self.reason is None:
            log.warning("storage_write_refused", writer=self.writer, reason=reason)
        if reason != self.reason:
            self.reason = reason
            self._report(reason)
        if ctx is not None:
            self._degraded_reason = f"storage: {reason}"
            ctx.degraded(self._degraded_reason)
            ctx.counters["storage_refused"] = self.refusals

    def wrote(self, ctx: ComponentContext | None = None) -> None:
        """A write went through: if the disk had refused before, report the recovery."""
        self.failures = 0
        if self.reason is None:
            return
        log.info("storage_write_recovered", writer=self.writer, was=self.reason)
        self.reason = None
        self._report(None)
        # Only our own degradation is ours to lift (a broker that is down stays reported).
        if ctx is not None and ctx.reason == self._degraded_reason:
            ctx.ready()
        self._degraded_reason = None

    def delay(self) -> float:
        """The back-off before the next attempt."""
        return self._backoff.delay(max(1, self.failures), self._rng)

    async def wait(self, ctx: ComponentContext | None = None, seconds: float | None = None) -> None:
        """Wait before the next attempt (the back-off, or ``seconds``) on the injected
        clock, beating all the while: the loop is alive, only the disk is not."""
        remaining = self.delay() if seconds is None else seconds
        while remaining > 0:
            step = min(BEAT_S, remaining)
            await self._clock.sleep(step)
            remaining -= step
            if ctx is not None:
                ctx.beat()

    async def next_write(self, dirty: asyncio.Event, ctx: ComponentContext | None = None) -> None:
        """A writer loop's pause: while the disk refuses, the back-off (then retry what is
        kept); otherwise until ``dirty`` says there is something new. Clears ``dirty``."""
        if self.failing:
            await self.wait(ctx)
        else:
            await dirty.wait()
        dirty.clear()

    async def attempt(
        self, write: Callable[[], Awaitable[object]], ctx: ComponentContext | None = None
    ) -> bool:
        """One try; False when the disk refused it (reported; the caller keeps the data)."""
        try:
            await write()
        except STORAGE_ERRORS as err:
            self.refused(err, ctx)
            return False
        self.wrote(ctx)
        return True

    async def until_written(
        self, write: Callable[[], Awaitable[T]], ctx: ComponentContext | None = None
    ) -> T:
        """Try until the disk takes it, waiting the back-off between tries."""
        while True:
            try:
                result = await write()
            except STORAGE_ERRORS as err:
                self.refused(err, ctx)
                await self.wait(ctx)
                continue
            self.wrote(ctx)
            return result
