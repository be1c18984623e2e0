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

import math
import operator
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from cantools.database.can import Database, Message
from cantools.database.utils import start_bit

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
    length: int  # the message's (a cantools property: read once, not per frame)
    # Unpacks only the signals the rules read; None: cantools decodes the frame.
    extract: Callable[[bytes | bytearray], dict[str, float | int]] | None = None


class SignalExtractor:
    """Decodes a few integer signals of a fixed-layout message, as cantools would.

    cantools unpacks every signal of a frame; the mapping reads two or three
    of them. Each signal here is one shift and mask of the payload read as one
    integer (little-endian signals from ``int.from_bytes(data, "little")``,
    Motorola ones from the big-endian reading), its sign, then cantools' own
    ``raw * scale + offset``. The function is generated once per message, as
    dataclasses generate ``__init__``: straight-line code with the constants in
    it, about a third of a generic loop's cost. That made the production path
    (decode, plausibility, state update) faster than cantools' bare
    ``decode_message`` loop (benchmarks/can_ingest.py). Frames this cannot take
    (multiplexed, container, float signals, a signal past the payload) are
    decoded by cantools: see :meth:`for_message`.
    """

    __slots__ = ("source", "unpack")

    def __init__(self, message: Message, names: Sequence[str]) -> None:
        bits = 8 * message.length
        lines = ["def extract(data):"]
        if any(message.get_signal_by_name(n).byte_order == "little_endian" for n in names):
            lines.append("    little = int.from_bytes(data, 'little')")
        if any(message.get_signal_by_name(n).byte_order != "little_endian" for n in names):
            lines.append("    big = int.from_bytes(data, 'big')")
        items = []
        for index, name in enumerate(dict.fromkeys(names)):
            signal = message.get_signal_by_name(name)
            length = signal.length
            if signal.byte_order == "little_endian":
                word, shift = "little", signal.start
            else:
                word, shift = "big", bits - start_bit(signal) - length
            lines.append(f"    r{index} = ({word} >> {shift}) & {(1 << length) - 1}")
            if signal.is_signed:
                lines.append(f"    if r{index} >= {1 << (length - 1)}: r{index} -= {1 << length}")
            scale, offset = signal.conversion.scale, signal.conversion.offset
            # repr round-trips ints and floats exactly: the same arithmetic as cantools
            items.append(f"{name!r}: r{index} * {scale!r} + {offset!r}")
        lines.append("    return {" + ", ".join(items) + "}")
        self.source = "\n".join(lines)
        namespace: dict[str, Any] = {}
        # Our own code, made of numbers and repr'd signal names (for_message checks the numbers).
        exec(compile(self.source, f"<extract {message.name}>", "exec"), namespace)
        self.unpack: Callable[[bytes | bytearray], dict[str, float | int]] = namespace["extract"]

    @classmethod
    def for_message(cls, message: Message, names: Sequence[str]) -> SignalExtractor | None:
        if message.is_multiplexed() or message.is_container or message.length > 64:
            return None
        # A signal beyond the payload makes cantools refuse every frame of the
        # message (counted as undecodable): so it stays with cantools.
        bits = 8 * message.length
        for signal in message.signals:
            first = signal.start if signal.byte_order == "little_endian" else start_bit(signal)
            if first + signal.length > bits:
                return None
        for name in names:
            signal = message.get_signal_by_name(name)
            conversion = signal.conversion
            if conversion.is_float or signal.length < 1 or not all(
                isinstance(x, int | float) and math.isfinite(x)
                for x in (conversion.scale, conversion.offset)
            ):
                return None
        return cls(message, names)

    def __call__(self, data: bytes | bytearray) -> dict[str, float | int]:
        """Scaled values by signal name; ``data`` has the message's length."""
        return self.unpack(data)


@dataclass(slots=True)  # counted per frame: slots are the quicker attributes
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
        # Ids that resolved to a route, so a mapped frame costs one lookup. Only
        # hits are kept: their number is bounded by the mapping (each mapped id,
        # plus at most 2,048 priority/source-address variants of a mapped J1939
        # PGN), whereas caching misses too grew by one entry per id ever seen
        # (74 MB after a million random ids with filtering off). An unknown id
        # costs two dict lookups and is not remembered.
        self._routes: dict[int, _Route] = {}
        self.stats = DecodeStats()
        self.last_problem: Problem | None = None
        problems: list[tuple[str, str]] = []
        for index, entry in enumerate(mapping):
            try:
                message, rule = _compile(db, index, entry)
            except _MappingError as err:
                problems.append((f"can.mapping.{index}.{err.key}", err.reason))
                continue
            route = self._by_id.setdefault(message.frame_id, _Route(message, [], message.length))
            route.rules.append(rule)
            if message.is_extended_frame:
                self._by_pgn.setdefault(message.frame_id & _J1939_PGN_MASK, route)
        if problems:
            raise ConfigError(problems)
        for route in self._by_id.values():
            needed = [name for rule in route.rules for name in (
                (rule.signal, rule.condition[0]) if rule.condition else (rule.signal,))]
            extractor = SignalExtractor.for_message(route.message, needed)
            route.extract = None if extractor is None else extractor.unpack

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
        if route is not None:
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
        route = self._routes.get(key)
        if route is None:
            route = self._route(arbitration_id, is_extended)
        if route is None:
            stats.unknown_id += 1
            return []
        if len(data) != route.length:
            message = route.message
            stats.bad_length += 1
            self.last_problem = Problem(
                "bad_length", arbitration_id,
                f"{message.name}: {len(data)} bytes, DBC says {message.length}",
            )
            return []
        try:
            decoded: Mapping[str, object]
            if route.extract is not None:
                decoded = route.extract(data)
            else:  # not a container (for_message), so cantools returns a dict
                decoded = route.message.decode(  # type: ignore[assignment]
                    bytes(data), decode_choices=False, scaling=True)
        except Exception as err:  # cantools raises several types for undecodable data
            stats.undecodable += 1
            self.last_problem = Problem(
                "undecodable", arbitration_id, f"{route.message.name}: {err}")
            return []
        # The rules, inline in this loop: a function call per mapped value was
        # a sixth of the decode-and-update path (benchmarks/can_ingest.py).
        out: list[tuple[str, float | int | bool | str]] = []
        dropped = stats.dropped
        for rule in route.rules:
            raw = decoded.get(rule.signal)
            if raw is None:  # not in this frame (a multiplexed layout without it)
                continue
            condition = rule.condition
            if condition is not None:
                other = decoded.get(condition[0])
                if other is None or not condition[1](float(other), condition[2]):  # type: ignore[arg-type]
                    dropped[f"{rule.target}:condition"] += 1
                    continue
            # scale is a float, so an integer raw value comes out a float too
            value: float = raw * rule.scale + rule.offset  # type: ignore[operator]
            if (rule.valid_min is not None and value < rule.valid_min) or (
                rule.valid_max is not None and value > rule.valid_max
            ):
                dropped[f"{rule.target}:range"] += 1
                continue
            if rule.rate is not None and not rule.rate.admit(value, now):
                dropped[f"{rule.target}:rate"] += 1
                continue
            if rule.choices is not None:
                label = rule.choices.get(round(value))
                if label is None:
                    dropped[f"{rule.target}:no_choice"] += 1
                    continue
                out.append((rule.target, label))
            else:
                out.append((rule.target, value))
        stats.values += len(out)
        return out


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
    dbc_choices: Mapping[int, object] = message.get_signal_by_name(signal).choices or {}
    table = {int(raw): str(name).lower() for raw, name in dbc_choices.items()}
    return {raw: label for raw, label in table.items() if label in labels}
