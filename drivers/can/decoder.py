"""Pure CAN decoding: frame bytes in, busd signal values out.

The DBC says how to unpack a frame; the config's mapping says which DBC
signal feeds which busd signal and what makes a value believable. Both are
compiled once into a table keyed by arbitration id, so the hot path is one
dict lookup per frame and unknown ids cost almost nothing.

Nothing here raises for bad input: every frame that cannot be used is
classified and counted (unknown id, wrong length, undecodable), and every
value that is decoded but not believable is counted by the rule that dropped
it (outside its valid range, changing faster than physics allows, or its
frame's condition not met, as when a pack voltage reads 0 with the contactor
open). The caller publishes what comes out and shows the counters.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from cantools.database.can import Database, Message

from busd.config import SignalMapping
from busd.errors import ConfigError
from busd.signals import SIGNALS, Kind
from drivers.can.dbc_file import load_dbc as load_dbc  # where the app imports it from
from drivers.can.plausibility import RateGate

log = structlog.get_logger("drivers.can.decoder")

_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
# J1939: priority is bits 26-28 and the source address bits 0-7 of a 29-bit id;
# the PGN in between identifies the message whichever ECU sends it.
_J1939_PGN_MASK = 0x03FFFF00


@dataclass(slots=True)
class _Rule:
    """One compiled mapping entry, with the little state its rate check needs."""

    index: int
    target: str
    signal: str
    scale: float
    offset: float
    choices: dict[int, str] | None
    valid_min: float | None
    valid_max: float | None
    rate: RateGate | None  # max_rate/max_step: drivers/can/plausibility.py
    condition: tuple[str, Callable[[float, float], bool], float] | None


@dataclass(slots=True)
class _Route:
    message: Message
    rules: list[_Rule]


@dataclass
class DecodeStats:
    """What became of the frames and values; shown in health and logs."""

    frames: int = 0
    unknown_id: int = 0
    bad_length: int = 0
    undecodable: int = 0
    values: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # "target:reason" -> count

    def as_counters(self) -> dict[str, int]:
        counters = {
            "frames": self.frames, "unknown_id": self.unknown_id, "bad_length": self.bad_length,
            "undecodable": self.undecodable, "values": self.values,
        }
        counters.update({f"dropped.{key}": n for key, n in sorted(self.dropped.items())})
        return counters


class Problem:
    """Why a frame could not be used (handed to the caller's rate-limited log)."""

    __slots__ = ("arbitration_id", "detail", "kind")

    def __init__(self, kind: str, arbitration_id: int, detail: str) -> None:
        self.kind = kind
        self.arbitration_id = arbitration_id
        self.detail = detail


class FrameDecoder:
    def __init__(
        self, db: Database, mapping: Sequence[SignalMapping], *, match_j1939_pgn: bool = True
    ) -> None:
        self._match_pgn = match_j1939_pgn
        self._by_id: dict[int, _Route] = {}
        self._by_pgn: dict[int, _Route] = {}
        self._routes: dict[int, _Route | None] = {}  # every id seen, resolved once
        self.stats = DecodeStats()
        self.last_problem: Problem | None = None
        problems: list[tuple[str, str]] = []
        for index, entry in enumerate(mapping):
            try:
                message, rule = _compile(db, index, entry)
            except _MappingError as err:
                problems.append((f"can.mapping.{index}.{err.key}", err.reason))
                continue
            route = self._by_id.setdefault(message.frame_id, _Route(message, []))
            route.rules.append(rule)
            if message.is_extended_frame:
                self._by_pgn.setdefault(message.frame_id & _J1939_PGN_MASK, route)
        if problems:
            raise ConfigError(problems)

    @property
    def targets(self) -> set[str]:
        return {rule.target for route in self._by_id.values() for rule in route.rules}

    def can_filters(self) -> list[dict[str, int | bool]]:
        """python-can acceptance filters that pass only the frames this mapping uses.

        On SocketCAN the kernel applies them, so the rest of a busy bus never
        reaches Python; elsewhere python-can drops them before the hand-over.
        """
        filters: list[dict[str, int | bool]] = []
        for frame_id, route in sorted(self._by_id.items()):
            extended = route.message.is_extended_frame
            mask = _J1939_PGN_MASK if extended and self._match_pgn else (
                0x1FFFFFFF if extended else 0x7FF)
            filters.append({"can_id": frame_id & mask, "can_mask": mask, "extended": extended})
        return filters

    def _route(self, arbitration_id: int, is_extended: bool) -> _Route | None:
        route = self._by_id.get(arbitration_id)
        if route is not None and route.message.is_extended_frame != is_extended:
            route = None
        if route is None and is_extended and self._match_pgn:
            route = self._by_pgn.get(arbitration_id & _J1939_PGN_MASK)
        self._routes[arbitration_id | (is_extended << 31)] = route
        return route

    def decode(
        self, arbitration_id: int, is_extended: bool, data: bytes | bytearray, now: float
    ) -> list[tuple[str, float | int | bool | str]]:
        """Values for busd signals from one frame; ``now`` is monotonic seconds.

        Never raises on bad input: unusable frames are counted in ``stats``
        and described in ``last_problem`` for the caller to log.
        """
        stats = self.stats
        stats.frames += 1
        key = arbitration_id | (is_extended << 31)
        route = self._routes[key] if key in self._routes else self._route(arbitration_id, is_extended)
        if route is None:
            stats.unknown_id += 1
            return []
        message = route.message
        if len(data) != message.length:
            stats.bad_length += 1
            self.last_problem = Problem(
                "bad_length", arbitration_id,
                f"{message.name}: {len(data)} bytes, DBC says {message.length}",
            )
            return []
        try:
            decoded = message.decode(bytes(data), decode_choices=False, scaling=True)
        except Exception as err:  # cantools raises several types for undecodable data
            stats.undecodable += 1
            self.last_problem = Problem("undecodable", arbitration_id, f"{message.name}: {err}")
            return []
        out: list[tuple[str, float | int | bool | str]] = []
        for rule in route.rules:
            value = _apply(rule, decoded, now, stats.dropped)
            if value is not None:
                out.append((rule.target, value))
        stats.values += len(out)
        return out


def _apply(
    rule: _Rule, decoded: dict[str, object], now: float, dropped: Counter[str]
) -> float | int | bool | str | None:
    raw = decoded.get(rule.signal)
    if raw is None:  # not in this frame (a multiplexed layout without it)
        return None
    if rule.condition is not None:
        other = decoded.get(rule.condition[0])
        if other is None or not rule.condition[1](float(other), rule.condition[2]):  # type: ignore[arg-type]
            dropped[f"{rule.target}:condition"] += 1
            return None
    value = float(raw) * rule.scale + rule.offset  # type: ignore[arg-type]
    if (rule.valid_min is not None and value < rule.valid_min) or (
        rule.valid_max is not None and value > rule.valid_max
    ):
        dropped[f"{rule.target}:range"] += 1
        return None
    if rule.rate is not None and not rule.rate.admit(value, now):
        dropped[f"{rule.target}:rate"] += 1
        return None
    if rule.choices is not None:
        label = rule.choices.get(round(value))
        if label is None:
            dropped[f"{rule.target}:no_choice"] += 1
        return label
    return value


class _MappingError(Exception):
    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason


def _find_message(db: Database, ref: str | int) -> Message:
    try:
        if isinstance(ref, int):
            return db.get_message_by_frame_id(ref)
        return db.get_message_by_name(ref)
    except KeyError:
        shown = hex(ref) if isinstance(ref, int) else repr(ref)
        raise _MappingError("message", f"no message {shown} in the DBC") from None


def _compile(db: Database, index: int, entry: SignalMapping) -> tuple[Message, _Rule]:
    message = _find_message(db, entry.message)
    names = {s.name for s in message.signals}
    if entry.signal not in names:
        raise _MappingError("signal", f"no signal {entry.signal!r} in message {message.name}")
    spec = SIGNALS[entry.target]
    choices = entry.choices
    if spec.kind is Kind.ENUM and choices is None:
        choices = _choices_from_dbc(message, entry.signal, spec.choices)
        if not choices:
            raise _MappingError(
                "choices",
                f"{entry.target} is an enum ({', '.join(spec.choices)}); the DBC's value table "
                f"for {entry.signal} does not name them, so give choices",
            )
    condition = None
    if entry.when is not None:
        if entry.when.signal not in names:
            raise _MappingError(
                "when.signal", f"no signal {entry.when.signal!r} in message {message.name}"
            )
        condition = (entry.when.signal, _OPS[entry.when.op], entry.when.value)
    scale = -entry.scale if entry.invert else entry.scale
    offset = -entry.offset if entry.invert else entry.offset
    return message, _Rule(
        index=index, target=entry.target, signal=entry.signal, scale=scale, offset=offset,
        choices=choices, valid_min=entry.valid_min, valid_max=entry.valid_max,
        rate=None if entry.max_rate is None else RateGate(entry.max_rate, entry.max_step),
        condition=condition,
    )


def _choices_from_dbc(message: Message, signal: str, labels: tuple[str, ...]) -> dict[int, str]:
    dbc_choices = message.get_signal_by_name(signal).choices or {}
    table = {int(raw): str(name).lower() for raw, name in dbc_choices.items()}
    return {raw: label for raw, label in table.items() if label in labels}
