"""An slcan (Lawicel ASCII) bus for python-can that reads in chunks.

python-can's own ``slcan`` interface reads one byte per system call and polls
the port every millisecond while idle; at 1,000 frames/s that alone costs an
eighth of a core on the onboard computer (measured: 12.6 % vs 1-2 % here, see
benchmarks/can_ingest.py). This bus speaks the same protocol to the same USB
adapters (CANable, Lawicel and clones) and to the simulator's pty, but reads
whatever bytes are waiting in one call and splits them on CR.

Registered as the python-can interface ``slcan_stream`` (pyproject entry
point), so the config picks it by name like any other interface.

Lines are parsed strictly to the Lawicel format: anything else on the wire
(line noise, a second device on the port, a truncated write) is not a frame,
and a lenient parse would hand it to the decoder as if it were one. Rejected
lines are counted in ``malformed_lines`` (the CAN reader reports that counter
in health and logs it, rate-limited, as it does the other frame faults), and
the last one is kept, shortened, in ``last_malformed`` for that log.

The bus applies python-can's acceptance filters itself, on the parsed id and
before a ``Message`` is built: with the daemon's filters (only mapped ids), a
simulated or real bus at 1,000 frames/s carries about 90 % frames nobody
reads, and building and then discarding them was half of the daemon's CPU.
"""

from __future__ import annotations

import collections
import re
import time
from typing import Any

import can
import serial

# slcan bitrate commands (S0..S8)
_BITRATES = {10_000: "S0", 20_000: "S1", 50_000: "S2", 100_000: "S3", 125_000: "S4",
             250_000: "S5", 500_000: "S6", 800_000: "S7", 1_000_000: "S8"}
_MAX_LINE = 64  # longest valid line is 31 bytes (27 + timestamp); anything longer is noise
_CHUNK = 4096
_SHOWN = 32  # bytes of a malformed line kept for the log
# Lawicel: t/r + 3 hex digits (000-7FF), T/R + 8 hex digits (00000000-1FFFFFFF),
# then the DLC (0-8); what follows (data, timestamp) is checked by its length.
_STANDARD = re.compile(rb"[tr]([0-7][0-9A-Fa-f]{2})([0-8])([0-9A-Fa-f]*)")
_EXTENDED = re.compile(rb"[TR]([01][0-9A-Fa-f]{7})([0-8])([0-9A-Fa-f]*)")
# The common line in full: a data frame (standard or extended), without a timestamp,
# whose data has exactly the DLC's length. One match proves the line well formed (as
# _fields would) and gives its kind letter and id digits, whose filter verdict is
# remembered as they are, so the many lines no mapping reads cost one match and one
# lookup (no int(), no tuple, no call): 2.3 -> 0.9 ms per 1,000 lines (9 mapped ids).
_DATA_LINE = re.compile(
    rb"(t[0-7][0-9A-Fa-f]{2}|T[01][0-9A-Fa-f]{7})"
    rb"(?:0|1[0-9A-Fa-f]{2}|2[0-9A-Fa-f]{4}|3[0-9A-Fa-f]{6}|4[0-9A-Fa-f]{8}"
    rb"|5[0-9A-Fa-f]{10}|6[0-9A-Fa-f]{12}|7[0-9A-Fa-f]{14}|8[0-9A-Fa-f]{16})")
_MAX_TIMESTAMP = 0xEA5F  # the adapter's millisecond timer wraps at 60,000
# Not frames, not faults: the adapter's answers to our own commands (OK is an
# empty line, z/Z a transmit acknowledgement). Its error answer, BELL, has no
# CR of its own, so it is stripped from the front of whatever line follows.
_ANSWERS = frozenset({b"", b"z", b"Z"})
_BELL = b"\x07"
# Filter verdicts remembered per id; a bus of random ids clears the table
# rather than growing it (the same bound as the decoder's, bug 6(j)).
_MAX_VERDICTS = 4096

