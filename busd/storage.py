"""Whether busd can write its files, gathered from every part that writes.

A full SD card or a file system remounted read-only hits every writer at once
(the outbox, the monitoring store, the planner's files), each noticing on its
own schedule. They all report here, by name; the crew and the office get one
``storage_unwritable`` alert that is raised by the first failure and cleared
only when the last failing writer has written again. Writers keep what they
could not write in memory and retry: nothing is dropped because of the disk.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

log = structlog.get_logger("busd.storage")

# on_change(reason): reason is None when every writer writes again.
OnChange = Callable[[str | None], None]


class StorageStatus:
    """Failing writers by name; tells ``on_change`` when the overall state changes."""

    def __init__(self, on_change: OnChange | None = None) -> None:
        self._failing: dict[str, str] = {}
        self.on_change: OnChange = on_change or (lambda _reason: None)

    @property
    def failing(self) -> dict[str, str]:
        return dict(self._failing)

    def reporter(self, writer: str) -> Callable[[str | None], None]:
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
            self.on_change(self.summary())
        elif was_failing and not self._failing:
            self.on_change(None)

    def summary(self) -> str:
        """One line for the alert: what cannot be written, and why (the first reason)."""
        writers = sorted(self._failing)
        return f"cannot write {', '.join(writers)}: {self._failing[writers[0]]}"
