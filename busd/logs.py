"""structlog set-up: one event per line, JSON in production, readable on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]

# Keys whose values never reach a log line, whatever a caller binds.
SECRET_KEYS = frozenset({"password", "passwd", "secret", "token", "key_password", "private_key"})


def _redact_secrets(
    _: structlog.typing.WrappedLogger, __: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key in event_dict.keys() & SECRET_KEYS:
        event_dict[key] = "***"
    return event_dict


def configure_logging(
    level: str = "info", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_secrets,
            (
                structlog.processors.format_exc_info
                if use_json
                else structlog.processors.StackInfoRenderer()
            ),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


class RateLimitedLog:
    """Logs a recurring problem at most once per ``interval_s`` per key, counting the rest.

    Malformed frames can arrive thousands of times a second; the first one is
    logged at once, later ones are summarised with how many were suppressed.
    """

    def __init__(self, logger: structlog.typing.FilteringBoundLogger, interval_s: float) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, now: float, event: str, **fields: object) -> None:
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        self._log.warning(event, suppressed=suppressed, **fields)