# (arbitration id, extended, remote, dlc, data hex digits)
_Fields = tuple[int, bool, bool, int, bytes]


class SlcanStreamBus(can.BusABC):
    def __init__(
        self,
        channel: str,
        bitrate: int | None = None,
        tty_baudrate: int = 115_200,
        poll_timeout: float = 0.2,
        timestamps: bool = False,
        gather_s: float = 0.05,
        **kwargs: Any,
    ) -> None:
        if not channel:
            raise can.CanInitializationError("slcan_stream needs a serial port as channel")
        try:
            self._port = serial.serial_for_url(channel, baudrate=tty_baudrate, timeout=poll_timeout)
        except (serial.SerialException, OSError, ValueError) as err:
            raise can.CanInitializationError(f"cannot open {channel}: {err}") from err
        self._pending = bytearray()
        self._frames: collections.deque[can.Message] = collections.deque()
        self._timestamps = timestamps
        self._gather_s = gather_s
        self._accept: list[tuple[int, int, bool | None]] | None = None
        self._verdicts: dict[int, bool] = {}
        self._hex_verdicts: dict[bytes, bool] = {}  # kind letter + id digits -> verdict
        self.malformed_lines = 0
        self.last_malformed = b""
        self.channel_info = f"slcan_stream {channel}"
        self._write("C")
        if bitrate is not None:
            if bitrate not in _BITRATES:
                raise can.CanInitializationError(f"slcan has no bitrate {bitrate}")
            self._write(_BITRATES[bitrate])
        # Z1/Z0: the adapter appends a timestamp to every frame line, or not;
        # we tell it which, so a line with one when we did not ask is malformed.
        self._write("Z1" if timestamps else "Z0")
        self._write("O")
        super().__init__(channel=channel, **kwargs)

    def _write(self, command: str) -> None:
        try:
            self._port.write(command.encode("ascii") + b"\r")
            self._port.flush()
        except (serial.SerialException, OSError) as err:
            raise can.CanOperationError(f"slcan write failed: {err}") from err

    def _apply_filters(self, filters: can.typechecking.CanFilters | None) -> None:
        """python-can hands us its filters; we apply them in :meth:`_fill`."""
        self._verdicts = {}
        self._hex_verdicts = {}
        self._accept = None if not filters else [
            (f["can_id"], f["can_mask"], f.get("extended")) for f in filters
        ]

    def _accepts(self, arbitration_id: int, extended: bool) -> bool:
        """python-can's filter rule (``BusABC._matches_filters``), on the bare id."""
        key = arbitration_id | (extended << 31)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = any(
                (want is None or want == extended) and (can_id ^ arbitration_id) & mask == 0
                for can_id, mask, want in self._accept or ()
            )
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if not self._frames:
            self._fill(timeout)
        # True: already filtered here, so python-can does not check again.
        return (self._frames.popleft() if self._frames else None), True

    def _fill(self, timeout: float | None) -> None:
        port = self._port
        try:
            if timeout == 0 and not port.in_waiting:
                return
            # Block for the first byte (up to the port's fixed poll timeout: changing
            # pyserial's timeout reconfigures the tty, too dear per call), then take
            # all that waits.
            first = port.read(1)
            if not first:
                return
            # Then let the rest of the burst arrive (can.options gather_s, 50 ms
            # by default): waking for every few frames the adapter writes was
            # 0.65 % of a core at 1,000 frames/s (2.07 % -> 1.42 % for the whole
            # daemon, benchmarks/can_ingest.py). 50 ms of lines (~5 KB at a full
            # 500 kbit/s bus) wait in the tty's buffers (64 KB of flip buffers
            # before the line discipline's 4 KB). A first pass saw the pty test
            # (tests/test_slcan_stream.py) fail with it now and then under load;
            # 21 runs since, 7 of them starved by CPU hogs, did not.
            if self._gather_s > 0:
                time.sleep(self._gather_s)
            chunk = first + port.read(min(port.in_waiting, _CHUNK))
        except (serial.SerialException, OSError, TypeError) as err:
            raise can.CanOperationError(f"slcan read failed: {err}") from err
        self._pending += chunk
        *lines, rest = bytes(self._pending).split(b"\r")
        self._pending = bytearray(rest[-_MAX_LINE:])
        timestamps = self._timestamps
        filtered = self._accept is not None
        # The fast path below holds only where it gives the same answer as _fields.
        data_line = _DATA_LINE.fullmatch if filtered and not timestamps else None
        hex_verdicts = self._hex_verdicts
        for line in lines:
            if data_line is not None and (match := data_line(line)) is not None:
                head = match[1]  # b"t123" or b"T12345678"
                verdict = hex_verdicts.get(head)
                if verdict is None:
                    verdict = self._accepts(int(head[1:], 16), len(head) == 9)
                    if len(hex_verdicts) >= _MAX_VERDICTS:
                        hex_verdicts.clear()
                    hex_verdicts[head] = verdict
                if verdict:
                    self._frames.append(_message(_data_line_fields(line, len(head))))
                continue
            line = line.lstrip(_BELL)
            fields = _fields(line, timestamps)
            if fields is None:
                if line not in _ANSWERS:
                    self.malformed_lines += 1
                    self.last_malformed = line[:_SHOWN]
            elif not filtered or self._accepts(fields[0], fields[1]):
                self._frames.append(_message(fields))

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if msg.is_extended_id:
            head = f"{'R' if msg.is_remote_frame else 'T'}{msg.arbitration_id:08X}"
        else:
            head = f"{'r' if msg.is_remote_frame else 't'}{msg.arbitration_id:03X}"
        self._write(f"{head}{msg.dlc}{bytes(msg.data).hex().upper()}")

    def shutdown(self) -> None:
        try:
            self._write("C")
        except can.CanOperationError:
            pass  # the adapter is gone; nothing to close on its side
        finally:
            self._port.close()
            super().shutdown()

    def fileno(self) -> int:
        raise NotImplementedError  # read through recv(), from a thread


