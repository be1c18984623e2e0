"""``busd status``: the running daemon's health, served on a local unix socket.

The daemon's component ``status`` listens on ``data_dir/status.sock`` (mode
0600: only the daemon's user, and root, may ask). A client connects and reads
one JSON document, :class:`DaemonStatus`, then the daemon closes the
connection; nothing is read from the client, so there is nothing to parse from
it. The socket lives beside the databases because that is the one directory
the daemon owns in every deployment (systemd's ``StateDirectory``, a
simulation's ``data_dir``), and the operator's ``busd status --config`` finds it
from the same config.

The socket is bound under a temporary name, set to 0600 and only then renamed
into place, so it is never reachable with looser permissions. A socket file
left by a killed daemon is replaced; a socket that still answers belongs to a
daemon that is running on the same data_dir, and this one refuses to take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from busd import __version__
from busd.clock import Clock, utc_iso
from busd.errors import DeviceError
from busd.supervisor import ComponentContext, ComponentHealth, Phase

SCHEMA_DAEMON_STATUS: Final = "busd.daemon_status/1"
SOCKET_NAME: Final = "status.sock"
# sockaddr_un.sun_path is 108 bytes on Linux, with the terminating NUL.
MAX_SOCKET_PATH: Final = 107
UP_PHASES: Final = (Phase.RUNNING, Phase.DEGRADED)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PartStatus(_Model):
    """One supervised part of the daemon."""

    name: str
    critical: bool = Field(description="the daemon is not doing its job while this is down")
    phase: Literal["starting", "running", "degraded", "backoff", "stopped", "finished"]
    up: bool = Field(description="running or degraded (working, perhaps not fully)")
    reason: str = Field(description="why degraded; empty when running")
    restarts: int
    last_error: str = Field(description="the last failure that made it restart")
    beat_age_s: float | None = Field(description="seconds since its loop last showed life")
    counters: dict[str, int | float]


class OfficeContact(_Model):
    """The link to the office's broker, as the uplink sees it."""

    connected: bool
    connected_since: str | None = Field(description="UTC; None while not connected")
    last_ack: str | None = Field(
        description="UTC of the last PUBACK of a durable record (None: none in this run)")
    backlog: int = Field(description="records in the outbox not yet acknowledged")


class DaemonStatus(_Model):
    """What ``busd status --json`` prints."""

    schema_: Literal["busd.daemon_status/1"] = Field(default=SCHEMA_DAEMON_STATUS,
                                                     alias="schema")
    bus: str
    version: str
    pid: int
    boot: str = Field(description="when this daemon process started (UTC)")
    ts: str = Field(description="when this status was taken (UTC)")
    ok: bool = Field(description="every critical part is up")
    critical_down: list[str] = Field(description="names of critical parts that are not up")
    parts: list[PartStatus] = Field(description="in start order")
    office: OfficeContact | None = Field(description="None when the daemon has no uplink")

    def dump_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


class OfficeContactPort(Protocol):
    """Implemented on the uplink and outbox (``telemetry/status_adapter.py``)."""

    def contact(self) -> OfficeContact: ...


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def part_status(health: ComponentHealth, now_mono: float) -> PartStatus:
    beat = None if health.last_beat is None else round(max(0.0, now_mono - health.last_beat), 3)
    return PartStatus(
        name=health.name, critical=health.critical, phase=health.phase.value,
        up=health.phase in UP_PHASES, reason=health.reason, restarts=health.restarts,
        last_error=health.last_error, beat_age_s=beat, counters=dict(health.counters),
    )


class StatusServer:
    """Supervisor component ``status``: answers each connection with the daemon's status."""

    name = "status"
    critical = False  # the daemon does its job without it; `busd status` then says so

    def __init__(
        self,
        *,
        path: Path,
        bus_id: str,
        clock: Clock,
        health: Callable[[], Mapping[str, ComponentHealth]],
        office: OfficeContactPort | None,
    ) -> None:
        self.path = path
        self._bus = bus_id
        self._clock = clock
        self._health = health
        self._office = office
        self._boot = utc_iso(clock.now())

    def status(self) -> DaemonStatus:
        now = self._clock.monotonic()
        parts = [part_status(h, now) for h in self._health().values()]
        down = [p.name for p in parts if p.critical and not p.up]
        return DaemonStatus(
            bus=self._bus, version=__version__, pid=os.getpid(), boot=self._boot,
            ts=utc_iso(self._clock.now()), ok=not down, critical_down=down, parts=parts,
            office=self._office.contact() if self._office is not None else None,
        )

    async def run(self, ctx: ComponentContext) -> None:
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            raise DeviceError(f"status socket path is too long for a unix socket: {self.path}")
        await asyncio.to_thread(self._claim_path)
        server = await self._listen()
        ctx.log.info("status_socket_listening", path=str(self.path))
        ctx.ready()
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _claim_path(self) -> None:
        """Remove a socket file a killed daemon left; refuse one a live daemon serves."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # nobody answers: left behind
                return
        raise DeviceError(f"another busd is running on {self.path.parent} (its status "
                          "socket answers)")

    async def _listen(self) -> asyncio.Server:
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        server = await asyncio.start_unix_server(self._answer, path=str(staging))
        try:
            os.chmod(staging, 0o600)
            os.replace(staging, self.path)  # reachable only now, already private
        except BaseException:
            server.close()
            with contextlib.suppress(OSError):
                staging.unlink()
            raise
        return server

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.status().dump_json().encode() + b"\n")
            async with asyncio.timeout(5):  # a client that never reads is dropped
                await writer.drain()
        except (OSError, TimeoutError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()


class NotRunning(Exception):
    """No daemon answers on the status socket; the message says why, for the operator."""


def read_status(path: Path, *, timeout_s: float = 5.0) -> DaemonStatus:
    """Ask the daemon at ``path``; raises :class:`NotRunning` with a clear reason."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except FileNotFoundError:
            raise NotRunning(f"busd is not running (no status socket at {path})") from None
        except ConnectionRefusedError:
            raise NotRunning(f"busd is not running (nothing answers on {path}; "
                             "a killed daemon left it)") from None
        except PermissionError:
            raise NotRunning(f"permission denied on {path}: ask as the daemon's user "
                             "or root") from None
        except TimeoutError:
            raise NotRunning(f"busd did not answer on {path} within {timeout_s:g} s") from None
        except OSError as err:
            raise NotRunning(f"cannot reach busd on {path}: {err}") from None
    return DaemonStatus.model_validate_json(b"".join(chunks))
