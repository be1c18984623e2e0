"""The answers the bus gave, remembered durably so a command delivered twice is answered once.

The broker delivers a QoS 1 command at least once: after a lost connection, a daemon killed
between receiving a command and acknowledging it, or the office sending it again, the same
command arrives a second time. It must not run twice (a plan loaded twice resets the day's
proposals, a resend sends the records twice), and the office must get the same answer both
times. So each answer is kept under the command's name and id, and an accepted plan also under
its day and version (the office may send the same plan again with a new id: the version is the
plan's identity).

The memory is one key of the outbox's meta table (:class:`MetaStore`, written under the storage
policy of busd/storage.py: a disk that refuses it keeps the latest value in memory and retries),
holding the last ``MAX_ANSWERS`` answers: a command is repeated within minutes or days, never
after hundreds of others.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import date
from typing import Protocol

import structlog
from pydantic import ValidationError

from busd.event_catalog import CommandResult

log = structlog.get_logger("telemetry.command_answers")

ANSWERS_KEY = "cmd.answers"
MAX_ANSWERS = 200


class MetaStore(Protocol):
    """Where small values survive restarts (the outbox's meta table)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def keep_meta(self, key: str, value: str) -> None:
        """Stored, or kept in memory and retried while the disk refuses it (never raises
        StorageError: the storage policy of busd/storage.py)."""
        ...


def command_key(name: str, command_id: str) -> str:
    return f"{name}:{command_id}"


def plan_key(day: date, version: int) -> str:
    return f"plan@{day.isoformat()}:v{version}"


class CommandAnswers:
    """The last answers, by key (:func:`command_key`, :func:`plan_key`), oldest first."""

    def __init__(self, store: MetaStore, *, limit: int = MAX_ANSWERS) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._store = store
        self._limit = limit
        self._answers: OrderedDict[str, str] | None = None  # read at first use

    async def _loaded(self) -> OrderedDict[str, str]:
        if self._answers is None:
            self._answers = OrderedDict()
            text = await self._store.get_meta(ANSWERS_KEY)
            if text:
                try:
                    kept = json.loads(text)
                    if isinstance(kept, dict):
                        self._answers.update(
                            (k, v) for k, v in kept.items()
                            if isinstance(k, str) and isinstance(v, str))
                except ValueError as err:
                    # An unreadable memory answers nothing twice; commands still run.
                    log.warning("command_answers_unreadable", error=str(err))
        return self._answers

    async def find(self, *keys: str) -> CommandResult | None:
        """The answer kept under the first of ``keys`` that has one."""
        answers = await self._loaded()
        for key in keys:
            text = answers.get(key)
            if text is None:
                continue
            try:
                return CommandResult.model_validate_json(text)
            except ValidationError:
                log.warning("command_answer_unreadable", key=key)
        return None

    async def remember(self, result: CommandResult, *keys: str) -> None:
        answers = await self._loaded()
        text = result.model_dump_json()
        for key in keys:
            answers.pop(key, None)
            answers[key] = text
        while len(answers) > self._limit:
            answers.popitem(last=False)
        await self._store.keep_meta(ANSWERS_KEY, json.dumps(answers, separators=(",", ":")))