def parse_line(line: bytes, *, timestamps: bool = False) -> can.Message | None:
    """One slcan frame line (without CR) → Message, or None when it is not exactly one.

    ``timestamps``: the adapter appends 4 hex digits of milliseconds (``Z1``);
    without it, a line that carries them is malformed, and with it one that
    lacks them is.
    """
    fields = _fields(line, timestamps)
    return None if fields is None else _message(fields)


def _fields(line: bytes, timestamps: bool) -> _Fields | None:
    """A line's frame fields, checked to the Lawicel format; None when it is not a frame."""
    kind = line[:1]
    if kind == b"t" or kind == b"r":
        match, extended = _STANDARD.fullmatch(line), False
    elif kind == b"T" or kind == b"R":
        match, extended = _EXTENDED.fullmatch(line), True
    else:
        return None
    if match is None:
        return None
    dlc = match[2][0] - 0x30  # one digit 0-8, checked by the pattern
    tail = match[3]
    remote = kind == b"r" or kind == b"R"
    size = 0 if remote else 2 * dlc
    if len(tail) != size + (4 if timestamps else 0):
        return None
    if timestamps and int(tail[size:], 16) > _MAX_TIMESTAMP:
        return None
    return int(match[1], 16), extended, remote, dlc, tail[:size]


def _data_line_fields(line: bytes, head: int) -> _Fields:
    """The fields of a line that _DATA_LINE matched (its format is already checked)."""
    dlc = line[head] - 0x30
    return int(line[1:head], 16), head == 9, False, dlc, line[head + 1:head + 1 + 2 * dlc]


def _message(fields: _Fields) -> can.Message:
    arbitration_id, extended, remote, dlc, data = fields
    return can.Message(
        arbitration_id=arbitration_id, is_extended_id=extended, is_remote_frame=remote,
        dlc=dlc, data=bytes.fromhex(data.decode("ascii")) if data else b"",
    )
